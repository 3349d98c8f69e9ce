package recordview_test

import (
	"strings"
	"testing"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

var fhirMD = vault.Metadata{Format: vault.FormatFHIR}

func TestFHIRItems(t *testing.T) {
	bundle := `{"resourceType":"Bundle","type":"collection","entry":[
	 {"fullUrl":"urn:uuid:m1","resource":{"resourceType":"Medication","id":"m1","code":{"coding":[{"display":"Lithium 300 MG"}]}}},
	 {"resource":{"resourceType":"MedicationRequest","status":"active","authoredOn":"2020-01-02","medicationReference":{"reference":"urn:uuid:m1"},
	   "meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]}}},
	 {"resource":{"resourceType":"MedicationRequest","status":"stopped","authoredOn":"2021-05-06","medicationReference":{"reference":"Medication/m2"}}},
	 {"resource":{"resourceType":"Medication","id":"m2","code":{"text":"Aspirin"}}},
	 {"resource":{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},
	   "effectiveDateTime":"2019-01-01T10:00:00+02:00","valueQuantity":{"value":140,"unit":"mg/dL"},
	   "referenceRange":[{"low":{"value":70,"unit":"mg/dL"},"high":{"value":99,"unit":"mg/dL"}}],"interpretation":[{"coding":[{"code":"H"}]}]}},
	 {"resource":{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"code":{"text":"Glucose (own text)","coding":[{"display":"Glucose"}]},"effectiveDateTime":"2019-01-01T09:00:00Z","valueQuantity":{"value":"bad"}}},
	 {"resource":{"resourceType":"Observation","category":[{"coding":[{"code":"social-history"}]}]}}
	]}`
	s, err := recordview.SummarizeBytes([]byte(bundle), fhirMD)
	if err != nil {
		t.Fatal(err)
	}
	meds := s.Section(recordview.KeyMedications)
	if meds.Count != 2 || meds.Items[0].Title != "Aspirin" || meds.Items[1].Title != "Lithium 300 MG" {
		t.Fatalf("medications: %+v", meds)
	}
	if !meds.Items[1].Sensitive || strings.Join(meds.Items[1].Labels, ",") != "psychotherapy" || meds.Items[0].Sensitive {
		t.Errorf("sensitive marks: %+v", meds.Items)
	}
	res := s.Section(recordview.KeyResults)
	if res.Count != 2 {
		t.Fatalf("results: %+v", res)
	}
	// 09:00Z is after 10:00+02:00 (08:00Z): newest first.
	if res.Items[0].Title != "Glucose (own text)" {
		t.Errorf("results not newest first or display text not the code's own text: %+v", res.Items)
	}
	g := res.Items[1]
	if g.Code != "http://loinc.org|2339-0" || g.Value == nil || g.Value.Value != 140 || *g.Value.Low != 70 || *g.Value.High != 99 {
		t.Errorf("glucose: %+v", g)
	}
	if g.Detail != "value 140 mg/dL; range 70-99 mg/dL; flag H" {
		t.Errorf("glucose detail %q", g.Detail)
	}
	if o := s.Section(recordview.KeyOther); o.Count != 3 || o.Text != "Medication 2, Observation 1" {
		t.Errorf("other: %+v", o)
	}
	var b strings.Builder
	if err := recordview.Render(&b, s, recordview.RenderOptions{Sections: []string{"medications"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "[sensitive: psychotherapy] Lithium 300 MG") || strings.Contains(b.String(), "RESULTS") {
		t.Errorf("render of the medications section:\n%s", b.String())
	}
}

func TestFHIRPartialAndMalformed(t *testing.T) {
	s, err := recordview.SummarizeBytes([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition","code":{"text":"Asthma"}}},{"resource":`), fhirMD)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Partial || s.Section(recordview.KeyProblems).Count != 1 {
		t.Errorf("truncated bundle: partial %v, %+v", s.Partial, s.Section(recordview.KeyProblems))
	}
	if _, err := recordview.SummarizeBytes([]byte(`[1,2]`), fhirMD); err == nil {
		t.Error("a JSON array summarised as FHIR")
	}
	if _, err := recordview.SummarizeBytes([]byte("x"), vault.Metadata{Format: vault.FormatBinary}); err == nil {
		t.Error("a binary record summarised")
	}
}
