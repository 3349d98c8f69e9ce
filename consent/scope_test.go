package consent

import (
	"errors"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"patient/Observation.rs", "patient/Observation.rs"},
		{"patient/*.r", "patient/*.r"},
		{"patient/Observation.read", "patient/Observation.rs"},
		{"patient/Observation.write", "patient/Observation.cud"},
		{"user/Observation.*", "user/Observation.cruds"},
		{"system/Patient.cruds", "system/Patient.cruds"},
		{"patient/Condition.rs?category=problem-list-item", "patient/Condition.rs?category=problem-list-item"},
		{"patient/Observation.rs?code=1234-5&category=laboratory", "patient/Observation.rs?category=laboratory&code=1234-5"},
		{"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
			"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"},
	} {
		sc, err := ParseScope(c.in)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", c.in, err)
			continue
		}
		if sc.String() != c.want {
			t.Errorf("ParseScope(%q) = %q, want %q", c.in, sc.String(), c.want)
		}
	}
}

func TestParseScopeErrors(t *testing.T) {
	for _, c := range []struct{ in, msg string }{
		{"", "want context/Type.permissions"},
		{"Observation.rs", "want context/Type.permissions"},
		{"doctor/Observation.rs", "context \"doctor\""},
		{"patient/Observation", "missing .permissions"},
		{"patient/Obs.rs", "unknown FHIR R4 resource type \"Obs\""},
		{"patient/observation.rs", "did you mean \"Observation\""},
		{"patient/Observation.sr", "out of order"},
		{"patient/Observation.rr", "out of order"},
		{"patient/Observation.x", "not v2"},
		{"patient/Observation.", "no permissions"},
		{"patient/*.rs?category=laboratory", "need a resource type"},
		{"patient/Patient.rs?category=x", "Patient has no category"},
		{"patient/Observation.rs?category", "not name=value"},
		{"patient/Observation.rs?", "empty query"},
		{"patient/Observation.rs?category=a b", "value"},
		{"patient/Observation.rs?category=a&category=a", "repeated"},
		{"openid", "not a resource scope"},
		{"patient/Observation.rs?x=" + strings.Repeat("a", 600), "longer than 512"},
	} {
		_, err := ParseScope(c.in)
		if err == nil {
			t.Errorf("ParseScope(%q) accepted", c.in)
			continue
		}
		if !errors.Is(err, ErrBadScope) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseScope(%q) = %v, want an ErrBadScope mentioning %q", c.in, err, c.msg)
		}
	}
}

func TestScopeCovers(t *testing.T) {
	for _, c := range []struct {
		grant, req string
		want       bool
	}{
		{"patient/Observation.rs", "patient/Observation.r", true},
		{"patient/Observation.rs", "patient/Observation.rs?category=laboratory", true},
		{"patient/Observation.rs?category=laboratory", "patient/Observation.rs", false},
		{"patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=vital-signs", false},
		{"patient/*.rs", "patient/Condition.s", true},
		{"patient/*.r", "patient/Condition.s", false},
		{"patient/Observation.rs", "user/Observation.rs", false},
		{"patient/Observation.cruds", "patient/Observation.d", true},
	} {
		g, _ := ParseScope(c.grant)
		r, _ := ParseScope(c.req)
		if got := g.Covers(r); got != c.want {
			t.Errorf("%s covers %s = %v, want %v", c.grant, c.req, got, c.want)
		}
	}
}

func TestNormalizeScopes(t *testing.T) {
	got, err := NormalizeScopes([]string{"patient/Observation.read", "patient/Condition.rs", "patient/Observation.rs"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "patient/Condition.rs patient/Observation.rs" {
		t.Fatalf("got %v", got)
	}
	if len(R4ResourceTypes) != 146 {
		t.Errorf("R4 (4.0.1) has 146 resource types, list has %d", len(R4ResourceTypes))
	}
	for _, typ := range R4ResourceTypes {
		if !IsR4ResourceType(typ) {
			t.Errorf("IsR4ResourceType(%q) = false", typ)
		}
	}
	for _, typ := range []string{"", "*", "observation", "Observation ", "MedicationOrder", "DomainResource"} {
		if IsR4ResourceType(typ) {
			t.Errorf("IsR4ResourceType(%q) = true", typ)
		}
	}
}
