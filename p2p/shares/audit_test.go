package shares

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

// sealOnPeer seals a record of f.record's ID, puts its shares on the peer
// as the patient's and returns its repair capability and the local copy.
func sealOnPeer(t *testing.T, f *fixture) (*vault.RepairCap, *memstore.Store) {
	t.Helper()
	ctx := context.Background()
	rid, _ := vault.ParseRecordID(f.record)
	plain := make([]byte, 40_000)
	rand.Read(plain)
	local := memstore.New()
	m, err := vault.Seal(ctx, bytes.NewReader(plain), local, vault.SealOptions{
		Params: vault.Params{K: 2, N: 3, StripeSize: 8192}, Owner: f.patient.key.Public().(ed25519.PublicKey), RecordID: rid})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Shares {
		if _, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(local.Bytes(s.ID))); err != nil {
			t.Fatal(err)
		}
	}
	c, err := vault.NewRepairCap(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, local
}

func TestAudit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, _ := sealOnPeer(t, f)
	repairer := f.stranger
	repairReq := func() *consent.Request { return f.request(t, repairer, consent.RepairScope, consent.PurposeRepair) }

	// The owner audits without a request.
	for i := range c.N {
		if err := Audit(ctx, f.patient.h, f.peer.h.ID(), c, i, nil, 3); err != nil {
			t.Fatalf("owner's audit of share %d: %v", i, err)
		}
	}
	// A repairer needs the owner's repair grant.
	var de *DeniedError
	if err := Audit(ctx, repairer.h, f.peer.h.ID(), c, 0, repairReq(), 2); !errors.As(err, &de) || de.Reason != consent.ReasonNoRepairGrant {
		t.Fatalf("audit before the grant: %v", err)
	}
	if err := Audit(ctx, repairer.h, f.peer.h.ID(), c, 0, nil, 2); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("audit by a stranger without a request: %v", err)
	}
	g := f.patientAppends(t, consent.KindRepairGrant, &consent.RepairGrantBody{Repairer: repairer.id, All: true})
	if err := Audit(ctx, repairer.h, f.peer.h.ID(), c, 1, repairReq(), 4); err != nil {
		t.Fatalf("audit under the grant: %v", err)
	}
	// Audits are decided, not logged.
	if n := len(f.peerFeed()); n != 0 {
		t.Fatalf("%d access entries logged for audits", n)
	}
	// A holder whose blocks are not the capability's fails.
	liar := *c
	liar.Shares = append([]vault.ShareRef(nil), c.Shares...)
	bad := make([]vault.Hash, c.Stripes())
	liar.Shares[2] = vault.ShareRef{ID: c.Shares[2].ID, BlockHashes: bad}
	var ae *AuditError
	if err := Audit(ctx, f.patient.h, f.peer.h.ID(), &liar, 2, nil, 2); !errors.As(err, &ae) || !errors.Is(err, ErrAuditFailed) || ae.Index != 2 {
		t.Fatalf("audit of a share that does not match: %v", err)
	}
	// A share the peer does not hold.
	if err := Delete(ctx, f.patient.h, f.peer.h.ID(), c.Shares[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := Audit(ctx, f.patient.h, f.peer.h.ID(), c, 0, nil, 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("audit of a deleted share: %v", err)
	}
	f.patientAppends(t, consent.KindRepairRevoke, &consent.RepairRevokeBody{Grant: g.Hash()})
	if err := Audit(ctx, repairer.h, f.peer.h.ID(), c, 1, repairReq(), 2); !errors.As(err, &de) || de.Reason != consent.ReasonRevoked {
		t.Fatalf("audit after the revocation: %v", err)
	}
}

func TestRepairPut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, local := sealOnPeer(t, f)
	repairer := f.stranger
	lost := c.Shares[1].ID
	if err := Delete(ctx, f.patient.h, f.peer.h.ID(), lost); err != nil {
		t.Fatal(err)
	}
	share := local.Bytes(lost)
	put := func() (vault.ShareID, error) {
		return PutRepair(ctx, repairer.h, f.peer.h.ID(), f.record,
			f.request(t, repairer, consent.RepairScope, consent.PurposeRepair), bytes.NewReader(share))
	}
	var de *DeniedError
	if _, err := put(); !errors.As(err, &de) || de.Reason != consent.ReasonNoRepairGrant {
		t.Fatalf("repair put without a grant: %v", err)
	}
	if ab := f.lastAccess(t); ab.Allow || ab.Reason != consent.ReasonNoRepairGrant {
		t.Fatalf("logged %+v", ab)
	}
	if ok, _ := f.st.Has(ctx, lost); ok {
		t.Fatal("a denied repair put stored the share")
	}
	// A repairer's put for the ordinary purpose is refused before deciding.
	if _, err := PutRepair(ctx, repairer.h, f.peer.h.ID(), f.record, f.request(t, repairer, "patient/*.rs", "TREAT"), bytes.NewReader(share)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("repair put with another purpose: %v", err)
	}
	f.patientAppends(t, consent.KindRepairGrant, &consent.RepairGrantBody{Repairer: repairer.id, Records: []string{f.record}})
	id, err := put()
	if err != nil || id != lost {
		t.Fatalf("repair put under the grant: %v (id %s)", err, id)
	}
	ab := f.lastAccess(t)
	if !ab.Allow || ab.Reason != consent.ReasonRepair {
		t.Fatalf("logged %+v", ab)
	}
	meta, err := f.st.Meta(lost)
	if err != nil || meta.Owner != f.patient.id || meta.Record != f.record {
		t.Fatalf("stored as %+v (%v), want the patient's", meta, err)
	}
	// The repairer cannot delete what it put: the share is the owner's.
	if err := Delete(ctx, repairer.h, f.peer.h.ID(), lost); !errors.Is(err, ErrRemote) {
		t.Fatalf("repairer's delete: %v", err)
	}
	if err := Audit(ctx, f.patient.h, f.peer.h.ID(), c, 1, nil, 4); err != nil {
		t.Fatalf("audit of the repaired share: %v", err)
	}
}
