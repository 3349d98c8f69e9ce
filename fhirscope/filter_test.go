package fhirscope

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
)

// syntheaFiles returns the Synthea bundles of the shared data, failing
// when there are none.
func syntheaFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testutil.SharedData(t), "fhir-r4", "synthea", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Synthea bundles found (%v)", err)
	}
	sort.Strings(files)
	return files
}

type srcEntry struct {
	FullURL  json.RawMessage `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
}

type srcBundle struct {
	ResourceType string     `json:"resourceType"`
	Type         string     `json:"type"`
	ID           string     `json:"id"`
	Entry        []srcEntry `json:"entry"`
}

func resourceType(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var v struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v.ResourceType
}

func readBundle(t testing.TB, data []byte) srcBundle {
	t.Helper()
	var b srcBundle
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	return b
}

// checkBundle checks that out is a collection Bundle whose resources all
// have a type in types (nil: any), and returns it.
func checkBundle(t testing.TB, out []byte, types map[string]bool) srcBundle {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(out, &top); err != nil {
		t.Fatalf("output is not a JSON object: %v", err)
	}
	for k := range top {
		switch k {
		case "resourceType", "type", "entry", "meta":
		default:
			t.Errorf("output Bundle has unexpected element %q", k)
		}
	}
	if e, ok := top["entry"]; ok && string(e) == "[]" {
		t.Error("output has an empty entry array (invalid FHIR JSON)")
	}
	b := readBundle(t, out)
	if b.ResourceType != "Bundle" || b.Type != "collection" {
		t.Fatalf("output is a %q of type %q, want a collection Bundle", b.ResourceType, b.Type)
	}
	for i, e := range b.Entry {
		if len(e.Resource) == 0 {
			t.Fatalf("entry %d has no resource", i)
		}
		if rt := resourceType(t, e.Resource); types != nil && !types[rt] {
			t.Errorf("entry %d is a %s, outside the selection", i, rt)
		}
	}
	return b
}

func mustSel(t testing.TB, scopes, allow []string) Selection {
	t.Helper()
	sel, err := NewSelection(scopes, allow)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

var insurerScopes = []string{"patient/Coverage.rs", "patient/Claim.rs", "patient/ExplanationOfBenefit.rs"}

// TestInsurerSynthea: the insurer's grant on every Synthea bundle keeps
// exactly the source's Coverage, Claim and ExplanationOfBenefit resources,
// in order and byte for byte, and nothing else.
func TestInsurerSynthea(t *testing.T) {
	sel := mustSel(t, insurerScopes, nil)
	allowed := map[string]bool{"Coverage": true, "Claim": true, "ExplanationOfBenefit": true}
	for _, f := range syntheaFiles(t) {
		t.Run(filepath.Base(f)[:12], func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sb := readBundle(t, src)
			var want []srcEntry
			counts := map[string]int{}
			dropped := map[string]int{}
			for _, e := range sb.Entry {
				rt := resourceType(t, e.Resource)
				if allowed[rt] {
					want = append(want, e)
					counts[rt]++
				} else {
					dropped[rt]++
				}
			}
			if counts["Claim"] == 0 || counts["ExplanationOfBenefit"] == 0 {
				t.Fatalf("source has no claims (%v): the test would prove nothing", counts)
			}
			var out bytes.Buffer
			rep, err := Filter(bytes.NewReader(src), &out, sel)
			if err != nil {
				t.Fatal(err)
			}
			got := checkBundle(t, out.Bytes(), allowed)
			if len(got.Entry) != len(want) {
				t.Fatalf("kept %d resources, source has %d Coverage+Claim+EOB", len(got.Entry), len(want))
			}
			for i := range want {
				if !bytes.Equal(got.Entry[i].Resource, want[i].Resource) || !bytes.Equal(got.Entry[i].FullURL, want[i].FullURL) {
					t.Fatalf("entry %d differs from the source's", i)
				}
			}
			for k, v := range counts {
				if rep.Kept[k] != v {
					t.Errorf("report kept %d %s, want %d", rep.Kept[k], k, v)
				}
			}
			if rep.KeptTotal() != len(want) || !reflect.DeepEqual(rep.Dropped, dropped) || len(rep.Excluded) != 0 || !rep.Bundle {
				t.Errorf("report = kept %v dropped %v excluded %v, want dropped %v", rep.Kept, rep.Dropped, rep.Excluded, dropped)
			}
			// Claims reference the Patient, which the insurer's scopes do
			// not cover: the reference stays and is reported.
			if rep.Dangling["Patient"] == 0 {
				t.Errorf("no dangling Patient reference reported: %v", rep.Dangling)
			}
			if rep.Dangling[""] != 0 {
				t.Errorf("references of unknown type: %v", rep.Dangling)
			}
			if rep.Dangling["Claim"] != 0 {
				t.Errorf("EOB -> Claim references reported dangling though Claims are kept: %v", rep.Dangling)
			}
			// The Patient is kept when a scope allows it.
			out.Reset()
			rep, err = Filter(bytes.NewReader(src), &out, mustSel(t, append([]string{"patient/Patient.rs"}, insurerScopes...), nil))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Kept["Patient"] != 1 || rep.Dangling["Patient"] != 0 {
				t.Errorf("with patient/Patient.rs: kept %v, dangling %v", rep.Kept, rep.Dangling)
			}
		})
	}
}

// TestCategoryParam: patient/Observation.rs?category=laboratory keeps only
// the laboratory Observations of each Synthea bundle.
func TestCategoryParam(t *testing.T) {
	cases := []struct {
		scope string
		match func(sys, code string) bool
	}{
		{"patient/Observation.rs?category=laboratory", func(_, c string) bool { return c == "laboratory" }},
		{"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs", func(s, c string) bool {
			return s == "http://terminology.hl7.org/CodeSystem/observation-category" && c == "vital-signs"
		}},
		{"patient/Observation.rs?category=|laboratory", func(s, c string) bool { return s == "" && c == "laboratory" }},
	}
	files := syntheaFiles(t)
	for _, tc := range cases {
		sel := mustSel(t, []string{tc.scope}, nil)
		total := 0
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, e := range readBundle(t, src).Entry {
				if resourceType(t, e.Resource) != "Observation" {
					continue
				}
				var v struct {
					Category []struct {
						Coding []coding `json:"coding"`
					} `json:"category"`
				}
				if err := json.Unmarshal(e.Resource, &v); err != nil {
					t.Fatal(err)
				}
			found:
				for _, c := range v.Category {
					for _, cd := range c.Coding {
						if tc.match(cd.System, cd.Code) {
							want++
							break found
						}
					}
				}
			}
			var out bytes.Buffer
			rep, err := Filter(bytes.NewReader(src), &out, sel)
			if err != nil {
				t.Fatal(err)
			}
			b := checkBundle(t, out.Bytes(), map[string]bool{"Observation": true})
			if len(b.Entry) != want || rep.Kept["Observation"] != want {
				t.Errorf("%s on %s: kept %d (report %d), want %d", tc.scope, filepath.Base(f), len(b.Entry), rep.Kept["Observation"], want)
			}
			total += want
		}
		if tc.scope == "patient/Observation.rs?category=laboratory" && total == 0 {
			t.Fatal("no laboratory Observations in the Synthea data: the test proves nothing")
		}
	}
}

// labelled builds a Bundle from the smallest Synthea bundle with an HIV
// label on its first Observation and a 42CFRPart2 label on its first
// Condition, and returns it with the indexes of the two.
func labelled(t testing.TB) (data []byte, hivIdx, sudIdx int) {
	t.Helper()
	files := syntheaFiles(t)
	smallest, size := "", int64(-1)
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if size < 0 || st.Size() < size {
			smallest, size = f, st.Size()
		}
	}
	src, err := os.ReadFile(smallest)
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(src, &b); err != nil {
		t.Fatal(err)
	}
	hivIdx, sudIdx = -1, -1
	for i, e := range b["entry"].([]any) {
		res := e.(map[string]any)["resource"].(map[string]any)
		label := ""
		switch {
		case res["resourceType"] == "Observation" && hivIdx < 0:
			hivIdx, label = i, "HIV"
		case res["resourceType"] == "Condition" && sudIdx < 0:
			sudIdx, label = i, "42CFRPart2"
		default:
			continue
		}
		meta, _ := res["meta"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			res["meta"] = meta
		}
		meta["security"] = []any{map[string]any{"system": ActCode, "code": label}}
	}
	if hivIdx < 0 || sudIdx < 0 {
		t.Fatal("no Observation or Condition to label")
	}
	data, err = json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data, hivIdx, sudIdx
}

func TestSensitiveExcluded(t *testing.T) {
	data, hivIdx, sudIdx := labelled(t)
	src := readBundle(t, data)
	hivRes, sudRes := src.Entry[hivIdx].Resource, src.Entry[sudIdx].Resource
	contains := func(b srcBundle, res json.RawMessage) bool {
		for _, e := range b.Entry {
			if bytes.Equal(e.Resource, res) {
				return true
			}
		}
		return false
	}
	hiv := Exclusion{Index: hivIdx, Type: "Observation", Categories: []string{HIV}}
	sud := Exclusion{Index: sudIdx, Type: "Condition", Categories: []string{SubstanceUse}}
	cases := []struct {
		name             string
		sel              Selection
		keepHIV, keepSUD bool
		excluded         []Exclusion
	}{
		{"all", Selection{All: true}, false, false, []Exclusion{hiv, sud}},
		{"wildcard", mustSel(t, []string{"patient/*.rs"}, nil), false, false, []Exclusion{hiv, sud}},
		{"explicit types", mustSel(t, []string{"patient/Observation.rs", "patient/Condition.rs"}, nil), false, false, []Exclusion{hiv, sud}},
		{"all allow hiv", Selection{All: true, Allow: []string{"hiv"}}, true, false, []Exclusion{sud}},
		{"wildcard allow hiv", mustSel(t, []string{"patient/*.rs"}, []string{"hiv"}), true, false, []Exclusion{sud}},
		{"wildcard allow both", mustSel(t, []string{"patient/*.rs"}, []string{"HIV", "42cfrpart2"}), true, true, nil},
		{"condition allow sud", mustSel(t, []string{"patient/Condition.rs"}, []string{"substance-use"}), false, true, nil},
		{"wrong category", mustSel(t, []string{"patient/*.rs"}, []string{"genetic"}), false, false, []Exclusion{hiv, sud}},
		{"write-only wildcard", mustSel(t, []string{"patient/*.cud"}, []string{"hiv"}), false, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := Filter(bytes.NewReader(data), &out, tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			b := checkBundle(t, out.Bytes(), nil)
			if contains(b, hivRes) != tc.keepHIV || contains(b, sudRes) != tc.keepSUD {
				t.Errorf("kept HIV %v, SUD %v; want %v, %v", contains(b, hivRes), contains(b, sudRes), tc.keepHIV, tc.keepSUD)
			}
			sort.Slice(tc.excluded, func(i, j int) bool { return tc.excluded[i].Index < tc.excluded[j].Index })
			if !reflect.DeepEqual(rep.Excluded, tc.excluded) {
				t.Errorf("excluded %+v, want %+v", rep.Excluded, tc.excluded)
			}
			n := rep.KeptTotal() + len(rep.Excluded)
			for _, c := range rep.Dropped {
				n += c
			}
			if n != len(src.Entry) || rep.KeptTotal() != len(b.Entry) {
				t.Errorf("report accounts for %d of %d entries (kept %d, output %d)", n, len(src.Entry), rep.KeptTotal(), len(b.Entry))
			}
			if tc.sel.All && len(tc.sel.Allow) == 0 && len(b.Entry) != len(src.Entry)-2 {
				t.Errorf("all: kept %d of %d, want all but the 2 labelled", len(b.Entry), len(src.Entry))
			}
		})
	}
	got, err := RecordSensitive(bytes.NewReader(data))
	if err != nil || !reflect.DeepEqual(got, []string{HIV, SubstanceUse}) {
		t.Errorf("RecordSensitive = %v, %v", got, err)
	}
	if got := Sensitive(hivRes); !reflect.DeepEqual(got, []string{HIV}) {
		t.Errorf("Sensitive(HIV Observation) = %v", got)
	}
}

// TestBundleLabel: a label on the Bundle itself applies to every resource
// and is carried to the output.
func TestBundleLabel(t *testing.T) {
	src := []byte(`{"resourceType":"Bundle","type":"collection","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSYTHPN"}]},
	"entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","id":"1","status":"final"}},{"resource":{"resourceType":"Patient","id":"p"}}]}`)
	var out bytes.Buffer
	rep, err := Filter(bytes.NewReader(src), &out, Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if b := checkBundle(t, out.Bytes(), nil); len(b.Entry) != 0 || len(rep.Excluded) != 2 {
		t.Fatalf("all grant on a psychotherapy Bundle kept %d, excluded %v", len(b.Entry), rep.Excluded)
	}
	out.Reset()
	if _, err := Filter(bytes.NewReader(src), &out, Selection{All: true, Allow: []string{"psychotherapy"}}); err != nil {
		t.Fatal(err)
	}
	if b := checkBundle(t, out.Bytes(), nil); len(b.Entry) != 2 {
		t.Fatalf("explicit psychotherapy kept %d of 2", len(b.Entry))
	}
	if got := Sensitive(out.Bytes()); !reflect.DeepEqual(got, []string{Psychotherapy}) {
		t.Errorf("output Bundle lost its label: Sensitive = %v", got)
	}
	if got, err := RecordSensitive(bytes.NewReader(src)); err != nil || !reflect.DeepEqual(got, []string{Psychotherapy}) {
		t.Errorf("RecordSensitive = %v, %v", got, err)
	}
}

func TestSensitiveCodes(t *testing.T) {
	cases := []struct {
		res  string
		want []string
	}{
		{`{"resourceType":"Observation"}`, nil},
		{`{"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"ETH"}]}}`, []string{SubstanceUse}},
		{`{"resourceType":"Observation","meta":{"security":[{"system":"http://hl7.org/fhir/v3/ActCode","code":"GDIS"}]}}`, []string{Genetic}},
		{`{"resourceType":"Observation","meta":{"security":[{"system":"urn:oid:2.16.840.1.113883.5.4","code":"SEX"}]}}`, []string{Reproductive}},
		{`{"resourceType":"Observation","meta":{"security":[{"code":"STD"}]}}`, []string{Reproductive}},
		{`{"resourceType":"Observation","meta":{"security":[{"system":"http://example.org/other","code":"HIV"}]}}`, nil},
		{`{"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]}}`, []string{Restricted}},
		{`{"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"N"}]}}`, nil},
		{`{"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"Title38Section7332"}]}}`, []string{HIV, SubstanceUse}},
		{`{"resourceType":"Claim","contained":[{"resourceType":"Condition","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]}}]}`, []string{Psychotherapy}},
		{`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV"}]}}}]}`, []string{HIV}},
	}
	for _, tc := range cases {
		if got := Sensitive(json.RawMessage(tc.res)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Sensitive(%s) = %v, want %v", tc.res, got, tc.want)
		}
	}
	for name, codes := range Categories {
		if c, err := ParseCategory(strings.ToUpper(name)); err != nil || c != name {
			t.Errorf("ParseCategory(%q) = %q, %v", name, c, err)
		}
		if len(codes) == 0 {
			t.Errorf("category %s has no codes", name)
		}
	}
	if _, err := ParseCategory("cardiology"); !errors.Is(err, ErrUnknownCategory) {
		t.Errorf("ParseCategory(cardiology) = %v", err)
	}
}

