package fhirscope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// sentinel names the package error err wraps, "" for none.
func sentinel(err error) string {
	for _, s := range []error{ErrNotFHIR, ErrTooLarge, ErrBadSelection} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// sameAsOracle checks that Filter and oracleFilter agree on data: both
// fail with the same sentinel, or both write the same bytes and report.
func sameAsOracle(t *testing.T, name string, data []byte, sel Selection) {
	t.Helper()
	var got, want bytes.Buffer
	grep, gerr := Filter(bytes.NewReader(data), &got, sel)
	wrep, werr := oracleFilter(bytes.NewReader(data), &want, sel)
	if sentinel(gerr) != sentinel(werr) {
		t.Fatalf("%s: Filter: %v; oracle: %v", name, gerr, werr)
	}
	if gerr != nil {
		if got.Len() != 0 {
			t.Fatalf("%s: output written on error", name)
		}
		return
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("%s: output differs from the oracle's\n got %.300q\nwant %.300q", name, got.Bytes(), want.Bytes())
	}
	if !reflect.DeepEqual(grep, wrep) {
		t.Fatalf("%s: report %+v, oracle %+v", name, grep, wrep)
	}
}

func oracleSelections(t testing.TB) []Selection {
	var out []Selection
	for _, s := range goldenSelections(t) {
		out = append(out, s.sel)
	}
	return append(out, Selection{All: true, Allow: []string{HIV}})
}

// tricky are inputs where streaming could go wrong: member order, case,
// white space, nulls, labels on the Bundle after its entries, depth.
var tricky = []string{
	`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","id":"1"}}],"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV","display":"x"}]}}`,
	`{"entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Claim","id":"1","patient":{"reference":"urn:uuid:2"}}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"Patient","id":"2"}}],"meta":{"security":[{"code":"R"}]},"type":"batch","resourceType":"Bundle"}`,
	`{"entry":[{"item":{"reference":"Patient/1"}}],"resourceType":"List","status":"current"}`,
	`{"entry":5,"resourceType":"List"}`,
	`{"entry":5,"resourceType":"Bundle"}`,
	`{"entry":[5],"resourceType":"Bundle"}`,
	"\u00a0 \xef\xbb\xbf\v {\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Coverage\"}}]} \u0085\u00a0\n",
	"\xef\xbb\xbf\xef\xbb\xbf{\"resourceType\":\"Patient\"}",
	`{"resourceType":"Bundle"}` + "\xef\xbb\xbf",
	`{"resourceType":"Bundle"} x`,
	`{"resourceType":"Bundle","entry":null}`,
	`{"resourceType":"Bundle","entry":[]}`,
	`{"resourceType":"Bundle","entry":[null,{},{"resource":null},{"fullUrl":null,"resource":{"resourceType":"Claim"}},{"fullUrl":7}]}`,
	`{"resourceType":"Bundle","entry":{"resource":{"resourceType":"Claim"}}}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"},"Resource":{"resourceType":"Patient"}}]}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"},"request":{"url":"a","URL":"b"}}]}`,
	`{"RESOURCETYPE":"Bundle","ENTRY":[{"FullUrl":"u","RESOURCE":{"resourceType":"Claim","ID":"1"}}],"Meta":{"Security":[{"code":"HIV"}]}}`,
	`{"resourceType":"Bund\u006ce","entry":[{"resource":{"resourceType":"Claim"}}]}`,
	`{"resourceType":"Bundle","meta":{"security":[null]},"entry":[{"resource":{"resourceType":"Claim"}}]}`,
	`{"resourceType":"Bundle","meta":null,"contained":null,"entry":[{"resource":{"resourceType":"Claim"}}]}`,
	`{"resourceType":"Bundle","contained":5,"entry":[{"resource":{"resourceType":"Claim"}}]}`,
	`{"contained":5,"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"}}]}`,
	`{"meta":{"security":"x"},"resourceType":"Bundle"}`,
	`{"resourceType":"Bundle","meta":{"security":[{"system":5}]}}`,
	`{"resourceType":"Bundle","resourceType":"Bundle"}`,
	`{"resourceType":"Bundle","x":{"a":1,"A":2}}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","meta":{"security":[{"code":"HIV"}]}}}]}}]}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim","contained":[5]}}]}`,
	`{"resourceType":"Bundle","entry":[{"fullUrl":"http://x/fhir/Claim/1","resource":{"resourceType":"Claim","id":"1","a":{"reference":"Claim/1"},"b":{"reference":"Patient?identifier=1"},"c":{"reference":"#c"},"d":{"reference":"http://y/Patient/9/_history/2"}}}]}`,
	`{"resourceType":42}`,
	`{"resourceType":null,"entry":[]}`,
	`{"type":"collection"}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","category":42}}]}`,
	`{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"meta":{"security":[{"code":"HIV"}]}}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"}}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"}}],}`,
	`{"resourceType":"Bundle" "entry":[]}`,
	"{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Claim\",\"x\":\"\xff\"}}]}",
	`{"resourceType":"Bundle","entry":[{"full\u0055rl":"u","resourc\u0065":{"resourceType":"Claim"}},{"r\u00e9source":{"resourceType":"Claim"}}]}`,
	"{ \"resourceType\" : \"Bundle\" ,\n\t\"entry\" : [ { \"fullUrl\" : \"u\" , \"search\" : { \"mode\" : \"match\" , \"score\" : 1.5e3 } , \"resource\" : { \"resourceType\" : \"Claim\" , \"a\" : [ 1 , true , null , \"\\\"]\" ] } } , null ] }\r\n",
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"},"fullUrl":"a\\\"b"},{"fullUrl":"x","resource":{"resourceType":"Claim"},"x":[{"y":"}"}]}]}`,
}

// deep nests an Observation n arrays deep inside the first entry's
// resource: the record's depth is n+4.
func deep(n int) string {
	return `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","x":` +
		strings.Repeat("[", n) + strings.Repeat("]", n) + `}}]}`
}

