package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/wallet"
)

// disclosureFixture makes alice's wallet in a home the CLI can open, with
// one record granted to Bob, one access bob was allowed and one he was
// denied, both decided and logged by alice's own wallet.
func disclosureFixture(t *testing.T) (*globalOptions, *bytes.Buffer, string) {
	t.Helper()
	return disclosureFixtureScopes(t, []string{"patient/Observation.rs"})
}

// disclosureFixtureScopes is disclosureFixture with a grant of these
// scopes, bob asking under the first.
func disclosureFixtureScopes(t *testing.T, scopes []string) (*globalOptions, *bytes.Buffer, string) {
	t.Helper()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("keyring pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	mk := func(home string) *globalOptions {
		g := newGlobals(strings.NewReader(""), &stdout, &stderr)
		g.home, g.keyringBackend, g.passphraseFile = home, "file", pass
		return g
	}
	ga, gb := mk(filepath.Join(dir, "alice")), mk(filepath.Join(dir, "bob"))
	alice, err := wallet.Init(ga.config(), "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := wallet.Init(gb.config(), "Dr Bob", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := alice.AddContact("Bob", bob.Card().String()); err != nil {
		t.Fatal(err)
	}
	rec, err := alice.AddRecord(ctx, strings.NewReader(`{"resourceType":"Bundle","type":"collection"}`), wallet.AddRecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Grant(ctx, wallet.GrantOptions{To: "Bob", Records: []string{rec.ID},
		Scopes: scopes, Purpose: "TREAT"}); err != nil {
		t.Fatal(err)
	}
	for _, purpose := range []string{"ETREAT", "HPAYMT"} {
		r, err := bob.NewRequest(alice.ID(), rec.ID, scopes[0], purpose)
		if err != nil {
			t.Fatal(err)
		}
		alice.DecideAccess(ctx, r) // HPAYMT is denied (purpose) and logged too
	}
	stdout.Reset()
	return ga, &stdout, rec.ID
}

func TestAuditDisclosuresFormats(t *testing.T) {
	ctx := context.Background()
	g, out, rec := disclosureFixture(t)

	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "table"}, g); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "DATE") ||
		!strings.Contains(lines[1], "Bob") || !strings.Contains(lines[1], "record "+rec+", scope patient/Observation.rs") ||
		!strings.HasSuffix(lines[1], "ETREAT (Emergency Treatment)") {
		t.Fatalf("table:\n%s", out)
	}

	out.Reset()
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "csv"}, g); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(out).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][1] != "Bob" || rows[1][4] != "ETREAT" || len(rows[1]) != 9 {
		t.Fatalf("csv: %v %v", rows, err)
	}

	out.Reset()
	g.json = true
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "table"}, g); err != nil {
		t.Fatal(err)
	}
	var ds []disclosureJSON
	if err := json.Unmarshal(out.Bytes(), &ds); err != nil || len(ds) != 1 || ds[0].RecipientName != "Bob" ||
		ds[0].Purpose != "ETREAT" || ds[0].PurposeDisplay != "Emergency Treatment" || ds[0].Record != rec || len(ds[0].Grant) != 64 {
		t.Fatalf("json: %+v %v", ds, err)
	}
	g.json = false

	out.Reset()
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "fhir"}, g); err != nil {
		t.Fatal(err)
	}
	var b struct {
		ResourceType string
		Total        int
		Entry        []struct {
			Resource struct {
				ResourceType string
				Action       string
				Agent        []struct{ Who struct{ Display string } }
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &b); err != nil || b.ResourceType != "Bundle" || b.Total != 1 ||
		b.Entry[0].Resource.ResourceType != "AuditEvent" || b.Entry[0].Resource.Action != "R" || b.Entry[0].Resource.Agent[0].Who.Display != "Bob" {
		t.Fatalf("fhir: %+v %v", b, err)
	}

	out.Reset()
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "table", since: "2999-01-01"}, g); err != nil || out.Len() != 0 {
		t.Fatalf("since the future: %q %v", out, err)
	}

	// The local audit agrees: two accesses, one allowed, no violation.
	out.Reset()
	g.json = true
	if err := runAuditVerify(ctx, auditVerifyOptions{}, g, nil); err != nil {
		t.Fatal(err)
	}
	var rep auditJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.OK || rep.Accesses != 2 || rep.Allowed != 1 || rep.Denied != 1 {
		t.Fatalf("audit: %+v %v", rep, err)
	}
}

// TestAuditDisclosuresScopes: a grant of two scopes, used by a request
// that names one, shows both in every format (issue 17 point 12); the
// JSON keeps "scope" (the request's) and adds "scopes".
func TestAuditDisclosuresScopes(t *testing.T) {
	ctx := context.Background()
	g, out, rec := disclosureFixtureScopes(t, []string{"patient/Claim.rs", "patient/ExplanationOfBenefit.rs"})
	what := "record " + rec + ", scopes patient/Claim.rs patient/ExplanationOfBenefit.rs"

	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "table"}, g); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), what) {
		t.Fatalf("table:\n%s", out)
	}

	out.Reset()
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "csv"}, g); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(out).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][3] != what || len(rows[1]) != 9 {
		t.Fatalf("csv: %v %v", rows, err)
	}

	out.Reset()
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "json"}, g); err != nil {
		t.Fatal(err)
	}
	var ds []disclosureJSON
	if err := json.Unmarshal(out.Bytes(), &ds); err != nil || len(ds) != 1 || ds[0].Scope != "patient/Claim.rs" ||
		strings.Join(ds[0].Scopes, " ") != "patient/Claim.rs patient/ExplanationOfBenefit.rs" || ds[0].Description != what {
		t.Fatalf("json: %+v %v", ds, err)
	}

	out.Reset()
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "fhir"}, g); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"description": "`+what+`"`) {
		t.Fatalf("fhir:\n%s", out)
	}
}
