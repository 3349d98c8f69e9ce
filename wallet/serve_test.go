package wallet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
)

// The serve entry names exactly the peers that hold the patient's shares
// and manifest copies, follows record add and remove, is not rewritten
// when nothing changed, and the feed goes to those peers only: a peer
// that holds nothing of the patient's keeps nothing of its feed, even
// after a revocation.
func TestServeEntryIsThePlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 7, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	alice := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	bob := rotateWallet(t, dn.NetworkPath(), "Bob", "clinician")
	addContact(t, alice, "Bob", bob)

	holders := func() []consent.ID {
		var out []consent.ID
		for _, p := range dn.Peers {
			if p.Store.Holds(alice.ID()) {
				out = append(out, consent.ID(p.Host.ID().String()))
			}
		}
		slices.Sort(out)
		return out
	}
	named := func() ([]consent.ID, uint64) {
		l, _, err := alice.openLedger(false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var ps []consent.ID
		var seq uint64
		l.View(func(v *consent.View) { ps, seq = v.ServingPeers(alice.ID()), v.Head(alice.ID()).Seq })
		return ps, seq
	}
	check := func(when string) uint64 {
		t.Helper()
		ps, seq := named()
		if h := holders(); len(h) == 0 || !slices.Equal(ps, h) {
			t.Fatalf("%s: the serve entry names %v, the holders are %v", when, ps, h)
		}
		return seq
	}

	add := func(label string) RecordInfo {
		info, err := alice.AddRecord(ctx, bytes.NewReader([]byte("record "+label)), AddRecordOptions{Label: label, K: 1, N: 2})
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	r1 := add("one")
	seq := check("after the first record")

	// Nothing changed: no new serve entry.
	c, err := alice.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = alice.serveOn(ctx, c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, s := named(); s != seq {
		t.Fatalf("serveOn with nothing placed wrote %d entries", s-seq)
	}

	// A second record that some peer holds and the first's holders do not
	// (a few tries: placement is by random record ID).
	first, _ := named()
	var r2 RecordInfo
	for i := 0; ; i++ {
		r2 = add(fmt.Sprint("two ", i))
		check("after the second record")
		if ps, _ := named(); !slices.Equal(ps, first) {
			break
		}
		if i == 10 {
			t.Fatal("ten records on the same peers")
		}
		if _, err := alice.RemoveRecord(ctx, r2.ID, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := named()
	g, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{r1.ID}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RemoveRecord(ctx, r2.ID, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	dropSeq := check("after removing the second record")
	if _, err := alice.Revoke(ctx, g.ID.String()); err != nil {
		t.Fatal(err)
	}
	after, seq := named()
	if !slices.Equal(after, first) {
		t.Fatalf("after removing the second record the serve entry names %v, not the first's holders %v", after, first)
	}

	// The peers that serve Alice take her feed; those that never did hold
	// none of it, and those it no longer names (the second record's) stop
	// getting it: neither the serve entry that dropped them nor the
	// revocation after it. (What they took before stays; issue 14.)
	for _, p := range dn.Peers {
		id := consent.ID(p.Host.ID().String())
		var head consent.Head
		p.Ledger.View(func(v *consent.View) { head = v.Head(alice.ID()) })
		switch {
		case slices.Contains(after, id):
		case slices.Contains(before, id):
			if head.Seq >= dropSeq {
				t.Errorf("peer %s, no longer named, holds %d of %d entries of Alice's feed", p.Host.ID().ShortString(), head.Seq, seq)
			}
			if p.Served().Has(alice.ID()) {
				t.Errorf("peer %s, no longer named, still has Alice enrolled", p.Host.ID().ShortString())
			}
		case head.Seq != 0:
			t.Errorf("peer %s never served Alice and holds %d entries of her feed", p.Host.ID().ShortString(), head.Seq)
		}
	}

	// Rotation places the record anew: the serve entry follows.
	if _, err := alice.Rotate(ctx, g.ID.String()); err != nil {
		t.Fatal(err)
	}
	check("after rotation")
}

// A record whose placement was never recorded (placed before
// placement.json, or before a restore) keeps the peers named so far in
// the serve entry: placing another record or granting does not drop them.
func TestServeEntryKeepsUnrecordedPlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 7, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	alice := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	named := func() []consent.ID {
		l, _, err := alice.openLedger(false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var ps []consent.ID
		l.View(func(v *consent.View) { ps = v.ServingPeers(alice.ID()) })
		return ps
	}
	if _, err := alice.AddRecord(ctx, bytes.NewReader([]byte("old record")), AddRecordOptions{K: 1, N: 2}); err != nil {
		t.Fatal(err)
	}
	before := named()
	if err := os.Remove(alice.placementPath()); err != nil { // as before placement.json
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := alice.AddRecord(ctx, bytes.NewReader([]byte(fmt.Sprint("new record ", i))), AddRecordOptions{K: 1, N: 2}); err != nil {
			t.Fatal(err)
		}
		for _, p := range before {
			if !slices.Contains(named(), p) {
				t.Fatalf("after record %d the serve entry %v dropped %s, a holder of the unrecorded record", i, named(), p.Short())
			}
		}
	}
}
