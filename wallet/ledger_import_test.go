package wallet

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/medwallet/medwallet/p2p/devnet"
)

// `ledger import` keeps the checkpoints and cosignatures an export
// carries: a fresh wallet that imports Alice's export audits the same
// checkpoints as Alice, and its own export carries them on; importing
// the file again changes nothing.
func TestImportKeepsCheckpoints(t *testing.T) {
	ctx, dn := newDevnet(t, devnet.Options{Peers: 3})
	alice := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	if _, err := alice.AddRecord(ctx, bytes.NewReader([]byte("a small record")), AddRecordOptions{Label: "note", K: 1, N: 2}); err != nil {
		t.Fatal(err)
	}
	want, err := alice.AuditLedger(ctx)
	if err != nil || !want.OK() || len(want.Checkpoints) == 0 || len(want.Checkpoints[0].Cosigners) == 0 {
		t.Fatalf("Alice's audit: %v %+v", err, want)
	}
	var file bytes.Buffer
	if _, err := alice.ExportLedger(&file); err != nil {
		t.Fatal(err)
	}

	auditor, err := Init(memConfig(t), "Auditor", "auditor")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := auditor.ImportLedger(bytes.NewReader(file.Bytes())); err != nil {
			t.Fatal(err)
		}
		got, err := auditor.AuditLedger(ctx)
		if err != nil || !got.OK() {
			t.Fatalf("import %d: the auditor's audit: %v %+v", i+1, err, got)
		}
		if !reflect.DeepEqual(got.Checkpoints, want.Checkpoints) {
			t.Fatalf("import %d: the auditor audits checkpoints %+v, Alice %+v", i+1, got.Checkpoints, want.Checkpoints)
		}
	}
	var again bytes.Buffer
	if _, err := auditor.ExportLedger(&again); err != nil {
		t.Fatal(err)
	}
	certs, notes, err := auditor.witnessedCheckpoints()
	if err != nil || len(certs) != len(want.Checkpoints) || len(notes) != len(want.Checkpoints) {
		t.Fatalf("the auditor's witness.json: %v, %d certificates, %d notes", err, len(certs), len(notes))
	}
}
