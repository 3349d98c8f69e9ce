package wallet

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
)

// After a sync, the access sub-feeds about the patient (the peers log her
// own reads in them) are witnessed: witness.json holds a checkpoint of
// each, signed by the sub-feed's own key and cosigned by witnesses other
// than its peer, and the audit checks them against the entries.
func TestSubFeedsWitnessedAfterSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 5, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	w := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	info, err := w.AddRecord(ctx, bytes.NewReader([]byte("a small record")), AddRecordOptions{Label: "note", K: 1, N: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.GetRecord(ctx, info.ID, io.Discard, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	l, _, err := w.openLedger(false)
	if err != nil {
		t.Fatal(err)
	}
	var subs map[consent.ID]consent.ID
	sizes := map[consent.ID]uint64{}
	l.View(func(v *consent.View) {
		subs = v.SubFeeds(w.ID())
		for _, f := range subs {
			sizes[f] = v.Head(f).Seq
		}
	})
	l.Close()
	if len(subs) == 0 {
		t.Fatal("no sub-feed about Alice after reading her record and syncing")
	}
	certs, notes, err := w.witnessedCheckpoints()
	if err != nil {
		t.Fatal(err)
	}
	witnessed := map[consent.ID]bool{}
	for i, c := range certs {
		sc, err := consent.OpenCheckpoint(notes[i], c.Key)
		if err != nil {
			t.Fatal(err)
		}
		parent := consent.ID("")
		for p, f := range subs {
			if f == c.Author {
				parent = p
			}
		}
		if parent == "" {
			continue // Alice's own feed
		}
		if sc.Size != sizes[c.Author] || len(sc.Cosigners) == 0 {
			t.Errorf("sub-feed of %s: size %d of %d, %d cosigners", parent.Short(), sc.Size, sizes[c.Author], len(sc.Cosigners))
		}
		for _, cs := range sc.Cosigners {
			if cs.Witness == parent {
				t.Errorf("the sub-feed's own peer %s cosigned it", parent.Short())
			}
		}
		witnessed[c.Author] = true
	}
	for p, f := range subs {
		if !witnessed[f] {
			t.Errorf("the sub-feed of %s about Alice is not witnessed", p.Short())
		}
	}
	rep, err := w.AuditLedger(ctx)
	if err != nil || !rep.OK() || len(rep.Checkpoints) != len(subs)+1 {
		t.Fatalf("audit: %v ok=%v, %d checkpoints for %d sub-feeds and her feed: %+v", err, rep.OK(), len(rep.Checkpoints), len(subs), rep.Findings)
	}
}
