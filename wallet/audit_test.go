package wallet

import (
	"context"
	"reflect"
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
)

// TestAuditLedgerEmergenciesOnePass: 'audit verify' reads the local
// ledger once: the report is AuditLedger's and the emergency accesses
// EmergencyAccesses', and a local ledger that does not verify is reported
// (an invalid-entry finding) instead of refused as a bad ledger.
func TestAuditLedgerEmergenciesOnePass(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	if _, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{cw.record.ID},
		Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"}); err != nil {
		t.Fatal(err)
	}
	req, err := bob.NewRequest(alice.ID(), cw.record.ID, "patient/Observation.rs", "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.DecideAccess(ctx, req); err != nil {
		t.Fatal(err)
	}
	rep, eas, err := alice.AuditLedgerEmergencies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := alice.AuditLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEAs, err := alice.EmergencyAccesses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, want) || !reflect.DeepEqual(eas, wantEAs) || !rep.OK() || rep.Accesses != 1 {
		t.Fatalf("one pass: %+v %+v; want %+v %+v", rep, eas, want, wantEAs)
	}

	// A stranger's entry with a broken signature gets into the store.
	s, err := boltstore.Open(alice.ledgerPath())
	if err != nil {
		t.Fatal(err)
	}
	ms, err := consent.NewKeySigner(bobSigning(t, bob))
	if err != nil {
		t.Fatal(err)
	}
	e, err := consent.NewEntry(ms, consent.Head{}, cw.now, consent.KindAnchor, &consent.AnchorBody{Record: "x", Manifest: consent.HashBytes([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	e.Sig[0] ^= 1
	if err := s.Put(e); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Commands trust the signatures their own store holds (checked on
	// ingest, docs/network.md "Verify once"); the audit re-checks them.
	rep, _, err = alice.AuditLedgerEmergencies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Findings) != 1 || rep.Findings[0].Kind != consent.FindingInvalid {
		t.Fatalf("bad ledger: %+v", rep)
	}
}

func bobSigning(t *testing.T, w *Wallet) []byte {
	t.Helper()
	id, err := w.Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Signing
}
