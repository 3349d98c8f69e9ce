package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
)

// countTypes decodes a FHIR Bundle and counts its entries' resource types.
func countTypes(t *testing.T, b []byte) (string, map[string]int) {
	t.Helper()
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range bundle.Entry {
		n[e.Resource.ResourceType]++
	}
	return bundle.ResourceType + "/" + bundle.Type, n
}

func addContact(t *testing.T, w *Wallet, name string, other *Wallet) {
	t.Helper()
	if _, err := w.AddContact(name, other.Card().String()); err != nil {
		t.Fatal(err)
	}
}

// An insurer's payment grant on a Synthea bundle carries exactly its
// Coverage, Claim and ExplanationOfBenefit resources, in a derived record.
func TestGrantMinimumNecessaryInsurer(t *testing.T) {
	ctx := context.Background()
	alice, _ := Init(memConfig(t), "Alice", "patient")
	ivy, _ := Init(memConfig(t), "Ivy", "insurer")
	addContact(t, alice, "Ivy", ivy)
	src, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "fhir-r4/synthea/Kermit_Trantow_f1a650a5-737e-4fd7-828e-03c3348b9524.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := alice.AddRecord(ctx, bytes.NewReader(src), AddRecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gi, err := alice.Grant(ctx, GrantOptions{To: "Ivy", Records: []string{rec.ID}, Purpose: "HPAYMT",
		Scopes: []string{"patient/Coverage.rs", "patient/Claim.rs", "patient/ExplanationOfBenefit.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(gi.Derived) != 1 || gi.Derived[0].Source != rec.ID || len(gi.Records) != 1 || gi.Records[0] != gi.Derived[0].Derived {
		t.Fatalf("grant %+v: want it to name one derived record", gi)
	}
	var out bytes.Buffer
	if _, err := alice.GetRecord(ctx, gi.Records[0], &out, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	kind, got := countTypes(t, out.Bytes())
	_, want := countTypes(t, src)
	if kind != "Bundle/collection" {
		t.Fatalf("derived record is a %s, want a collection Bundle", kind)
	}
	for typ, n := range got {
		if typ != "Coverage" && typ != "Claim" && typ != "ExplanationOfBenefit" {
			t.Errorf("derived record holds %d %s resources", n, typ)
		}
	}
	for _, typ := range []string{"Coverage", "Claim", "ExplanationOfBenefit"} {
		if got[typ] != want[typ] {
			t.Errorf("%s: %d in the derived record, %d in the source", typ, got[typ], want[typ])
		}
	}
	if want["Claim"] == 0 {
		t.Fatal("the source has no Claim: the test proves nothing")
	}
}

const labelledBundle = `{"resourceType":"Bundle","type":"collection","entry":[
 {"resource":{"resourceType":"Observation","id":"plain","status":"final","code":{"text":"glucose"}}},
 {"resource":{"resourceType":"Observation","id":"viral-load","status":"final","code":{"text":"hiv viral load"},
  "meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV"}]}}}]}`

const wholeRecordLabelled = `{"resourceType":"Bundle","type":"collection",
 "meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"42CFRPart2"}]},
 "entry":[{"resource":{"resourceType":"Condition","id":"c"}}]}`

// Sensitive resources stay out of broad grants unless the grant names
// their category; a record that is sensitive as a whole is left out.
func TestGrantSensitiveCategories(t *testing.T) {
	ctx := context.Background()
	alice, _ := Init(memConfig(t), "Alice", "patient")
	bob, _ := Init(memConfig(t), "Bob", "clinician")
	addContact(t, alice, "Bob", bob)
	mixed, err := alice.AddRecord(ctx, strings.NewReader(labelledBundle), AddRecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part2, err := alice.AddRecord(ctx, strings.NewReader(wholeRecordLabelled), AddRecordOptions{})
	if err != nil {
		t.Fatal(err)
	}

	gi, err := alice.Grant(ctx, GrantOptions{To: "Bob", All: true, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	if err != nil {
		t.Fatal(err)
	}
	if gi.All || len(gi.Derived) != 1 || gi.Derived[0].Source != mixed.ID || len(gi.Excluded) != 1 || gi.Excluded[0].Record != part2.ID {
		t.Fatalf("broad grant = all %v, derived %+v, excluded %+v", gi.All, gi.Derived, gi.Excluded)
	}
	if ex := gi.Derived[0].Excluded; len(ex) != 1 || ex[0].Type != "Observation" || ex[0].Categories[0] != "hiv" {
		t.Fatalf("excluded resources %+v, want the HIV Observation", ex)
	}
	var out bytes.Buffer
	if _, err := alice.GetRecord(ctx, gi.Derived[0].Derived, &out, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "viral-load") || !strings.Contains(out.String(), `"plain"`) {
		t.Fatalf("derived record: %s", out.String())
	}
	for _, r := range gi.Records {
		if r == part2.ID || r == mixed.ID {
			t.Fatalf("the broad grant names record %s", r)
		}
	}

	// Naming both categories grants the records themselves, and "all" stays all.
	gi, err = alice.Grant(ctx, GrantOptions{To: "Bob", All: true, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT",
		AllowSensitive: []string{"hiv", "substance-use"}})
	if err != nil {
		t.Fatal(err)
	}
	if !gi.All || len(gi.Excluded) != 0 {
		t.Fatalf("explicit grant = all %v, excluded %+v, derived %+v", gi.All, gi.Excluded, gi.Derived)
	}
	if _, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{part2.ID}, Scopes: []string{"patient/*.rs"},
		Purpose: "TREAT", AllowSensitive: []string{"tarot"}}); err == nil {
		t.Fatal("an unknown sensitive category was accepted")
	}
	if _, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{part2.ID}, Scopes: []string{"patient/*.rs"},
		Purpose: "TREAT"}); err == nil || !strings.Contains(err.Error(), "nothing in these records") {
		t.Fatalf("a grant of only a sensitive record without naming it: %v", err)
	}
}
