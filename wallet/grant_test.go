package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
)

// consentWallets: alice (patient) with one record, and bob (clinician) in
// her contacts; both on a fixed clock that tests move.
type consentWallets struct {
	alice, bob *Wallet
	record     RecordInfo
	now        time.Time
}

func newConsentWallets(t *testing.T) *consentWallets {
	t.Helper()
	cw := &consentWallets{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return cw.now }
	ac := memConfig(t)
	ac.Now = clock
	alice, err := Init(ac, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	bc := memConfig(t)
	bc.Now = clock
	bob, err := Init(bc, "Dr Bob", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact("Bob", bob.Card().String()); err != nil {
		t.Fatal(err)
	}
	rec, err := alice.AddRecord(context.Background(), strings.NewReader(`{"resourceType":"Bundle"}`), AddRecordOptions{Label: "labs"})
	if err != nil {
		t.Fatal(err)
	}
	cw.alice, cw.bob, cw.record = alice, bob, rec
	return cw
}

func TestGrantDecideRevokeAudit(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	g, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{cw.record.ID[:6]},
		Scopes: []string{"patient/Observation.read"}, Purpose: "TREAT", Expires: "30d"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Grantee != bob.ID() || g.GranteeName != "Bob" || g.Status != GrantActive || !g.Given ||
		len(g.Records) != 1 || g.Records[0] != cw.record.ID || g.Scopes[0] != "patient/Observation.rs" ||
		g.Purpose.Display != "treatment" || !g.Expires.Equal(cw.now.Add(30*24*time.Hour)) || g.WrappedKeys != 1 {
		t.Fatalf("grant = %+v", g)
	}
	// The ledger: identity, anchor, grant.
	es, err := alice.LedgerEntries()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range es {
		kinds = append(kinds, e.Kind.String())
	}
	if strings.Join(kinds, ",") != "identity,anchor,grant" {
		t.Fatalf("ledger kinds = %v", kinds)
	}
	// No name and no label on the ledger.
	for _, e := range es {
		if bytes.Contains(e.Encode(), []byte("Alice")) || bytes.Contains(e.Encode(), []byte("Bob")) || bytes.Contains(e.Encode(), []byte("labs")) {
			t.Fatalf("a %s entry carries a name or label", e.Kind)
		}
	}
	// Bob can unwrap the record key; the key is the record's.
	body, _ := es[2].DecodedBody()
	wk := body.(*consent.Grant).Keys[0]
	bid, _ := bob.Identity()
	r, err := age.Decrypt(bytes.NewReader(wk.Key), bid.Age)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	key, _ := alice.RecordKey(ctx, cw.record.ID)
	if string(got) != key.String() {
		t.Fatal("wrapped key is not the record key")
	}

	// Bob asks; alice's wallet decides and logs.
	req, err := bob.NewRequest(alice.ID(), cw.record.ID, "patient/Observation.rs", "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := alice.DecideAccess(ctx, req); err != nil || !d.Allow || d.Grant != g.ID {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	if _, err := alice.DecideAccess(ctx, req); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("replayed request: %v", err)
	}
	ds, err := alice.Disclosures(ctx, time.Time{})
	if err != nil || len(ds) != 1 || ds[0].RecipientName != "Bob" || ds[0].PurposeDisplay != "treatment" ||
		ds[0].Description != "record "+cw.record.ID+", scope patient/Observation.rs" {
		t.Fatalf("disclosures = %+v, %v", ds, err)
	}
	fhir, err := alice.DisclosuresFHIR(ds)
	if err != nil || !strings.Contains(string(fhir), `"AuditEvent"`) {
		t.Fatalf("fhir: %v", err)
	}

	// Revoke; the next request is denied.
	cw.now = cw.now.Add(time.Hour)
	rg, err := alice.Revoke(ctx, g.ID.String()[:10])
	if err != nil || rg.Status != GrantRevoked {
		t.Fatalf("revoke: %+v %v", rg, err)
	}
	if _, err := alice.Revoke(ctx, g.ID.String()); !errors.Is(err, ErrExists) {
		t.Fatalf("second revoke: %v", err)
	}
	req2, _ := bob.NewRequest(alice.ID(), cw.record.ID, "patient/Observation.rs", "TREAT")
	if d, err := alice.DecideAccess(ctx, req2); !errors.Is(err, ErrDenied) || d.Reason != consent.ReasonRevoked {
		t.Fatalf("after revoke: %+v %v", d, err)
	}
	c, err := alice.GrantFHIR(ctx, g.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	var cj struct{ Status string }
	json.Unmarshal(c, &cj)
	if cj.Status != "inactive" {
		t.Fatalf("FHIR status = %q", cj.Status)
	}

	// Audit: local ledger, and an export verified as an auditor would.
	rep, err := alice.AuditLedger(ctx)
	if err != nil || !rep.OK() || rep.Accesses != 3 || rep.Allowed != 1 {
		t.Fatalf("audit = %+v, %v", rep, err)
	}
	var buf bytes.Buffer
	n, err := alice.ExportLedger(&buf)
	if err != nil || n != len(es)+4 {
		t.Fatalf("export: %d entries, %v", n, err)
	}
	if rep, err := AuditExport(bytes.NewReader(buf.Bytes())); err != nil || AuditFailure(rep) != nil {
		t.Fatalf("export audit: %v %v", err, AuditFailure(rep))
	}
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)-10] ^= 1
	rep, err = AuditExport(bytes.NewReader(bad))
	if err == nil {
		err = AuditFailure(rep)
	}
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("tampered export: %v", err)
	}

	// Bob imports alice's ledger: he sees the grant made to him, and
	// cannot revoke it.
	res, err := bob.ImportLedger(bytes.NewReader(buf.Bytes()))
	if err != nil || res.Added != n || res.Rejected != 0 {
		t.Fatalf("import: %+v %v", res, err)
	}
	gs, err := bob.Grants(ctx)
	if err != nil || len(gs) != 1 || gs[0].Given || gs[0].Author != alice.ID() || gs[0].Status != GrantRevoked {
		t.Fatalf("bob's grants = %+v %v", gs, err)
	}
	if _, err := bob.Revoke(ctx, g.ID.String()); !errors.Is(err, ErrDenied) {
		t.Fatalf("revoke of someone else's grant: %v", err)
	}
	// Importing again adds nothing.
	if res, err := bob.ImportLedger(bytes.NewReader(buf.Bytes())); err != nil || res.Added != 0 || res.Known != n {
		t.Fatalf("second import: %+v %v", res, err)
	}
}

