package consent

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRepairDecide(t *testing.T) {
	w := newAuditWorld(t)
	rep := testSigner(t, "repairer")
	g := w.add(w.alice, t0.Add(-time.Hour), KindRepairGrant, &RepairGrantBody{Repairer: rep.ID(), Records: []string{"rec-1"}}).Hash()
	req := func(s Signer, record, scope, purpose string) *Request {
		return newRequest(t, s, w.alice.ID(), record, scope, purpose, t0)
	}
	cases := []struct {
		name  string
		r     *Request
		allow bool
		want  Reason
	}{
		{"repairer, granted record", req(rep, "rec-1", RepairScope, PurposeRepair), true, ReasonRepair},
		{"repairer, other record", req(rep, "rec-2", RepairScope, PurposeRepair), false, ReasonRecord},
		{"repairer, ordinary purpose", req(rep, "rec-1", "patient/Observation.rs", "TREAT"), false, ReasonWrongGrantee},
		{"repairer, another scope", req(rep, "rec-1", "patient/*.rs", PurposeRepair), false, ReasonScope},
		{"grantee asks for a repair", req(w.bob, "rec-1", RepairScope, PurposeRepair), false, ReasonNoRepairGrant},
		{"owner repairs", req(w.alice, "rec-1", RepairScope, PurposeRepair), true, ReasonOwner},
	}
	for _, tc := range cases {
		d := Decide(w.view, tc.r, t0)
		if d.Allow != tc.allow || d.Reason != tc.want {
			t.Errorf("%s: got %+v, want allow=%v %s", tc.name, d, tc.allow, tc.want)
		}
		if tc.want == ReasonRepair && d.Grant != g {
			t.Errorf("%s: grant %s, want the repair grant", tc.name, d.Grant)
		}
	}
	// An ordinary grant never covers a repair: the purpose is not HL7's.
	if _, err := LookupPurpose(PurposeRepair); err == nil {
		t.Fatal("the repair purpose is a purpose ordinary grants may name")
	}
	if !w.view.Names(w.alice.ID(), rep.ID()) {
		t.Fatal("the repair grant does not name the repairer: it cannot read the owner's feed")
	}
	if got := w.view.RepairOwners(rep.ID()); !slices.Equal(got, []ID{w.alice.ID()}) {
		t.Fatalf("RepairOwners = %v", got)
	}
	w.add(w.alice, t0.Add(-time.Minute), KindRepairRevoke, &RepairRevokeBody{Grant: g})
	if d := Decide(w.view, req(rep, "rec-1", RepairScope, PurposeRepair), t0); d.Allow || d.Reason != ReasonRevoked || d.Grant != g {
		t.Fatalf("after the revocation: %+v", d)
	}
	// Another owner's revocation of the grant means nothing.
	mallory := testSigner(t, "mallory")
	w2 := newAuditWorld(t)
	g2 := w2.add(w2.alice, t0.Add(-time.Hour), KindRepairGrant, &RepairGrantBody{Repairer: rep.ID(), All: true}).Hash()
	w2.add(mallory, t0.Add(-time.Minute), KindRepairRevoke, &RepairRevokeBody{Grant: g2})
	if d := Decide(w2.view, newRequest(t, rep, w2.alice.ID(), "rec-9", RepairScope, PurposeRepair, t0), t0); !d.Allow {
		t.Fatalf("all records, revoked by a stranger: %+v", d)
	}
}

// Repairs are logged like any access, audited against the policy as of the
// owner's prefix, and never counted as disclosures.
func TestRepairAuditAndDisclosures(t *testing.T) {
	w := newAuditWorld(t)
	rep := testSigner(t, "repairer")
	w.log(newRequest(t, rep, w.alice.ID(), "rec-1", RepairScope, PurposeRepair, t0), t0, nil) // before the grant: denied
	g := w.add(w.alice, t0.Add(time.Minute), KindRepairGrant, &RepairGrantBody{Repairer: rep.ID(), Records: []string{"rec-1"}}).Hash()
	w.log(newRequest(t, rep, w.alice.ID(), "rec-1", RepairScope, PurposeRepair, t0.Add(2*time.Minute)), t0.Add(2*time.Minute), nil)
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0.Add(2*time.Minute)), t0.Add(2*time.Minute), nil)
	w.add(w.alice, t0.Add(3*time.Minute), KindRepairRevoke, &RepairRevokeBody{Grant: g})
	// A decider that lets the revoked repairer in is caught.
	w.log(newRequest(t, rep, w.alice.ID(), "rec-1", RepairScope, PurposeRepair, t0.Add(4*time.Minute)), t0.Add(4*time.Minute),
		&Decision{Allow: true, Reason: ReasonRepair, Grant: g})
	rep2 := AuditLedger(w.entries)
	if got, want := kinds(rep2), "violation:revoked"; got != want {
		t.Fatalf("findings = %s, want %s", got, want)
	}
	if rep2.Allowed != 3 || rep2.Denied != 1 {
		t.Fatalf("report = %+v", rep2)
	}
	ds := Disclosures(w.view, w.alice.ID(), time.Time{})
	if len(ds) != 1 || ds[0].Recipient != w.bob.ID() {
		t.Fatalf("disclosures = %+v, want bob's read only", ds)
	}
}

func TestRepairBodies(t *testing.T) {
	rep := testSigner(t, "repairer").ID()
	bad := []RepairGrantBody{
		{Repairer: "nobody", All: true},
		{Repairer: rep},
		{Repairer: rep, All: true, Records: []string{"a"}},
		{Repairer: rep, Records: []string{"b", "a"}},
		{Repairer: rep, Records: []string{"all"}},
	}
	for _, b := range bad {
		if err := b.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%+v: %v", b, err)
		}
	}
	alice := testSigner(t, "alice")
	if _, err := NewEntry(alice, Head{}, t0, KindRepairRevoke, &RepairRevokeBody{}); err == nil {
		t.Fatal("a repair revoke naming no grant was signed")
	}
	e, err := NewEntry(alice, Head{}, t0, KindRepairGrant, &RepairGrantBody{Repairer: rep, Records: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind.String() != "repair-grant" || KindRepairRevoke.String() != "repair-revoke" {
		t.Fatal(e.Kind.String())
	}
	e2, err := DecodeEntry(e.Encode())
	if err != nil || e2.Hash() != e.Hash() {
		t.Fatalf("round trip: %v", err)
	}
}