// TestSingleResources: the HL7 examples, one resource per file, come out
// as a one-entry Bundle when their type is selected and an empty one when
// not.
func TestSingleResources(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testutil.SharedData(t), "fhir-r4", "hl7-examples", "*-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no HL7 examples (%v)", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rt := resourceType(t, src)
		for _, tc := range []struct {
			scope string
			want  int
		}{{"patient/" + rt + ".rs", 1}, {"patient/" + rt + ".r", 1}, {"patient/" + rt + ".s", 0}, {"patient/Coverage.rs", 0}} {
			if rt == "Coverage" && tc.scope == "patient/Coverage.rs" {
				continue
			}
			var out bytes.Buffer
			rep, err := Filter(bytes.NewReader(src), &out, mustSel(t, []string{tc.scope}, nil))
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			b := checkBundle(t, out.Bytes(), nil)
			if len(b.Entry) != tc.want || rep.Bundle {
				t.Fatalf("%s with %s: %d entries, want %d", filepath.Base(f), tc.scope, len(b.Entry), tc.want)
			}
			if tc.want == 1 && !bytes.Equal(b.Entry[0].Resource, bytes.TrimSpace(src)) {
				t.Fatalf("%s: resource not copied byte for byte", filepath.Base(f))
			}
		}
	}
}

