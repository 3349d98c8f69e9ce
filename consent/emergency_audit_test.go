package consent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// emWorld: mercy (an issuer) credentials frank and kate as emergency
// physicians; alice grants that role an emergency grant on rec-em and
// rec-em2 with a 4-hour time box; frank breaks the glass 10 minutes before
// t0; dave (a peer) decides and logs.
type emWorld struct {
	*world
	alice, mercy, frank, kate, dave *KeySigner
	gEm, cFrank, cKate, bgFrank     Hash
	bgAt                            time.Time
	box                             int64
}

const emRole = "emergency-physician"

func newEmWorld(t testing.TB) *emWorld {
	t.Helper()
	w := &emWorld{world: newWorld(t), alice: testSigner(t, "alice"), mercy: testSigner(t, "mercy"),
		frank: testSigner(t, "frank"), kate: testSigner(t, "kate"), dave: testSigner(t, "dave"),
		bgAt: t0.Add(-10 * time.Minute), box: 4 * 3600}
	erRole := testSigner(t, "mercy er role").ID()
	w.add(w.alice, t0.Add(-4*time.Hour), KindIdentity, &IdentityBody{AgeRecipient: "age1example", Role: "patient"})
	cred := func(subject ID) Hash {
		return w.add(w.mercy, t0.Add(-3*time.Hour), KindCredential, &CredentialBody{Subject: subject, Role: emRole,
			RoleID: erRole, NotBefore: t0.Add(-3 * time.Hour).Unix(), Details: []byte("ciphertext"), RoleRecipient: "age1role"}).Hash()
	}
	w.cFrank, w.cKate = cred(w.frank.ID()), cred(w.kate.ID())
	w.gEm = w.grant(w.alice, Grant{Grantee: erRole, Issuer: w.mercy.ID(), Role: emRole, Records: []string{"rec-em", "rec-em2"},
		Scopes: []string{"patient/*.rs"}, Purpose: PurposeEmergency, TimeBox: w.box})
	w.bgFrank = w.breakGlass(w.frank, w.bgAt, w.gEm)
	return w
}

func (w *emWorld) breakGlass(s Signer, at time.Time, grant Hash) Hash {
	return w.add(s, at, KindBreakGlass, &BreakGlassBody{Owner: w.alice.ID(), Grant: grant, Reason: []byte("ciphertext")}).Hash()
}

// logAsPeer has dave decide r at time at and log the decision exactly as
// p2p/shares does (owner head; requester head when the request names a
// break-glass entry; issuer and its head when the decision names one),
// then lets tamper change the body before it is signed.
func (w *emWorld) logAsPeer(r *Request, at time.Time, tamper func(*AccessBody)) *Entry {
	d := Decide(w.view, r, at)
	body := AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant,
		OwnerHead: w.view.Head(r.Owner), Issuer: d.Issuer, Credential: d.Credential, Until: d.Until}
	if !r.BreakGlass.IsZero() {
		h := w.view.Head(r.Requester)
		body.RequesterHead = &h
	}
	if d.Issuer != "" {
		h := w.view.Head(d.Issuer)
		body.IssuerHead = &h
	}
	if tamper != nil {
		tamper(&body)
	}
	return w.add(w.dave, at, KindAccess, &body)
}

// forceEmergencyAllow turns a logged decision into the emergency allow of
// frank under gEm that a dishonest peer would log.
func (w *emWorld) forceEmergencyAllow(b *AccessBody) {
	ih := w.view.Head(w.mercy.ID())
	b.Allow, b.Reason, b.Grant = true, ReasonEmergency, w.gEm
	b.Issuer, b.IssuerHead, b.Credential = w.mercy.ID(), &ih, w.cFrank
	b.Until = w.bgAt.Unix() + w.box
}

