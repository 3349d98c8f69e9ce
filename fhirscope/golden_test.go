package fhirscope

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/filter-golden.txt from oracleFilter, the Filter that read the whole input")

// goldenSelections are the selections TestFilterGolden runs on every real
// FHIR file.
func goldenSelections(t testing.TB) []struct {
	name string
	sel  Selection
} {
	return []struct {
		name string
		sel  Selection
	}{
		{"insurer", mustSel(t, insurerScopes, nil)},
		{"all", Selection{All: true}},
		{"all-allow-every", Selection{All: true, Allow: []string{SubstanceUse, Psychotherapy, HIV, Genetic, Reproductive, Restricted}}},
		{"lab", mustSel(t, []string{"patient/Observation.rs?category=laboratory"}, nil)},
		{"none", mustSel(t, []string{"patient/Observation.cud"}, nil)},
	}
}

// realFHIRFiles lists the JSON files under the shared fhir-r4 data, by
// path relative to it.
func realFHIRFiles(t testing.TB) (root string, files []string) {
	t.Helper()
	root = filepath.Join(testutil.SharedData(t), "fhir-r4")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no FHIR files under %s (%v)", root, err)
	}
	sort.Strings(files)
	return root, files
}

// goldenLine is what TestFilterGolden records of one Filter run: the
// SHA-256 of the output and of the report, or the error's sentinel.
func goldenLine(file, sel string, out []byte, rep Report, err error) string {
	if err != nil {
		kind := "other"
		for _, s := range []error{ErrNotFHIR, ErrTooLarge, ErrBadSelection} {
			if errors.Is(err, s) {
				kind = s.Error()
			}
		}
		return fmt.Sprintf("%s %s error %q", file, sel, kind)
	}
	r, jerr := json.Marshal(rep)
	if jerr != nil {
		panic(jerr)
	}
	return fmt.Sprintf("%s %s %x %x", file, sel, sha256.Sum256(out), sha256.Sum256(r))
}

// TestFilterGolden: on every real FHIR file and a set of selections,
// Filter's output and report are byte for byte those recorded in
// testdata/filter-golden.txt, made by the Filter that buffered the whole
// input (before it was rewritten to stream; -update rewrites it from
// oracleFilter, that Filter kept as it was).
func TestFilterGolden(t *testing.T) {
	root, files := realFHIRFiles(t)
	var got []string
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range goldenSelections(t) {
			var out bytes.Buffer
			filter := Filter
			if *updateGolden {
				filter = oracleFilter
			}
			rep, err := filter(bytes.NewReader(src), &out, s.sel)
			got = append(got, goldenLine(f, s.name, out.Bytes(), rep, err))
		}
	}
	const golden = "testdata/filter-golden.txt"
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		want = append(want, sc.Text())
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, golden file has %d (files added or removed? rerun with -update)", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("got  %s\nwant %s", got[i], want[i])
		}
	}
}
