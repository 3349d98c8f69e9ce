package recordview_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

var update = flag.Bool("update", false, "rewrite the golden summaries in testdata/golden")

// goldenLimit is the number of items a section shows in the goldens (the
// counts cover every item).
const goldenLimit = 10

// sharedFiles returns the files under dir of the shared data whose
// detected format is format, as paths relative to the shared data.
func sharedFiles(t *testing.T, format string, dirs ...string) []string {
	t.Helper()
	data := testutil.SharedData(t)
	var out []string
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(data, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			md := detectFile(t, path)
			if md.Format == format {
				rel, _ := filepath.Rel(data, path)
				out = append(out, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s file in the shared data under %v", format, dirs)
	}
	return out
}

func detectFile(t *testing.T, path string) vault.Metadata {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md, err := vault.Detect(f)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func summarizeFile(t *testing.T, rel string) (*recordview.Summary, []byte) {
	t.Helper()
	path := filepath.Join(testutil.SharedData(t), rel)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md, err := vault.Detect(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	s, err := recordview.SummarizeBytes(raw, md)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return s, raw
}

// checkGolden compares got with testdata/golden/name, or rewrites it
// with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./recordview -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update to accept):\n%s", name, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n want " + w + "\n got  " + g
		}
	}
	return ""
}

func goldenName(rel, ext string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(strings.TrimSuffix(rel, filepath.Ext(rel))) + ext
}

// render is the 80-column text of a summary, goldenLimit items a section.
func render(t *testing.T, s *recordview.Summary) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := recordview.Render(&b, s, recordview.RenderOptions{Width: 80, Limit: goldenLimit}); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(b.String(), "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, line)
		}
		if strings.Contains(line, "\x1b") {
			t.Errorf("line %d has an escape sequence", i+1)
		}
	}
	return b.Bytes()
}

// TestFHIRGolden summarises every FHIR file of the shared data, compares
// the text with its golden file, and checks each section's count against
// a count made by a plain encoding/json walk of the source.
func TestFHIRGolden(t *testing.T) {
	for _, rel := range sharedFiles(t, vault.FormatFHIR, "fhir-r4", "smart-health-cards") {
		t.Run(rel, func(t *testing.T) {
			s, raw := summarizeFile(t, rel)
			checkGolden(t, goldenName(rel, ".txt"), render(t, s))
			if s.Partial {
				t.Error("summary of a whole shared file is partial")
			}
			want := walkFHIRCounts(t, raw)
			for _, sec := range s.Sections {
				if sec.Key == recordview.KeyOther {
					continue
				}
				if sec.Count != want[sec.Key] {
					t.Errorf("section %s: count %d, the JSON walk counts %d", sec.Key, sec.Count, want[sec.Key])
				}
				if len(sec.Items) != sec.Count {
					t.Errorf("section %s: %d items for a count of %d", sec.Key, len(sec.Items), sec.Count)
				}
				for i := 1; i < len(sec.Items); i++ {
					a, aok := recordview.ParseDate(sec.Items[i-1].Date)
					b, bok := recordview.ParseDate(sec.Items[i].Date)
					if aok && bok && a.Before(b) {
						t.Errorf("section %s: item %d (%s) is older than item %d (%s): not newest first", sec.Key, i-1, sec.Items[i-1].Date, i, sec.Items[i].Date)
						break
					}
				}
				for i, it := range sec.Items {
					if it.Title == "" {
						t.Errorf("section %s: item %d has no title", sec.Key, i)
					}
				}
			}
		})
	}
}

// walkFHIRCounts counts the resources of each IPS section in a FHIR JSON
// document by decoding it whole into maps.
func walkFHIRCounts(t *testing.T, raw []byte) map[string]int {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	resources := []map[string]any{doc}
	if doc["resourceType"] == "Bundle" {
		resources = nil
		entries, _ := doc["entry"].([]any)
		for _, e := range entries {
			em, _ := e.(map[string]any)
			if r, ok := em["resource"].(map[string]any); ok {
				resources = append(resources, r)
			}
		}
	}
	counts := map[string]int{}
	for _, r := range resources {
		switch r["resourceType"] {
		case "Patient":
			counts["patient"]++
		case "AllergyIntolerance":
			counts["allergies"]++
		case "MedicationRequest", "MedicationStatement":
			counts["medications"]++
		case "Condition":
			counts["problems"]++
		case "Immunization":
			counts["immunizations"]++
		case "Procedure":
			counts["procedures"]++
		case "Encounter":
			counts["encounters"]++
		case "Observation":
			cats, _ := r["category"].([]any)
		cat:
			for _, c := range cats {
				cm, _ := c.(map[string]any)
				codings, _ := cm["coding"].([]any)
				for _, cd := range codings {
					cdm, _ := cd.(map[string]any)
					switch cdm["code"] {
					case "laboratory":
						counts["results"]++
						break cat
					case "vital-signs":
						counts["vital-signs"]++
						break cat
					}
				}
			}
		}
	}
	return counts
}
