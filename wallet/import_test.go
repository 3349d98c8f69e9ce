package wallet

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestImportName(t *testing.T) {
	const id = "3fa1c0de3fa1c0de3fa1c0de3fa1c0de"
	tests := []struct {
		label, want string
	}{
		{"", id + ".json"},
		{"labs 2026", "labs-2026-" + id + ".json"},
		{"2026 check-up", "2026-check-up-" + id + ".json"},
		{"visit/2026/03", "visit-2026-03-" + id + ".json"},
		{`a\b:c*d?e"f<g>h|i`, "a-b-c-d-e-f-g-h-i-" + id + ".json"},
		{"../../etc/passwd", "etc-passwd-" + id + ".json"},
		{"..", id + ".json"},
		{".hidden", "hidden-" + id + ".json"},
		{"-rf", "rf-" + id + ".json"},
		{"report.v1.2.", "report.v1.2-" + id + ".json"},
		{"scan_final", "scan_final-" + id + ".json"},
		{"Bericht Ärztin", "Bericht-Ärztin-" + id + ".json"},
		{"検査 結果", "検査-結果-" + id + ".json"},
		{"Zoë (née Müller)", "Zoë-née-Müller-" + id + ".json"},
		{"cafe\u0301", "cafe\u0301-" + id + ".json"},          // a combining accent stays
		{"evil\u202etxt.exe", "evil-txt.exe-" + id + ".json"}, // a bidi override does not
		{"tab\there\nnew\x00line", "tab-here-new-line-" + id + ".json"},
		{"  \t/ ", id + ".json"},
		{"\xff\xfe", id + ".json"},
		{"CON", "CON-" + id + ".json"},
		{"NUL.txt", "NUL.txt-" + id + ".json"},
		{strings.Repeat("a", 200), strings.Repeat("a", maxNameLabel) + "-" + id + ".json"},
		{strings.Repeat("é", 100), strings.Repeat("é", maxNameLabel/2) + "-" + id + ".json"},
		{strings.Repeat("x", maxNameLabel-1) + "é", strings.Repeat("x", maxNameLabel-1) + "-" + id + ".json"},
	}
	for _, tt := range tests {
		got := importName(tt.label, id, ".json")
		if got != tt.want {
			t.Errorf("importName(%q) = %q, want %q", tt.label, got, tt.want)
		}
		if strings.ContainsAny(got, `/\:*?"<>|`) || strings.HasPrefix(got, ".") || strings.HasPrefix(got, "-") || len(got) > 255 {
			t.Errorf("importName(%q) = %q is not a safe file name", tt.label, got)
		}
	}
}

// stepLog is a Progress that records what Import reports.
type stepLog struct {
	steps []string
	total map[string]int64
	added map[string]int64
	open  string
	done  int
}

func (p *stepLog) Start(step string, total int64) {
	p.steps = append(p.steps, step)
	p.total[step], p.open = total, step
}
func (p *stepLog) Add(n int64) { p.added[p.open] += n }
func (p *stepLog) Done()       { p.done++; p.open = "" }

// TestImportFiles imports over an in-process devnet: files named by label
// and ID, progress for each record, never overwriting, nothing left by a
// denied import, and no empty record.
func TestImportFiles(t *testing.T) {
	ctx, netPath := startDevnet(t)
	alice := rotateWallet(t, netPath, "Alice", "patient")
	bob := rotateWallet(t, netPath, "Dr Bob", "clinician")
	if _, err := alice.AddContact("Bob", bob.Card().String()); err != nil {
		t.Fatal(err)
	}

	// An empty record is refused, and nothing is stored.
	if _, err := alice.AddRecord(ctx, bytes.NewReader(nil), AddRecordOptions{Label: "empty"}); !errors.Is(err, ErrEmptyRecord) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty record: %v, want ErrEmptyRecord (ErrInvalid)", err)
	}
	if recs, err := alice.ListRecords(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("after the empty record: %d records, %v", len(recs), err)
	}

	labels := []string{"labs/2026: März", "../../etc/passwd", ""}
	plain := map[string][]byte{}
	var ids []string
	for i, label := range labels {
		b := bytes.Repeat([]byte(`{"resourceType":"Observation","id":"o`+string(rune('a'+i))+`"}`+"\n"), 2000+i)
		rec, err := alice.AddRecord(ctx, bytes.NewReader(b), AddRecordOptions{Label: label})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
		plain[importName(label, rec.ID, ".json")] = b
	}
	g, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: ids, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	if err != nil {
		t.Fatal(err)
	}

	// The files carry the label and the ID; Progress follows each record.
	dir := filepath.Join(t.TempDir(), "new", "sub")
	p := &stepLog{total: map[string]int64{}, added: map[string]int64{}}
	got, err := bob.Import(ctx, ImportOptions{Grant: g.ID.String(), OutDir: dir, Progress: p})
	if err != nil || len(got) != len(labels) {
		t.Fatalf("import: %v %v", got, err)
	}
	var names []string
	for _, r := range got {
		name := filepath.Base(r.File)
		names = append(names, name)
		want, ok := plain[name]
		if !ok || filepath.Dir(r.File) != dir {
			t.Fatalf("unexpected file %q; want one of %v", r.File, plain)
		}
		if b, err := os.ReadFile(r.File); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("%s differs from the record: %v", name, err)
		}
		if p.total[name] != int64(len(want)) || p.added[name] != int64(len(want)) {
			t.Errorf("progress of %s: total %d, added %d, want %d", name, p.total[name], p.added[name], len(want))
		}
	}
	sort.Strings(names)
	wantNames := []string{ids[2] + ".json", "etc-passwd-" + ids[1] + ".json", "labs-2026-März-" + ids[0] + ".json"}
	sort.Strings(wantNames)
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("files %v, want %v", names, wantNames)
	}
	if len(p.steps) != len(labels) || p.done != len(labels) {
		t.Errorf("progress: %d steps started, %d done; want %d", len(p.steps), p.done, len(labels))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != len(labels) {
		t.Errorf("%d entries in the output directory, want %d (no temporary file left)", len(ents), len(labels))
	}

	// Importing again never overwrites.
	first := got[0].File
	if err := os.WriteFile(first, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Import(ctx, ImportOptions{Grant: g.ID.String(), OutDir: dir}); !errors.Is(err, ErrExists) {
		t.Fatalf("second import: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(first); string(b) != "kept" {
		t.Fatalf("the existing file was overwritten")
	}

	// A denied import leaves nothing: no file, no directory it created;
	// a directory that was there stays.
	if _, err := alice.Revoke(ctx, g.ID.String()); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	for _, tc := range []struct {
		name, out, gone string
	}{
		{"new nested directory", filepath.Join(base, "a", "b", "c"), filepath.Join(base, "a")},
		{"existing directory", base, ""},
	} {
		_, err := bob.Import(ctx, ImportOptions{Grant: g.ID.String(), OutDir: tc.out})
		if !errors.Is(err, ErrDenied) {
			t.Fatalf("%s: import after the revocation: %v, want ErrDenied", tc.name, err)
		}
		if tc.gone != "" {
			if _, err := os.Stat(tc.gone); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %s is left behind (%v)", tc.name, tc.gone, err)
			}
		}
		if _, err := os.Stat(base); err != nil {
			t.Errorf("%s: the existing directory is gone: %v", tc.name, err)
		}
		if ents, _ := os.ReadDir(base); tc.gone == "" && len(ents) != 0 {
			t.Errorf("%s: left %d entries behind", tc.name, len(ents))
		}
	}
}