// TestUSCore: a US Core bundle whose resourceType comes after its entries.
func TestUSCore(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "fhir-r4", "us-core", "uscore_bundle_patient_355.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, e := range readBundle(t, src).Entry {
		if resourceType(t, e.Resource) == "Condition" {
			want++
		}
	}
	var out bytes.Buffer
	rep, err := Filter(bytes.NewReader(src), &out, mustSel(t, []string{"patient/Condition.rs"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := checkBundle(t, out.Bytes(), map[string]bool{"Condition": true}); len(b.Entry) != want || want == 0 {
		t.Fatalf("kept %d Conditions, source has %d (report %v)", len(b.Entry), want, rep.Kept)
	}
}

func TestBadInput(t *testing.T) {
	all := Selection{All: true}
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrNotFHIR},
		{"garbage", "\x00\x01PK\x03\x04 not json", ErrNotFHIR},
		{"pdf", "%PDF-1.7\n", ErrNotFHIR},
		{"array", `[{"resourceType":"Patient"}]`, ErrNotFHIR},
		{"truncated", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"`, ErrNotFHIR},
		{"trailing", `{"resourceType":"Patient"} {}`, ErrNotFHIR},
		{"no resourceType", `{"name":"Alice Example","birthDate":"1970-01-01"}`, ErrNotFHIR},
		{"unknown type", `{"resourceType":"AliceExample"}`, ErrNotFHIR},
		{"type not string", `{"resourceType":42}`, ErrNotFHIR},
		{"entry not array", `{"resourceType":"Bundle","entry":{"resource":{}}}`, ErrNotFHIR},
		{"entry resource not object", `{"resourceType":"Bundle","entry":[{"resource":"Alice Example"}]}`, ErrNotFHIR},
		{"entry without type", `{"resourceType":"Bundle","entry":[{"resource":{"name":"Alice Example"}}]}`, ErrNotFHIR},
		{"bad fullUrl", `{"resourceType":"Bundle","entry":[{"fullUrl":7,"resource":{"resourceType":"Patient"}}]}`, ErrNotFHIR},
		{"bad security", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","meta":{"security":"Alice Example"}}}]}`, ErrNotFHIR},
		{"bad bundle security", `{"resourceType":"Bundle","meta":{"security":[1]},"entry":[]}`, ErrNotFHIR},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Filter(strings.NewReader(tc.in), &out, all)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if out.Len() != 0 {
				t.Error("output written despite the error")
			}
			if strings.Contains(err.Error(), "Alice") || strings.Contains(err.Error(), "1970") {
				t.Errorf("error quotes record content: %v", err)
			}
			if !strings.Contains(tc.in, `"entry"`) {
				if _, err := RecordSensitive(strings.NewReader(tc.in)); !errors.Is(err, ErrNotFHIR) {
					t.Errorf("RecordSensitive: %v", err)
				}
			}
		})
	}
	// Category-narrowed scopes on a malformed category fail, not match.
	in := `{"resourceType":"Observation","category":42}`
	if _, err := Filter(strings.NewReader(in), &bytes.Buffer{}, mustSel(t, []string{"patient/Observation.rs?category=laboratory"}, nil)); !errors.Is(err, ErrNotFHIR) {
		t.Errorf("malformed category: %v", err)
	}
}