func TestGrantErrors(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	rec := cw.record.ID
	for _, c := range []struct {
		name string
		opts GrantOptions
		want error
		msg  string
	}{
		{"unknown contact", GrantOptions{To: "Carol", Records: []string{rec}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"}, ErrNotFound, `no contact "Carol"`},
		{"unknown ID", GrantOptions{To: string(testID(t)), Records: []string{rec}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"}, ErrNotFound, "no identity entry"},
		{"invalid scope", GrantOptions{To: "Bob", Records: []string{rec}, Scopes: []string{"patient/Obs.rs"}, Purpose: "TREAT"}, ErrInvalid, `unknown FHIR R4 resource type "Obs"`},
		{"no scope", GrantOptions{To: "Bob", Records: []string{rec}, Purpose: "TREAT"}, ErrInvalid, "no scope"},
		{"unknown purpose", GrantOptions{To: "Bob", Records: []string{rec}, Scopes: []string{"patient/Observation.rs"}, Purpose: "FUN"}, ErrInvalid, `unknown purpose of use "FUN"`},
		{"bad date", GrantOptions{To: "Bob", Records: []string{rec}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", Expires: "soon"}, ErrInvalid, `expiry "soon"`},
		{"past date", GrantOptions{To: "Bob", Records: []string{rec}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", Expires: "2020-01-01"}, ErrInvalid, "in the past"},
		{"no records", GrantOptions{To: "Bob", Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"}, ErrInvalid, "name the records"},
		{"unknown record", GrantOptions{To: "Bob", Records: []string{"ffffffff"}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"}, ErrNotFound, "record"},
		{"self", GrantOptions{To: string(cw.alice.ID()), Records: []string{rec}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"}, ErrInvalid, "yourself"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := cw.alice.Grant(ctx, c.opts)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
	// Nothing was written by the failures.
	if es, _ := cw.alice.LedgerEntries(); len(es) != 0 {
		t.Fatalf("%d entries written by failed grants", len(es))
	}
	for _, c := range []struct {
		ref  string
		want error
	}{{"abc", ErrInvalid}, {"0123456789abcdef", ErrNotFound}, {"not-hex-at-all", ErrInvalid}} {
		if _, err := cw.alice.Revoke(ctx, c.ref); !errors.Is(err, c.want) {
			t.Errorf("revoke %q: %v, want %v", c.ref, err, c.want)
		}
	}
}

func testID(t *testing.T) consent.ID {
	w, err := Init(memConfig(t), "Carol", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"12h":                  now.Add(12 * time.Hour),
		"30d":                  now.Add(30 * 24 * time.Hour),
		"2w":                   now.Add(14 * 24 * time.Hour),
		"2026-12-31":           time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T17:00:00Z": time.Date(2026, 3, 1, 17, 0, 0, 0, time.UTC),
	} {
		got, err := ParseExpiry(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"tomorrow", "30", "-1d", "2026-02-28", "2026-13-01"} {
		if _, err := ParseExpiry(in, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseExpiry(%q) accepted", in)
		}
	}
}

func TestImportFindsEquivocation(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	if _, err := alice.AnchorRecord(ctx, cw.record.ID); err != nil {
		t.Fatal(err)
	}
	es, err := alice.LedgerEntries()
	if err != nil || len(es) != 2 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	// Alice signs a second, different entry 2 (as a restored, out-of-date
	// copy of her wallet would).
	id, _ := alice.Identity()
	s, _ := consent.NewKeySigner(id.Signing)
	fork, err := consent.NewEntry(s, es[0].Head(), cw.now, consent.KindAnchor,
		&consent.AnchorBody{Record: cw.record.ID, Manifest: consent.HashBytes([]byte("another manifest"))})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := consent.WriteExport(&buf, append(es, fork)); err != nil {
		t.Fatal(err)
	}
	res, err := bob.ImportLedger(bytes.NewReader(buf.Bytes()))
	if err != nil || res.Added != 2 || res.Equivocations != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	// Bob logged the proof in his own feed: identity + proof.
	mine := 0
	all, _ := bob.LedgerEntries()
	for _, e := range all {
		if e.Author == bob.ID() {
			mine++
			if e.Kind != consent.KindIdentity && e.Kind != consent.KindEquivocation {
				t.Fatalf("unexpected %s entry in bob's feed", e.Kind)
			}
		}
	}
	if mine != 2 {
		t.Fatalf("bob's feed has %d entries, want identity and proof", mine)
	}
	// The proof travels: an auditor of bob's export sees alice equivocate.
	var out bytes.Buffer
	if _, err := bob.ExportLedger(&out); err != nil {
		t.Fatal(err)
	}
	rep, err := AuditExport(&out)
	if err != nil || len(rep.Equivocators) != 1 || rep.Equivocators[0] != alice.ID() {
		t.Fatalf("audit: %+v %v", rep, err)
	}
	if err := AuditFailure(rep); !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "1 equivocation") {
		t.Fatalf("audit failure: %v", err)
	}
}

// One import fetches k shares, each allowed and logged by a peer: the
// accounting shows one disclosure made of k decisions, and a later fetch
// is a new disclosure.
func TestDisclosuresGroupShareFetches(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	if _, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{cw.record.ID},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"}); err != nil {
		t.Fatal(err)
	}
	fetch := func(n int) {
		for range n {
			req, err := bob.NewRequest(alice.ID(), cw.record.ID, "patient/*.rs", "TREAT")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := alice.DecideAccess(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
	}
	fetch(3)
	cw.now = cw.now.Add(time.Hour)
	fetch(2)
	ds, err := alice.Disclosures(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Decisions != 3 || len(ds[0].Entries) != 3 || ds[1].Decisions != 2 {
		t.Fatalf("disclosures = %+v, want two, of 3 and 2 decisions", ds)
	}
	if !strings.Contains(ds[0].Description, "(3 shares") {
		t.Fatalf("description %q does not say how many shares", ds[0].Description)
	}
}