func TestAuditEmergencyAccess(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, w *emWorld)
		want string // kinds(report)
	}{
		{"honest emergency allow", func(t *testing.T, w *emWorld) {
			e := w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, nil)
			ab, _ := e.DecodedBody()
			if b := ab.(*AccessBody); !b.Allow || b.Reason != ReasonEmergency || b.RequesterHead == nil || b.IssuerHead == nil ||
				b.Credential != w.cFrank || b.Until != w.bgAt.Unix()+w.box {
				t.Fatalf("the peer logged %+v, want an emergency allow with every head", b)
			}
		}, ""},
		{"issuer head omitted", func(t *testing.T, w *emWorld) {
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, func(b *AccessBody) {
				b.Issuer, b.IssuerHead, b.Credential = "", nil, Hash{}
			})
		}, "violation:no-credential"},
		{"issuer head omitted after an honest allow", func(t *testing.T, w *emWorld) {
			// The audit's cached as-of view must not lend the second entry
			// the issuer's feed that only the first one named.
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, nil)
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em2", w.bgFrank), t0.Add(time.Second), func(b *AccessBody) {
				b.Issuer, b.IssuerHead, b.Credential = "", nil, Hash{}
			})
		}, "violation:no-credential"},
		{"requester head omitted", func(t *testing.T, w *emWorld) {
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, func(b *AccessBody) {
				b.RequesterHead = nil
			})
		}, "violation:no-break-glass"},
		{"issuer head not in the issuer's feed", func(t *testing.T, w *emWorld) {
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, func(b *AccessBody) {
				b.IssuerHead = &Head{Seq: 1, Hash: HashBytes([]byte("made up"))}
			})
		}, "violation:"},
		{"longer time box than the policy's", func(t *testing.T, w *emWorld) {
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, func(b *AccessBody) {
				b.Until += 3600
			})
		}, "violation:emergency"},
		{"allowed after the credential was revoked", func(t *testing.T, w *emWorld) {
			w.add(w.mercy, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: w.cFrank})
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, w.forceEmergencyAllow)
		}, "violation:credential-revoked"},
		{"emergency allow without break-glass", func(t *testing.T, w *emWorld) {
			r := newRequest(t, w.frank, w.alice.ID(), "rec-em", "patient/*.rs", PurposeEmergency, t0)
			w.logAsPeer(r, t0, w.forceEmergencyAllow)
		}, "violation:no-break-glass"},
		{"emergency reason on an ordinary allow", func(t *testing.T, w *emWorld) {
			// Honest decision granted (under a personal grant), logged as an
			// emergency: the reason must match too.
			g := w.grant(w.alice, Grant{Grantee: w.frank.ID(), Records: []string{"rec-em"}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
			w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, func(b *AccessBody) {
				if b.Reason != ReasonGranted || b.Grant != g {
					t.Fatalf("setup: %s under %s", b.Reason, b.Grant)
				}
				b.Reason, b.Until = ReasonEmergency, w.bgAt.Unix()+w.box
			})
		}, "violation:granted"},
		{"honest deny time-box", func(t *testing.T, w *emWorld) {
			w.breakGlass(w.kate, t0.Add(-5*time.Hour), w.gEm)
			bg := w.breakGlass(w.kate, t0.Add(-time.Minute), w.gEm)
			e := w.logAsPeer(breakGlassRequest(t, w.kate, w.alice.ID(), "rec-em", bg), t0, nil)
			ab, _ := e.DecodedBody()
			if b := ab.(*AccessBody); b.Allow || b.Reason != ReasonTimeBox {
				t.Fatalf("setup: the peer logged %s", b.Reason)
			}
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newEmWorld(t)
			c.run(t, w)
			rep := AuditLedger(w.entries)
			got := kinds(rep)
			if strings.HasSuffix(c.want, ":") {
				got = strings.SplitAfter(got, ":")[0]
			}
			if got != c.want {
				t.Fatalf("findings = %q, want %q (%+v)", got, c.want, rep.Findings)
			}
			if rep.OK() != (c.want == "") {
				t.Fatalf("OK = %v with findings %q", rep.OK(), got)
			}
		})
	}
}

func TestAuditEmergencyUnknownHeadIsNamed(t *testing.T) {
	w := newEmWorld(t)
	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, func(b *AccessBody) {
		b.RequesterHead = &Head{Seq: 9, Hash: HashBytes([]byte("made up"))}
	})
	rep := AuditLedger(w.entries)
	if len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0].Detail, "requester head") {
		t.Fatalf("findings = %+v", rep.Findings)
	}
	full := NewView()
	for _, e := range w.entries {
		full.Ingest(e)
	}
	if _, err := DecideAsOf(full, w.entries[len(w.entries)-1], breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank)); err == nil {
		t.Fatal("DecideAsOf accepted a made-up requester head")
	}
}

func TestAuditReportCountsEmergencies(t *testing.T) {
	w := newEmWorld(t)
	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, nil)
	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em2", w.bgFrank), t0.Add(time.Minute), nil)
	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-other", w.bgFrank), t0.Add(2*time.Minute), nil)
	rep := AuditLedger(w.entries)
	if !rep.OK() || rep.Accesses != 3 || rep.Allowed != 2 || rep.Denied != 1 || rep.Emergency != 2 {
		t.Fatalf("report = %+v", rep)
	}
	b, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(b), `"emergency":2`) {
		t.Fatalf("report JSON = %s (%v)", b, err)
	}
}