// TestFilterOracle: the streaming Filter writes what the Filter that read
// the whole input wrote, on tricky inputs (TestFilterGolden covers the
// real FHIR files).
func TestFilterOracle(t *testing.T) {
	sels := oracleSelections(t)
	in := append([]string{}, tricky...)
	in = append(in, deep(maxJSONDepth-4), deep(maxJSONDepth-3), deep(maxJSONDepth-2))
	for i, s := range in {
		for _, sel := range sels {
			sameAsOracle(t, fmt.Sprintf("tricky input %d", i), []byte(s), sel)
		}
	}
	defer func(n int) { maxInput = n }(maxInput)
	maxInput = 64
	for _, s := range []string{
		`{"resourceType":"Patient"}` + strings.Repeat(" ", 38),
		`{"resourceType":"Patient"}` + strings.Repeat(" ", 39),
		`{"resourceType":"Bundle","entry":[]}` + strings.Repeat(" ", 28),
		`{"resourceType":"Bundle","entry":[]}` + strings.Repeat(" ", 29),
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"}}, 5]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Claim"}}]} garbage garbage garbage`,
		`not json at all, and more than sixty-four bytes of it, to be sure of that`,
	} {
		sameAsOracle(t, s, []byte(s), Selection{All: true})
	}
}

// FuzzFilterOracle: on any input the streaming Filter agrees with the
// Filter that read the whole input.
func FuzzFilterOracle(f *testing.F) {
	for _, s := range tricky {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Claim","id":"1","patient":{"reference":"urn:uuid:2"}}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"Patient","id":"2"}}]}`))
	sels := oracleSelections(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, sel := range sels {
			sameAsOracle(t, "fuzz", data, sel)
		}
	})
}

// BenchmarkFilterOracle is BenchmarkFilter on the old Filter, for a
// comparison on the same machine at the same time.
func BenchmarkFilterOracle(b *testing.B) { benchFilter(b, oracleFilter) }

// FuzzEntryMembers: entryMembers reads a valid entry as json.Unmarshal
// into a bundleEntry does.
func FuzzEntryMembers(f *testing.F) {
	for _, s := range []string{`null`, `5`, `[]`, `{}`, `{"fullUrl":"u","resource":{"a":[1,"]"]}}`, `{ "FULLURL" : null , "x":{"resource":1}, "resource" : "s" }`, `{"r\u00e9source":1,"resourc\u0065":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.TrimSpace(data)
		if !json.Valid(data) || checkKeys(data) != nil {
			return
		}
		var want bundleEntry
		werr := json.Unmarshal(data, &want)
		got, gerr := entryMembers(data)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("entryMembers(%q): %v; Unmarshal: %v", data, gerr, werr)
		}
		if werr == nil && (!bytes.Equal(got.FullURL, want.FullURL) || !bytes.Equal(got.Resource, want.Resource)) {
			t.Fatalf("entryMembers(%q) = %q, %q; Unmarshal: %q, %q", data, got.FullURL, got.Resource, want.FullURL, want.Resource)
		}
	})
}
