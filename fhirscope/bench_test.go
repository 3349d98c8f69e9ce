package fhirscope

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// BenchmarkFilter runs the insurer's and an "all" selection on the largest
// Synthea bundle.
func BenchmarkFilter(b *testing.B) { benchFilter(b, Filter) }

// benchFilter runs filter on the largest Synthea bundle with the insurer's
// and an "all" selection, reporting CPU time beside wall time.
func benchFilter(b *testing.B, filter func(io.Reader, io.Writer, Selection) (Report, error)) {
	var src []byte
	for _, f := range syntheaFiles(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if len(data) > len(src) {
			src = data
		}
	}
	for _, bc := range []struct {
		name string
		sel  Selection
	}{{"insurer", mustSel(b, insurerScopes, nil)}, {"all", Selection{All: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := filter(bytes.NewReader(src), io.Discard, bc.sel); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
