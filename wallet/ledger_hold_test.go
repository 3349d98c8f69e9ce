package wallet

import (
	"bytes"
	"os"
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
)

// ledgerOpens is how many times w has opened its ledger file so far.
func ledgerOpens(w *Wallet) int {
	w.lh.mu.Lock()
	defer w.lh.mu.Unlock()
	return w.lh.opens
}

// Each use case of several steps over the network (pull, anchor, serve
// entry, publish...) opens the local ledger once, however many steps use
// it; opening restores the view and closing saves it, a cost that grows
// with the history. Between use cases the ledger is closed.
func TestUseCasesOpenTheLedgerOnce(t *testing.T) {
	ctx, dn := newDevnet(t, devnet.Options{Peers: 3})
	alice := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	bob := rotateWallet(t, dn.NetworkPath(), "Bob", "clinician")
	addContact(t, alice, "Bob", bob)

	once := func(what string, run func() error) {
		t.Helper()
		before := ledgerOpens(alice)
		if err := run(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := ledgerOpens(alice) - before; n != 1 {
			t.Errorf("%s opened the ledger %d times, want once", what, n)
		}
		if alice.lh.l != nil || alice.lh.refs != 0 {
			t.Errorf("%s left the ledger open (%d uses)", what, alice.lh.refs)
		}
	}
	var rec RecordInfo
	once("record add", func() (err error) {
		rec, err = alice.AddRecord(ctx, bytes.NewReader([]byte("a small record")), AddRecordOptions{K: 1, N: 2})
		return err
	})
	var gi GrantInfo
	once("grant", func() (err error) {
		gi, err = alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{rec.ID}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
		return err
	})
	once("grants", func() error {
		release := alice.HoldLedger()
		defer release()
		if _, err := alice.PullLedger(ctx); err != nil {
			return err
		}
		_, err := alice.ListGrants(ctx, GrantsOptions{Limit: 10})
		return err
	})
	once("revoke", func() error {
		_, err := alice.Revoke(ctx, gi.ID.String())
		return err
	})
	once("sync", func() error {
		res, err := alice.Sync(ctx)
		if err == nil && (res.Grants != 1 || res.Records != 1) {
			t.Errorf("sync counted %d grants and %d records, want 1 and 1", res.Grants, res.Records)
		}
		return err
	})
	// What the steps wrote is in the ledger, and a peer holds it.
	var head consent.Head
	dn.Peers[0].Ledger.View(func(v *consent.View) { head = v.Head(alice.ID()) })
	gs, err := alice.Grants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Status != GrantRevoked || head.Seq == 0 {
		t.Fatalf("after the use cases: grants %+v, a peer's head of the feed %d", gs, head.Seq)
	}
}

// Import reads the wrapped record keys from the grant's entry, not from
// the ledger view's description of the grant, which need not hold them.
func TestImportReadsTheWrappedKeysFromTheEntry(t *testing.T) {
	ctx, dn := newDevnet(t, devnet.Options{Peers: 3})
	alice := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	bob := rotateWallet(t, dn.NetworkPath(), "Bob", "clinician")
	addContact(t, alice, "Bob", bob)
	plain := []byte(`{"resourceType":"Observation","id":"o1"}`)
	rec, err := alice.AddRecord(ctx, bytes.NewReader(plain), AddRecordOptions{K: 1, N: 2})
	if err != nil {
		t.Fatal(err)
	}
	gi, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{rec.ID}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.PullLedger(ctx); err != nil {
		t.Fatal(err)
	}
	// Bob's view of the grant keeps which records it wraps, not the keys.
	release := bob.HoldLedger()
	defer release()
	l, _, err := bob.openLedger(false)
	if err != nil {
		t.Fatal(err)
	}
	l.View(func(v *consent.View) {
		g, ok := v.Grant(gi.ID)
		if !ok || len(g.Keys) != 1 {
			t.Fatalf("bob's ledger holds grant %v: %v", ok, g)
		}
		g.Keys = []consent.WrappedKey{{Record: g.Keys[0].Record}}
	})
	l.Close()
	got, err := bob.Import(ctx, ImportOptions{Grant: gi.ID.String(), OutDir: t.TempDir()})
	if err != nil || len(got) != 1 {
		t.Fatalf("import: %v, %v", got, err)
	}
	if b, err := os.ReadFile(got[0].File); err != nil || !bytes.Equal(b, plain) {
		t.Fatalf("the imported record differs: %v", err)
	}
}
