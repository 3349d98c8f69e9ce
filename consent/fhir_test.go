package consent

import (
	"encoding/json"
	"fmt"
	"github.com/medwallet/medwallet/internal/testutil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// shape flattens JSON into path -> JSON type, arrays written as [].
func shape(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			shape(e, p, out)
		}
	case []any:
		out[path] = "array"
		for _, e := range x {
			shape(e, path+"[]", out)
		}
	case string:
		out[path] = "string"
	case bool:
		out[path] = "bool"
	case float64:
		out[path] = "number"
	}
}

func values(v any, path string) []string {
	var out []string
	var walk func(v any, parts []string)
	walk = func(v any, parts []string) {
		if len(parts) == 0 {
			out = append(out, fmt.Sprint(v))
			return
		}
		p := parts[0]
		if strings.HasSuffix(p, "[]") {
			m, _ := v.(map[string]any)
			arr, _ := m[strings.TrimSuffix(p, "[]")].([]any)
			for _, e := range arr {
				walk(e, parts[1:])
			}
			return
		}
		if m, ok := v.(map[string]any); ok {
			if e, ok := m[p]; ok {
				walk(e, parts[1:])
			}
		}
	}
	walk(v, strings.Split(path, "."))
	return out
}

func TestGrantFHIRMatchesOfficialConsentShape(t *testing.T) {
	dir := filepath.Join(testutil.SharedData(t), "fhir-r4", "consent")
	files, err := filepath.Glob(filepath.Join(dir, "Consent-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Consent examples in %s", dir)
	}
	official := map[string]string{}
	officialVals := map[string]map[string]bool{}
	valuePaths := []string{"resourceType", "scope.coding[].code", "scope.coding[].system", "category[].coding[].code", "category[].coding[].system"}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		shape(v, "", official)
		for _, p := range valuePaths {
			if officialVals[p] == nil {
				officialVals[p] = map[string]bool{}
			}
			for _, x := range values(v, p) {
				officialVals[p][x] = true
			}
		}
	}

	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	w := newWorld(t)
	id := w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{"rec-1", "rec-2"},
		Scopes: []string{"patient/Condition.rs", "patient/Observation.rs?category=laboratory"}, Purpose: "TREAT",
		NotBefore: t0.Unix(), Expires: t0.Add(30 * 24 * time.Hour).Unix()})
	g, _ := w.view.Grant(id)
	for _, revoked := range []bool{false, true} {
		b, err := GrantFHIR(g, revoked, t0, "Dr. Bob")
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		ours := map[string]string{}
		shape(v, "", ours)
		// Every element the brief names must be present, typed as in the
		// official examples.
		required := []string{
			"resourceType", "status", "scope", "scope.coding[].system", "scope.coding[].code",
			"category", "category[].coding[].system", "category[].coding[].code",
			"patient", "patient.reference", "dateTime", "provision", "provision.type",
			"provision.period", "provision.period.start", "provision.period.end",
			"provision.actor", "provision.actor[].role.coding[].system", "provision.actor[].role.coding[].code",
			"provision.actor[].reference", "provision.action[].coding[].code",
			"provision.purpose", "provision.purpose[].system", "provision.purpose[].code",
			"provision.data[].meaning", "provision.class[].code", "policyRule.coding[].code",
		}
		var missing []string
		for _, p := range required {
			want, inOfficial := official[p]
			if p == "provision.type" || p == "provision.data[].meaning" || p == "provision.class[].code" {
				// Used in nested provisions in the examples.
				want, inOfficial = official[strings.Replace(p, "provision.", "provision.provision[].", 1)]
				if !inOfficial {
					want, inOfficial = official[p]
				}
			}
			if !inOfficial {
				t.Errorf("path %s not in any official example: fix the test", p)
				continue
			}
			if ours[p] != want {
				missing = append(missing, fmt.Sprintf("%s: ours %q, official %q", p, ours[p], want))
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("shape differs:\n%s", strings.Join(missing, "\n"))
		}
		for _, p := range valuePaths {
			for _, x := range values(v, p) {
				if !officialVals[p][x] {
					t.Errorf("%s = %q, official examples use %v", p, x, officialVals[p])
				}
			}
		}
		status := values(v, "status")[0]
		if want := map[bool]string{false: "active", true: "inactive"}[revoked]; status != want {
			t.Errorf("status = %s, want %s", status, want)
		}
		if got := values(v, "provision.purpose[].system"); len(got) != 1 || got[0] != PurposeSystem {
			t.Errorf("purpose system = %v", got)
		}
	}
}

func TestDisclosuresFHIR(t *testing.T) {
	w := newAuditWorld(t)
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), t0, nil)
	ds := Disclosures(w.view, w.alice.ID(), time.Time{})
	b, err := DisclosuresFHIR(ds, func(id ID) string {
		if id == w.bob.ID() {
			return "Dr. Bob"
		}
		return ""
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"resourceType":                                      "Bundle",
		"entry[].resource.resourceType":                     "AuditEvent",
		"entry[].resource.type.code":                        "rest",
		"entry[].resource.subtype[].code":                   "read",
		"entry[].resource.action":                           "R",
		"entry[].resource.outcome":                          "0",
		"entry[].resource.recorded":                         "2026-01-01T00:00:00Z",
		"entry[].resource.purposeOfEvent[].coding[].system": PurposeSystem,
		"entry[].resource.purposeOfEvent[].coding[].code":   "TREAT",
		"entry[].resource.agent[].who.identifier.value":     string(w.bob.ID()),
		"entry[].resource.agent[].who.display":              "Dr. Bob",
		"entry[].resource.agent[].requestor":                "true",
		"entry[].resource.source.observer.identifier.value": string(w.dave.ID()),
		"entry[].resource.entity[].what.identifier.value":   "rec-1",
	} {
		got := values(v, path)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want %q", path, got, want)
		}
	}
}
