package fhirscope

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestPeakMemory measures, when FHIRSCOPE_PEAK is "stream" or "oracle",
// the peak resident memory of Filter (or of the old Filter) on a Bundle of
// FHIRSCOPE_PEAK_COPIES (default 20) copies of the largest Synthea
// bundle's entries, generated as it is read, with the selection
// FHIRSCOPE_PEAK_SELECTION (insurer, patient or all; default insurer).
// Run each in its own process:
//
//	FHIRSCOPE_PEAK=stream go test -run TestPeakMemory -v ./fhirscope
func TestPeakMemory(t *testing.T) {
	which := os.Getenv("FHIRSCOPE_PEAK")
	if which == "" {
		t.Skip("set FHIRSCOPE_PEAK=stream or oracle to measure")
	}
	var src []byte
	for _, f := range syntheaFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > len(src) {
			src = data
		}
	}
	var b struct {
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(src, &b); err != nil {
		t.Fatal(err)
	}
	var entries bytes.Buffer
	for i, e := range b.Entry {
		if i > 0 {
			entries.WriteByte(',')
		}
		entries.Write(e)
	}
	copies := 20
	if n := os.Getenv("FHIRSCOPE_PEAK_COPIES"); n != "" {
		if err := json.Unmarshal([]byte(n), &copies); err != nil {
			t.Fatal(err)
		}
	}
	parts := []io.Reader{strings.NewReader(`{"resourceType":"Bundle","type":"collection","entry":[`)}
	for i := range copies {
		if i > 0 {
			parts = append(parts, strings.NewReader(","))
		}
		parts = append(parts, bytes.NewReader(entries.Bytes()))
	}
	parts = append(parts, strings.NewReader("]}"))
	size := int64(copies*entries.Len()) + 60
	src, b.Entry = nil, nil
	runtime.GC()
	debug.FreeOSMemory()
	base := vmHWM(t)
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Logf("cannot reset the peak (%v): it includes the set-up", err)
	}
	filter := Filter
	if which == "oracle" {
		filter = oracleFilter
	}
	sels := map[string]Selection{
		"insurer": mustSel(t, insurerScopes, nil),
		"patient": mustSel(t, []string{"patient/Patient.rs"}, nil),
		"all":     {All: true},
	}
	name := os.Getenv("FHIRSCOPE_PEAK_SELECTION")
	if name == "" {
		name = "insurer"
	}
	for _, sel := range []struct {
		name string
		sel  Selection
	}{{name, sels[name]}} {
		var out countWriter
		rep, err := filter(io.MultiReader(parts...), &out, sel.sel)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s: input %d MiB, output %d MiB (%d kept), peak RSS %d MiB (before: %d MiB)",
			which, sel.name, size>>20, out.n>>20, rep.KeptTotal(), vmHWM(t)>>10, base>>10)
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// vmHWM is the process's peak resident set size, in KiB.
func vmHWM(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var n int64
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))), &n); err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no VmHWM")
	return 0
}