func TestDisclosuresEmergency(t *testing.T) {
	w := newEmWorld(t)
	bob := testSigner(t, "bob")
	w.grant(w.alice, Grant{Grantee: bob.ID(), Records: []string{"rec-1"}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	em := w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, nil)
	plain := w.logAsPeer(newRequest(t, bob, w.alice.ID(), "rec-1", "patient/*.rs", "TREAT", t0), t0.Add(time.Minute), nil)
	ds := Disclosures(w.view, w.alice.ID(), time.Time{})
	if len(ds) != 2 || ds[0].Entry != em.Hash() || ds[1].Entry != plain.Hash() {
		t.Fatalf("disclosures = %+v", ds)
	}
	if d := ds[0]; !d.Emergency || d.BreakGlass != w.bgFrank || d.Credential != w.cFrank || d.Grant != w.gEm || d.Purpose != PurposeEmergency {
		t.Fatalf("emergency disclosure = %+v", d)
	}
	if d := ds[1]; d.Emergency || !d.BreakGlass.IsZero() || !d.Credential.IsZero() {
		t.Fatalf("ordinary disclosure = %+v", d)
	}
	var m []map[string]any
	b, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"emergency", "break_glass", "credential"} {
		if _, ok := m[0][k]; !ok {
			t.Errorf("emergency disclosure JSON lacks %q: %s", k, b)
		}
		if _, ok := m[1][k]; ok {
			t.Errorf("ordinary disclosure JSON has %q: %s", k, b)
		}
	}
	if m[0]["break_glass"] != w.bgFrank.String() {
		t.Errorf("break_glass = %v, want %s", m[0]["break_glass"], w.bgFrank)
	}
}

func TestEmergencyAccesses(t *testing.T) {
	w := newEmWorld(t)
	carol := testSigner(t, "carol")
	// Kate breaks the glass twice: both time boxes run from her first.
	bgKate1 := w.breakGlass(w.kate, t0.Add(-2*time.Hour), w.gEm)
	bgKate2 := w.breakGlass(w.kate, t0.Add(-time.Minute), w.gEm)
	// A break-glass naming a grant the view does not hold, and one naming
	// another owner: the first is listed with no time box, the second not.
	unknown := HashBytes([]byte("no such grant"))
	bgUnknown := w.add(w.frank, t0.Add(-5*time.Minute), KindBreakGlass, &BreakGlassBody{Owner: w.alice.ID(), Grant: unknown, Reason: []byte("ciphertext")}).Hash()
	w.add(w.frank, t0.Add(-4*time.Minute), KindBreakGlass, &BreakGlassBody{Owner: carol.ID(), Grant: w.gEm, Reason: []byte("ciphertext")})

	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, nil)
	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em2", w.bgFrank), t0.Add(time.Minute), nil)
	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-other", w.bgFrank), t0.Add(2*time.Minute), nil) // denied: record
	w.logAsPeer(breakGlassRequest(t, w.kate, w.alice.ID(), "rec-em", bgKate2), t0.Add(3*time.Minute), nil)
	w.logAsPeer(newRequest(t, w.frank, w.alice.ID(), "rec-em", "patient/*.rs", PurposeEmergency, t0), t0.Add(4*time.Minute), nil) // names none

	w.add(w.alice, t0.Add(time.Hour), KindReview, &ReviewBody{Access: w.bgFrank, Outcome: ReviewOK})
	rv := w.add(w.alice, t0.Add(2*time.Hour), KindReview, &ReviewBody{Access: w.bgFrank, Outcome: ReviewDispute}).Hash()
	// Only the owner's reviews count.
	w.add(carol, t0.Add(time.Hour), KindReview, &ReviewBody{Access: bgKate1, Outcome: ReviewOK})

	got := EmergencyAccesses(w.view, w.alice.ID())
	kateUntil := t0.Add(-2*time.Hour).Unix() + w.box
	want := []EmergencyAccess{
		{BreakGlass: bgKate1, Requester: w.kate.ID(), Grant: w.gEm, Time: t0.Add(-2 * time.Hour).Unix(), Until: kateUntil},
		{BreakGlass: w.bgFrank, Requester: w.frank.ID(), Grant: w.gEm, Time: w.bgAt.Unix(), Until: w.bgAt.Unix() + w.box,
			Accesses: 2, Denied: 1, FirstAccess: t0.Unix(), Review: ReviewDispute, ReviewEntry: rv},
		{BreakGlass: bgUnknown, Requester: w.frank.ID(), Grant: unknown, Time: t0.Add(-5 * time.Minute).Unix()},
		{BreakGlass: bgKate2, Requester: w.kate.ID(), Grant: w.gEm, Time: t0.Add(-time.Minute).Unix(), Until: kateUntil,
			Accesses: 1, FirstAccess: t0.Add(3 * time.Minute).Unix()},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d emergency accesses, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v\nwant  %+v", i, got[i], want[i])
		}
	}
	if n := len(EmergencyAccesses(w.view, carol.ID())); n != 1 {
		t.Errorf("carol has %d emergency accesses, want 1", n)
	}
	if ea := EmergencyAccesses(NewView(), w.alice.ID()); ea == nil || len(ea) != 0 {
		t.Errorf("empty view: %#v, want an empty list", ea)
	}

	b, err := json.Marshal(got[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"break_glass", "requester", "grant", "time", "until", "accesses", "denied", "first_access", "review", "review_entry"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}
