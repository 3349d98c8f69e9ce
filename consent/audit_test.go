package consent

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// auditWorld: alice grants bob rec-1; dave (a peer) decides requests.
type auditWorld struct {
	*world
	alice, bob, carol, dave *KeySigner
	grant                   Hash
}

func newAuditWorld(t *testing.T) *auditWorld {
	w := &auditWorld{world: newWorld(t), alice: testSigner(t, "alice"), bob: testSigner(t, "bob"),
		carol: testSigner(t, "carol"), dave: testSigner(t, "dave")}
	w.add(w.alice, t0.Add(-2*time.Hour), KindIdentity, &IdentityBody{AgeRecipient: "age1example", Role: "patient"})
	w.grant = w.world.grant(w.alice, Grant{Grantee: w.bob.ID(), Records: []string{"rec-1"},
		Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"})
	return w
}

// log has dave decide r honestly at time at, or record the decision given.
func (w *auditWorld) log(r *Request, at time.Time, forced *Decision) *Entry {
	d := Decide(w.view, r, at)
	if forced != nil {
		d = *forced
	}
	return w.add(w.dave, at, KindAccess, &AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason,
		Grant: d.Grant, OwnerHead: w.view.Head(r.Owner)})
}

func kinds(r *AuditReport) string {
	var s []string
	for _, f := range r.Findings {
		s = append(s, f.Kind+":"+string(f.Reason))
	}
	return strings.Join(s, ",")
}

func TestAuditHonestLedger(t *testing.T) {
	w := newAuditWorld(t)
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), t0, nil)
	w.log(newRequest(t, w.carol, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), t0, nil)
	// Allowed before the revocation: not a violation afterwards.
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.r", "TREAT", t0.Add(time.Minute)), t0.Add(time.Minute), nil)
	w.add(w.alice, t0.Add(2*time.Minute), KindRevoke, &RevokeBody{Grant: w.grant})
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0.Add(3*time.Minute)), t0.Add(3*time.Minute), nil)

	var buf bytes.Buffer
	if err := WriteExport(&buf, w.entries); err != nil {
		t.Fatal(err)
	}
	entries, err := ReadExport(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	rep := AuditLedger(entries)
	if !rep.OK() || len(rep.Findings) != 0 {
		t.Fatalf("honest ledger: %s", kinds(rep))
	}
	if rep.Accesses != 4 || rep.Allowed != 2 || rep.Denied != 2 || rep.Grants != 1 || rep.Revocations != 1 || rep.Feeds != 2 {
		t.Fatalf("report = %+v", rep)
	}
	ds := Disclosures(w.view, w.alice.ID(), time.Time{})
	if len(ds) != 2 || ds[0].Recipient != w.bob.ID() || ds[0].Decider != w.dave.ID() || ds[0].Grant != w.grant {
		t.Fatalf("disclosures = %+v", ds)
	}
	if len(Disclosures(w.view, w.alice.ID(), t0.Add(30*time.Second))) != 1 {
		t.Fatal("since filter")
	}
}

func TestAuditFindsViolations(t *testing.T) {
	w := newAuditWorld(t)
	allow := &Decision{Allow: true, Reason: ReasonGranted}
	allow.Grant = w.grant
	// carol was never granted anything.
	w.log(newRequest(t, w.carol, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), t0, allow)
	// The same request twice: the second is a replay.
	r := newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	w.log(r, t0, nil)
	w.log(r, t0, allow)
	// Allowed after the revocation.
	w.add(w.alice, t0.Add(time.Minute), KindRevoke, &RevokeBody{Grant: w.grant})
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0.Add(2*time.Minute)), t0.Add(2*time.Minute), allow)
	rep := AuditLedger(w.entries)
	if got, want := kinds(rep), "violation:wrong-grantee,violation:replay,violation:revoked"; got != want {
		t.Fatalf("findings = %s, want %s", got, want)
	}
	if rep.OK() {
		t.Fatal("OK with violations")
	}
}

func TestAuditUnknownOwnerHead(t *testing.T) {
	w := newAuditWorld(t)
	r := newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	w.add(w.dave, t0, KindAccess, &AccessBody{Request: r.Encode(), Allow: true, Reason: ReasonGranted,
		Grant: w.grant, OwnerHead: Head{Seq: 2, Hash: HashBytes([]byte("made up"))}})
	rep := AuditLedger(w.entries)
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != FindingViolation || !strings.Contains(rep.Findings[0].Detail, "owner head") {
		t.Fatalf("findings = %+v", rep.Findings)
	}
}

