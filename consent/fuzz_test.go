package consent

import (
	"bytes"
	"testing"
	"time"
)

// fuzzBodies are valid bodies of the kinds added with emergency access,
// signed into seed entries by the fuzz targets.
func fuzzBodies(tb testing.TB) map[Kind]any {
	frank, role, alice := testSigner(tb, "frank"), testSigner(tb, "role"), testSigner(tb, "alice")
	g := HashBytes([]byte("grant"))
	return map[Kind]any{
		KindCredential: &CredentialBody{Subject: frank.ID(), Role: "emergency-physician", RoleID: role.ID(),
			NotBefore: t0.Unix(), Expires: t0.Add(time.Hour).Unix(), Details: []byte("ciphertext"), RoleRecipient: "age1role"},
		KindBreakGlass: &BreakGlassBody{Owner: alice.ID(), Grant: g, Reason: []byte("ciphertext")},
		KindReview:     &ReviewBody{Access: g, Outcome: ReviewDispute, Note: []byte("ciphertext")},
		KindGrant: &Grant{Grantee: role.ID(), Issuer: testSigner(tb, "mercy").ID(), Role: "emergency-physician",
			Records: []string{"rec-1"}, Scopes: []string{"patient/*.rs"}, Purpose: PurposeEmergency, NotBefore: t0.Unix(), TimeBox: 3600},
	}
}

// The seed corpora live in testdata/fuzz/FuzzXxx (valid encodings taken
// from the test vectors, plus damaged ones); f.Add adds a few more.

// FuzzDecodeEntry: decoding never panics, and whatever decodes re-encodes
// to the same bytes (the encoding is canonical, so an entry has one
// encoding and one hash).
func FuzzDecodeEntry(f *testing.F) {
	alice := testSigner(f, "alice")
	e, err := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m"))})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e.Encode())
	f.Add([]byte{0xa0})
	for k, body := range fuzzBodies(f) {
		e, err := NewEntry(alice, Head{}, t0, k, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("decoded entry re-encodes differently")
		}
		// Every kind's body: what decodes re-encodes to the same bytes.
		if body, err := e.DecodedBody(); err == nil {
			if again, err := Marshal(body); err != nil || !bytes.Equal(again, e.Body) {
				t.Fatalf("decoded %s body re-encodes differently (%v)", e.Kind, err)
			}
		}
		_ = VerifyEntry(e)
		v := NewView()
		_, _ = v.Ingest(e)
		_ = AuditLedger([]*Entry{e})
		for _, id := range []ID{e.Author, testSigner(t, "alice").ID()} {
			_ = EmergencyAccesses(v, id)
			_, _ = DisclosuresFHIR(Disclosures(v, id, time.Time{}), func(ID) string { return "" }, t0)
		}
	})
}

// FuzzDecodeRequest: decoding never panics, decoded requests re-encode to
// the same bytes, and Decide on them never panics.
func FuzzDecodeRequest(f *testing.F) {
	bob := testSigner(f, "bob")
	r, err := SignRequest(bob, Request{Owner: testSigner(f, "alice").ID(), Record: "rec-1",
		Scope: "patient/Observation.rs", Purpose: "TREAT", Time: t0.Unix(), Nonce: bytes.Repeat([]byte{7}, 16)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Encode())
	bg := *r
	bg.Purpose, bg.Scope, bg.BreakGlass = PurposeEmergency, "patient/*.rs", HashBytes([]byte("break-glass"))
	if r, err = SignRequest(bob, bg); err != nil {
		f.Fatal(err)
	}
	f.Add(r.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatalf("decoded request re-encodes differently")
		}
		d := Decide(NewView(), r, time.Unix(r.Time, 0))
		if d.Allow {
			t.Fatal("empty view allowed a request")
		}
	})
}

// FuzzParseScope: parsing never panics, and the canonical form of a
// parsed scope parses to itself.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"patient/Observation.rs", "patient/*.read", "user/Condition.cruds?category=problem-list-item&x=y", "patient/Observation.sr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		again, err := ParseScope(sc.String())
		if err != nil || again.String() != sc.String() {
			t.Fatalf("canonical form %q does not round-trip: %v", sc.String(), err)
		}
	})
}

// FuzzReadExport: the export reader never panics on any file.
func FuzzReadExport(f *testing.F) {
	var buf bytes.Buffer
	alice := testSigner(f, "alice")
	e, _ := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m"))})
	WriteExport(&buf, []*Entry{e})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ReadExport(bytes.NewReader(b))
		if err == nil {
			AuditLedger(es)
		}
	})
}

// FuzzAuditAccessBody: whatever access body a peer signs and logs beside
// an emergency grant, a credential and a break-glass entry, the audit,
// the emergency summary and the FHIR accounting never panic; an allow the
// audit passes is one the policy gives, under the same time box.
func FuzzAuditAccessBody(f *testing.F) {
	base := newEmWorld(f)
	r := newRequest(f, base.frank, base.alice.ID(), "rec-em", "patient/*.rs", PurposeEmergency, t0)
	r.BreakGlass = base.bgFrank
	r, err := SignRequest(base.frank, *r)
	if err != nil {
		f.Fatal(err)
	}
	honest := base.logAsPeer(r, t0, nil)
	f.Add(honest.Body)
	noBG := newRequest(f, base.frank, base.alice.ID(), "rec-em", "patient/*.rs", PurposeEmergency, t0)
	forced := AccessBody{Request: noBG.Encode(), OwnerHead: base.view.Head(base.alice.ID())}
	base.forceEmergencyAllow(&forced)
	f.Add(mustMarshal(f, &forced))
	entries := base.entries[:len(base.entries)-1] // without the honest access
	dave := base.dave
	prev := base.view.Feed(dave.ID())
	head := Head{}
	if n := len(prev); n > 1 {
		head = prev[n-2].Head()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := decodeBody(KindAccess, b)
		if err != nil {
			return
		}
		e, err := NewEntry(dave, head, t0, KindAccess, body)
		if err != nil {
			return
		}
		all := append(entries[:len(entries):len(entries)], e)
		rep := AuditLedger(all)
		v := NewView()
		for _, x := range all {
			_, _ = v.Ingest(x)
		}
		_ = EmergencyAccesses(v, base.alice.ID())
		if _, err := DisclosuresFHIR(Disclosures(v, base.alice.ID(), time.Time{}), func(ID) string { return "" }, t0); err != nil {
			t.Fatal(err)
		}
		ab := body.(*AccessBody)
		if !ab.Allow || !rep.OK() {
			return
		}
		req, err := DecodeRequest(ab.Request)
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecideAsOf(v, e, req)
		if err != nil || !d.Allow || d.Reason != ab.Reason || ab.Until > d.Until {
			t.Fatalf("audit passed an allow the policy does not give: %+v (%v), logged %+v", d, err, ab)
		}
	})
}

func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
