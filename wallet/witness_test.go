package wallet

import (
	"bytes"
	"testing"

	"github.com/medwallet/medwallet/consent"
)

// After each publish, three of the devnet's four peers cosign a checkpoint
// of the wallet's feed; the export carries it and audits clean, and the
// wallet's own audit reports it. A witness that cosigned a smaller size is
// brought forward by a consistency proof.
func TestPublishWitnessesTheFeed(t *testing.T) {
	ctx, netPath := startDevnet(t)
	w := rotateWallet(t, netPath, "Alice", "patient")
	anchor := func(label string) {
		l, signer, err := w.openLedger(true)
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.Append(signer, w.Now(), consent.KindAnchor, &consent.AnchorBody{Record: "00112233445566778899aabbccddeeff",
			Manifest: consent.HashBytes([]byte(label))})
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, label := range []string{"one", "two"} {
		anchor(label)
		if err := w.publishFeed(ctx); err != nil {
			t.Fatal(err)
		}
		certs, notes, err := w.witnessedCheckpoints()
		if err != nil || len(certs) != 1 || len(notes) != 1 {
			t.Fatalf("after publish %d: %v, %d certs, %d notes", i+1, err, len(certs), len(notes))
		}
		sc, err := consent.OpenCheckpoint(notes[0], certs[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Size != uint64(i+2) || len(sc.Cosigners) != DefaultWitnesses {
			t.Fatalf("after publish %d: size %d, %d cosigners", i+1, sc.Size, len(sc.Cosigners))
		}
	}
	var buf bytes.Buffer
	if _, err := w.ExportLedger(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte(consent.ExportMagicCheckpoints)) {
		t.Fatal("the export carries no checkpoints")
	}
	rep, err := AuditExport(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Checkpoints) != 1 || rep.Checkpoints[0].Author != w.ID() || rep.Checkpoints[0].Size != 3 {
		t.Fatalf("export audit: %+v %+v", rep.Findings, rep.Checkpoints)
	}
	local, err := w.AuditLedger(ctx)
	if err != nil || !local.OK() || len(local.Checkpoints) != 1 {
		t.Fatalf("local audit: %v %+v", err, local)
	}
}
