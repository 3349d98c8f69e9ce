package fhirscope

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzFilter: on any input Filter either fails without writing or writes
// a collection Bundle whose resources are byte-identical to input
// resources of the selected types, without sensitive categories the
// selection does not name, and whose report accounts for every kept one.
func FuzzFilter(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Claim","id":"1","patient":{"reference":"urn:uuid:2"}}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"Patient","id":"2"}}]}`))
	f.Add([]byte(`{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV"}]}}`))
	f.Add([]byte(`{"resourceType":"AllergyIntolerance","category":["food"]}`))
	f.Add([]byte(`not json`))
	sels := []Selection{
		{All: true},
		{All: true, Allow: []string{HIV}},
		mustSel(f, insurerScopes, nil),
		mustSel(f, []string{"patient/Observation.rs?category=laboratory", "patient/AllergyIntolerance.rs?category=food"}, nil),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScan(t, data)
		for _, sel := range sels {
			var out bytes.Buffer
			rep, err := Filter(bytes.NewReader(data), &out, sel)
			if err != nil {
				if out.Len() != 0 {
					t.Fatal("output written on error")
				}
				continue
			}
			b := checkBundle(t, out.Bytes(), nil)
			if len(b.Entry) != rep.KeptTotal() {
				t.Fatalf("%d entries, report says %d", len(b.Entry), rep.KeptTotal())
			}
			allow := map[string]bool{}
			for _, a := range sel.Allow {
				allow[a] = true
			}
			for _, e := range b.Entry {
				if !bytes.Contains(data, e.Resource) {
					t.Fatal("output resource is not a byte-for-byte copy of the input")
				}
				var v resourceView
				if err := json.Unmarshal(e.Resource, &v); err != nil {
					t.Fatal(err)
				}
				if ok, err := sel.covers(&v); !ok || err != nil {
					t.Fatalf("kept a %s the selection does not cover", v.ResourceType)
				}
				for _, c := range Sensitive(e.Resource) {
					if !allow[c] {
						t.Fatalf("kept a %s labelled %s", v.ResourceType, c)
					}
				}
			}
		}
	})
}

// walkReferences is the decoding reference for scanReferences.
func walkReferences(doc any, f func(string)) {
	switch v := doc.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "reference" {
				f(s)
				continue
			}
			walkReferences(x, f)
		}
	case []any:
		for _, x := range v {
			walkReferences(x, f)
		}
	}
}

// checkScan compares scanReferences with a decoding walk on valid JSON:
// the scan finds every reference the decode finds, and more only when
// duplicate member names hide some from the decode (which keeps the last).
func checkScan(t *testing.T, raw []byte) {
	t.Helper()
	var doc any
	if json.Unmarshal(raw, &doc) != nil {
		return
	}
	want := map[string]int{}
	walkReferences(doc, func(s string) { want[s]++ })
	got := map[string]int{}
	if err := scanReferences(raw, func(s string) { got[s]++ }); err != nil {
		t.Fatalf("scanReferences: %v", err)
	}
	for k, v := range want {
		if got[k] < v {
			t.Fatalf("scanReferences found %v, decoding finds %v", got, want)
		}
	}
}

// FuzzFold: fold agrees with bytes.EqualFold, the rule encoding/json
// matches member names by.
func FuzzFold(f *testing.F) {
	f.Add("k", "\u212a")
	f.Add("s", "ſ")
	f.Add("meta", "Meta")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := bytes.Equal(fold(nil, []byte(a)), fold(nil, []byte(b))), bytes.EqualFold([]byte(a), []byte(b)); got != want {
			t.Fatalf("fold(%q) == fold(%q) is %v, EqualFold says %v", a, b, got, want)
		}
	})
}
