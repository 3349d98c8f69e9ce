package wallet

import (
	"errors"
	"testing"
)

// FuzzParseSHLManifest feeds anything to the manifest reader of import
// --shl: a manifest or ErrInvalid, never a panic, always within bounds.
// The seed corpus is in testdata/fuzz/FuzzParseSHLManifest.
func FuzzParseSHLManifest(f *testing.F) {
	f.Add([]byte(`{"files":[{"contentType":"application/fhir+json","embedded":"a.b.c.d.e"}]}`))
	f.Add([]byte(`{"files":[{"contentType":"application/smart-health-card","location":"https://x/y"}]}`))
	f.Add([]byte(`{"files":[{"contentType":"application/fhir+json"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if len(m.Files) > MaxSHLFiles {
			t.Fatalf("%d files", len(m.Files))
		}
		for _, f := range m.Files {
			if (f.Embedded == "") == (f.Location == "") {
				t.Fatal("a file with neither or both of embedded and location")
			}
		}
	})
}
