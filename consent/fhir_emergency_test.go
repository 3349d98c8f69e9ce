package consent

import (
	"encoding/json"
	"testing"
	"time"
)

// TestDisclosuresFHIREmergency: an emergency disclosure keeps ETREAT (the
// request's purpose) as purposeOfEvent and carries ETREAT and BTG in the
// requesting agent's purposeOfUse; an ordinary one has no purposeOfUse.
func TestDisclosuresFHIREmergency(t *testing.T) {
	w := newEmWorld(t)
	bob := testSigner(t, "bob")
	w.grant(w.alice, Grant{Grantee: bob.ID(), Records: []string{"rec-1"}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	w.logAsPeer(breakGlassRequest(t, w.frank, w.alice.ID(), "rec-em", w.bgFrank), t0, nil)
	w.logAsPeer(newRequest(t, bob, w.alice.ID(), "rec-1", "patient/*.rs", "TREAT", t0), t0.Add(time.Minute), nil)
	ds := Disclosures(w.view, w.alice.ID(), time.Time{})
	if len(ds) != 2 || !ds[0].Emergency || ds[1].Emergency {
		t.Fatalf("disclosures = %+v", ds)
	}
	b, err := DisclosuresFHIR(ds, func(ID) string { return "" }, t0)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Entry []struct {
			Resource struct {
				PurposeOfEvent []fhirConcept `json:"purposeOfEvent"`
				Agent          []struct {
					Requestor    bool          `json:"requestor"`
					Who          fhirReference `json:"who"`
					PurposeOfUse []fhirConcept `json:"purposeOfUse"`
				} `json:"agent"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	if len(bundle.Entry) != 2 {
		t.Fatalf("%d entries", len(bundle.Entry))
	}
	codes := func(cs []fhirConcept) []string {
		var out []string
		for _, c := range cs {
			for _, x := range c.Coding {
				if x.System != PurposeSystem {
					t.Errorf("code %s in system %s, want %s", x.Code, x.System, PurposeSystem)
				}
				out = append(out, x.Code)
			}
		}
		return out
	}
	eq := func(a []string, b ...string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	em, plain := bundle.Entry[0].Resource, bundle.Entry[1].Resource
	if got := codes(em.PurposeOfEvent); !eq(got, PurposeEmergency) {
		t.Errorf("emergency purposeOfEvent = %v, want [ETREAT]", got)
	}
	if len(em.Agent) != 1 || !em.Agent[0].Requestor || em.Agent[0].Who.Identifier.Value != string(w.frank.ID()) {
		t.Fatalf("emergency agents = %+v", em.Agent)
	}
	if got := codes(em.Agent[0].PurposeOfUse); !eq(got, PurposeEmergency, PurposeBreakGlass) {
		t.Errorf("requesting agent purposeOfUse = %v, want [ETREAT BTG]", got)
	}
	for _, c := range em.Agent[0].PurposeOfUse {
		if c.Coding[0].Code == PurposeBreakGlass && c.Coding[0].Display != "break the glass" {
			t.Errorf("BTG display = %q", c.Coding[0].Display)
		}
	}
	if got := codes(plain.PurposeOfEvent); !eq(got, "TREAT") {
		t.Errorf("ordinary purposeOfEvent = %v", got)
	}
	if len(plain.Agent) != 1 || plain.Agent[0].PurposeOfUse != nil {
		t.Errorf("ordinary agent has purposeOfUse: %+v", plain.Agent)
	}
}