func TestAuditTamperedEntries(t *testing.T) {
	w := newAuditWorld(t)
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), t0, nil)
	var buf bytes.Buffer
	WriteExport(&buf, w.entries)
	good := buf.Bytes()

	// Dropping alice's identity (her seq 1) leaves a gap in her feed.
	rep := AuditLedger(append([]*Entry{}, w.entries[1:]...))
	if rep.OK() || !strings.Contains(kinds(rep), "chain") {
		t.Fatalf("dropped entry: %s", kinds(rep))
	}
	// A flipped bit in the last signature decodes but does not verify.
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	entries, err := ReadExport(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	if rep := AuditLedger(entries); rep.OK() || rep.Findings[0].Kind != FindingInvalid {
		t.Fatalf("flipped bit: %s", kinds(rep))
	}
	// Framing damage is refused by ReadExport.
	for name, b := range map[string][]byte{
		"truncated": good[:len(good)-3],
		"trailing":  append(bytes.Clone(good), 0),
		"magic":     append([]byte("x"), good[1:]...),
		"empty":     nil,
	} {
		if _, err := ReadExport(bytes.NewReader(b)); !errors.Is(err, ErrBadExport) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestLedgerMemStore(t *testing.T) {
	alice := testSigner(t, "alice")
	s := NewMemStore()
	l, err := OpenLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := l.Append(alice, t0.Add(time.Duration(i)*time.Second), KindAnchor,
			&AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte{byte(i)})}); err != nil {
			t.Fatal(err)
		}
	}
	l2, err := OpenLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(l2.Entries()) != 3 {
		t.Fatalf("reopened ledger has %d entries", len(l2.Entries()))
	}
}

// TestDisclosureScopes: an insurer granted Claim and ExplanationOfBenefit
// asks under the first scope only; the disclosure shows both, in the
// accounting and in the AuditEvent, and keeps the request's scope apart.
// An allowed access whose grant the view does not hold falls back to the
// request's scope.
func TestDisclosureScopes(t *testing.T) {
	w := newAuditWorld(t)
	ins := testSigner(t, "insurer")
	g := w.world.grant(w.alice, Grant{Grantee: ins.ID(), Records: []string{"rec-1"},
		Scopes: []string{"patient/Claim.rs", "patient/ExplanationOfBenefit.rs"}, Purpose: "HPAYMT"})
	w.log(newRequest(t, ins, w.alice.ID(), "rec-1", "patient/Claim.rs", "HPAYMT", t0), t0, nil)
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0.Add(time.Second)), t0.Add(time.Second), nil)
	unknown := &Decision{Allow: true, Reason: ReasonGranted, Grant: Hash{1}}
	w.log(newRequest(t, w.carol, w.alice.ID(), "rec-1", "patient/Condition.rs", "TREAT", t0.Add(2*time.Second)), t0.Add(2*time.Second), unknown)

	ds := Disclosures(w.view, w.alice.ID(), time.Time{})
	if len(ds) != 3 || ds[0].Grant != g {
		t.Fatalf("disclosures = %+v", ds)
	}
	want := []struct {
		scope  string
		scopes []string
		what   string
	}{
		{"patient/Claim.rs", []string{"patient/Claim.rs", "patient/ExplanationOfBenefit.rs"}, "record rec-1, scopes patient/Claim.rs patient/ExplanationOfBenefit.rs"},
		{"patient/Observation.rs", []string{"patient/Observation.rs"}, "record rec-1, scope patient/Observation.rs"},
		{"patient/Condition.rs", []string{"patient/Condition.rs"}, "record rec-1, scope patient/Condition.rs"},
	}
	for i, d := range ds {
		if d.Scope != want[i].scope || strings.Join(d.Scopes, " ") != strings.Join(want[i].scopes, " ") || d.What() != want[i].what {
			t.Errorf("disclosure %d: scope %q, scopes %q, %q; want %q, %q, %q", i, d.Scope, d.Scopes, d.What(), want[i].scope, want[i].scopes, want[i].what)
		}
	}
	// The accounting returns copies: changing one does not change the view's grant.
	ds[0].Scopes[0] = "patient/Patient.rs"
	if g2, _ := w.view.Grant(g); g2.Scopes[0] != "patient/Claim.rs" {
		t.Fatal("Disclosures shares the grant's scope slice")
	}
	ds[0].Scopes[0] = "patient/Claim.rs"

	fhir, err := DisclosuresFHIR(ds[:1], func(ID) string { return "" }, t0)
	if err != nil || !strings.Contains(string(fhir), `"description": "record rec-1, scopes patient/Claim.rs patient/ExplanationOfBenefit.rs"`) {
		t.Fatalf("AuditEvent does not carry every scope: %s %v", fhir, err)
	}
}