func TestBadSelection(t *testing.T) {
	for _, tc := range []struct{ scopes, allow []string }{
		{[]string{"patient/Observation.rs?code=1234-5"}, nil},
		{[]string{"patient/Nope.rs"}, nil},
		{[]string{"patient/*.rs"}, []string{"cardiology"}},
	} {
		if _, err := NewSelection(tc.scopes, tc.allow); !errors.Is(err, ErrBadSelection) {
			t.Errorf("NewSelection(%v, %v) = %v", tc.scopes, tc.allow, err)
		}
	}
	if _, err := Filter(strings.NewReader(`{"resourceType":"Patient"}`), &bytes.Buffer{}, Selection{All: true, Allow: []string{"nope"}}); !errors.Is(err, ErrBadSelection) {
		t.Errorf("Filter with a bad Allow: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	defer func(n int) { maxInput = n }(maxInput)
	maxInput = 1 << 10
	if _, err := Filter(&zeros{n: maxInput}, &bytes.Buffer{}, Selection{All: true}); !errors.Is(err, ErrNotFHIR) {
		t.Fatalf("at the limit: err = %v", err)
	}
	r := &zeros{n: maxInput + 1}
	if _, err := Filter(r, &bytes.Buffer{}, Selection{All: true}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

type zeros struct{ n int }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if len(p) > z.n {
		p = p[:z.n]
	}
	for i := range p {
		p[i] = ' '
	}
	z.n -= len(p)
	return len(p), nil
}

// TestScanReferences: the byte scan finds exactly the references a full
// decode finds, on every Synthea resource and on tricky strings.
func TestScanReferences(t *testing.T) {
	for _, s := range []string{
		`{"reference":"a"}`,
		`{"x":"{\"reference\":\"no\"}","reference" : "b\"c\\"}`,
		`{"x":"\"reference\"","y":["reference"],"z":{"reference":1}}`,
		`{"a":{"reference":"u"},"b":[{"reference":"u"},{"reference":"v\u00e9"}]}`,
		`{"text":"a \\\"reference\": \"x\" b","reference":"\\"}`,
	} {
		checkScan(t, []byte(s))
	}
	// Exact on inputs without duplicate member names.
	var got []string
	if err := scanReferences([]byte(`{"a":{"reference":"u"},"x":"{\"reference\":\"no\"}","b":[{"reference" : "v\u00e9"}]}`), func(s string) { got = append(got, s) }); err != nil || !reflect.DeepEqual(got, []string{"u", "vé"}) {
		t.Errorf("scanReferences = %q, %v", got, err)
	}
	for _, f := range syntheaFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkScan(t, src)
	}
}

// TestAmbiguousNames: members that encoding/json would merge (duplicates,
// names differing in case or by Unicode folding) are refused, so a second
// "meta" cannot hide the first's labels from fhirscope.
func TestAmbiguousNames(t *testing.T) {
	hiv := `{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV"}`
	for _, in := range []string{
		`{"resourceType":"Observation","meta":{"security":[` + hiv + `]},"meta":{}}`,
		`{"resourceType":"Observation","meta":{"security":[` + hiv + `]},"Meta":{}}`,
		`{"resourceType":"Observation","meta":{"security":[` + hiv + `]},"\u006deta":{}}`,
		`{"resourceType":"Observation","meta":{"security":[` + hiv + `],"ſecurity":[]}}`,
		`{"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV","Code":"N"}]}}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","resourceType":"Claim"}}]}`,
	} {
		_, err := Filter(strings.NewReader(in), &bytes.Buffer{}, Selection{All: true})
		if !errors.Is(err, ErrNotFHIR) {
			t.Errorf("Filter(%s) = %v, want ErrNotFHIR", in, err)
		}
	}
	// Distinct names in distinct objects are fine, as is a BOM.
	in := "\xef\xbb\xbf" + `{"resourceType":"Observation","meta":{"tag":[{"code":"a"}],"security":[{"code":"N"}]},"code":{"coding":[{"code":"b"}]}}`
	if _, err := Filter(strings.NewReader(in), &bytes.Buffer{}, Selection{All: true}); err != nil {
		t.Errorf("Filter: %v", err)
	}
	for _, p := range [][2]string{{"k", "K"}, {"k", "\u212a"}, {"s", "ſ"}, {"meta", "META"}, {"é", "É"}, {"a", "b"}, {"ss", "ß"}} {
		if got, want := bytes.Equal(fold(nil, []byte(p[0])), fold(nil, []byte(p[1]))), bytes.EqualFold([]byte(p[0]), []byte(p[1])); got != want {
			t.Errorf("fold(%q) == fold(%q) is %v, EqualFold says %v", p[0], p[1], got, want)
		}
	}
}
