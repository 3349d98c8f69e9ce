package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestImportProgress: import draws, for each large record, the bar that
// record add and get draw, and nothing when stderr is not a terminal.
func TestImportProgress(t *testing.T) {
	var stderr bytes.Buffer
	g := newGlobals(strings.NewReader(""), &bytes.Buffer{}, &stderr)
	if p := newImportProgress(g); p != nil {
		t.Fatalf("a progress bar on a stderr that is not a terminal: %T", p)
	}

	var bars bytes.Buffer
	p := &importProgress{bar: func(verb string, total int64) *progressBar {
		if total >= 0 && total < progressMin {
			return nil
		}
		return &progressBar{w: &bars, verb: verb, total: total}
	}}
	tests := []struct {
		name  string
		size  int64
		drawn string // "" for no bar
	}{
		{"labs-2026-3fa1.json", 200 << 20, "importing labs-2026-3fa1.json  200.0 MiB / 200.0 MiB  100%"},
		{"small-77ab.json", 1 << 10, ""},
		{"scan-9c2e.dcm", 16 << 20, "importing scan-9c2e.dcm  16.0 MiB / 16.0 MiB  100%"},
	}
	for _, tt := range tests {
		bars.Reset()
		p.Start(tt.name, tt.size)
		for done := int64(0); done < tt.size; done += 1 << 20 {
			p.Add(min(1<<20, tt.size-done))
		}
		p.Done()
		if tt.drawn == "" && bars.Len() != 0 {
			t.Errorf("%s: drew %q for a small record", tt.name, bars.String())
		}
		if tt.drawn != "" && (!strings.Contains(bars.String(), tt.drawn) || !strings.HasSuffix(bars.String(), "\n")) {
			t.Errorf("%s: drew %q, want %q and a final newline", tt.name, bars.String(), tt.drawn)
		}
	}
}
