package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

const patria = "fhir-r4/synthea/Patria_Schimmel_d2f8f862-3856-490d-b56f-98e0ed984b1e.json"

func readShared(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.SharedData(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// searchDirs fails the test when a file under one of dirs holds marker.
func searchDirs(t *testing.T, marker string, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(marker)) {
				t.Errorf("%s holds the record's plaintext (%q)", p, marker)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestShowRecord: the summary of a stored record is the summary of its
// plaintext, and showing leaves no plaintext in the home or the temporary
// directory.
func TestShowRecord(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	w := newRecordWallet(t)
	for _, rel := range []string{patria, "ccda/CCD.xml", "dicom/CT_small.dcm", "pdf/ccda-UD_sample-discharge-summary.pdf"} {
		plain := readShared(t, rel)
		info, err := w.AddRecord(ctx, bytes.NewReader(plain), AddRecordOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, s, err := w.ShowRecord(ctx, info.ID[:8], RecordOptions{})
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if got.ID != info.ID {
			t.Errorf("%s: showed %s, want %s", rel, got.ID, info.ID)
		}
		want, err := recordview.SummarizeBytes(plain, info.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(s)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the summary of the stored record differs from the plaintext's", rel)
		}
	}
	searchDirs(t, "Schimmel", w.Home(), tmp)
	searchDirs(t, "Betterhalf", w.Home(), tmp)

	bin, err := w.AddRecord(ctx, strings.NewReader("\x00\x01 not a medical format"), AddRecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.ShowRecord(ctx, bin.ID, RecordOptions{}); !errors.Is(err, ErrInvalid) || !errors.Is(err, recordview.ErrUnsupported) {
		t.Errorf("show of a binary record: %v", err)
	}
	if _, _, err := w.ShowRecord(ctx, "0123456789abcdef0123456789abcdef", RecordOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("show of an unknown record: %v", err)
	}
}

// TestShowFile: a file a grantee imported shows the same summary.
func TestShowFile(t *testing.T) {
	plain := readShared(t, "ccda/Referral_Note.xml")
	md, s, err := ShowFile(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	if md.Format != vault.FormatCCDA || s.Format != vault.FormatCCDA || len(s.Sections) < 5 {
		t.Errorf("format %s, %d sections", md.Format, len(s.Sections))
	}
}

// TestTrend: the trend of a lab result present in three encounters of a
// Synthea bundle has the source's values, oldest first, found by LOINC
// code or by name, counted once when two records hold it.
func TestTrend(t *testing.T) {
	ctx := context.Background()
	w := newRecordWallet(t)
	plain := readShared(t, patria)
	type point struct {
		date  time.Time
		value float64
		unit  string
	}
	// The source's HbA1c values, by a plain JSON walk.
	var doc struct {
		Entry []struct {
			Resource struct {
				ResourceType string
				Code         struct {
					Coding []struct{ System, Code string }
				}
				EffectiveDateTime string
				Encounter         struct{ Reference string }
				ValueQuantity     *struct {
					Value float64
					Unit  string
				}
			}
		}
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatal(err)
	}
	var want []point
	encounters := map[string]bool{}
	for _, e := range doc.Entry {
		r := e.Resource
		if r.ResourceType != "Observation" || len(r.Code.Coding) == 0 || r.Code.Coding[0].Code != "4548-4" || r.ValueQuantity == nil {
			continue
		}
		d, err := time.Parse(time.RFC3339, r.EffectiveDateTime)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, point{d, r.ValueQuantity.Value, r.ValueQuantity.Unit})
		encounters[r.Encounter.Reference] = true
	}
	if len(encounters) < 3 {
		t.Fatalf("the source has HbA1c in %d encounters, want at least 3", len(encounters))
	}
	sort.Slice(want, func(i, j int) bool { return want[i].date.Before(want[j].date) })

	a, err := w.AddRecord(ctx, bytes.NewReader(plain), AddRecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddRecord(ctx, bytes.NewReader(plain), AddRecordOptions{Label: "the same, again"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddRecord(ctx, bytes.NewReader(readShared(t, "ccda/CCD.xml")), AddRecordOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"4548-4", "http://loinc.org|4548-4", "hemoglobin a1c/hemoglobin.total in blood", "A1c"} {
		tr, err := w.Trend(ctx, q, TrendOptions{})
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if tr.Records != 2 || tr.Code != "http://loinc.org|4548-4" || tr.Unit != want[0].unit {
			t.Errorf("%q: %d records, code %q, unit %q", q, tr.Records, tr.Code, tr.Unit)
		}
		if len(tr.Points) != len(want) {
			t.Fatalf("%q: %d points, the source has %d", q, len(tr.Points), len(want))
		}
		for i, p := range tr.Points {
			if !p.Date.Equal(want[i].date) || p.Value != want[i].value || p.Unit != want[i].unit {
				t.Errorf("%q: point %d is %v %v %s, the source says %v %v %s", q, i, p.Date, p.Value, p.Unit, want[i].date, want[i].value, want[i].unit)
			}
		}
	}
	tr, err := w.Trend(ctx, "4548-4", TrendOptions{Records: []string{a.ID[:6]}})
	if err != nil || tr.Records != 1 || len(tr.Points) != len(want) {
		t.Errorf("one record: %v, %+v", err, tr)
	}
	if _, err := w.Trend(ctx, "no such test", TrendOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown result: %v", err)
	}
	if _, err := w.Trend(ctx, "blood", TrendOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a name matching several results: %v", err)
	}
}
