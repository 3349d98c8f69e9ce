// Package testutil holds the few helpers that tests across medwallet's
// packages share: finding the real medical test files, and waiting for a
// condition with a deadline instead of sleeping.
package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// SharedData returns <repository root>/../shared/data, where the real FHIR,
// C-CDA, DICOM and PDF test files live ($MEDWALLET_SHARED_DATA overrides).
// It fails the test when they are missing: a missing data set must never
// turn into a skipped test.
func SharedData(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("MEDWALLET_SHARED_DATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("cannot find go.mod above the test's directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(data, "SOURCES.md")); err != nil {
		tb.Fatalf("the shared test data is missing at %s: clone the project with shared/ beside it (see shared/data/SOURCES.md)", data)
	}
	return data
}

// Eventually polls cond every 20 ms until it holds, and fails the test
// when d has passed first.
func Eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WriteSeedsEnv names the environment variable that makes FuzzSeeds
// rewrite a seed corpus instead of checking it.
const WriteSeedsEnv = "MEDWALLET_WRITE_FUZZ_SEEDS"

// FuzzSeeds keeps the checked-in seed corpus of fuzz target in
// testdata/fuzz/TARGET: seeds maps a file name to the seed's bytes. With
// $MEDWALLET_WRITE_FUZZ_SEEDS set it writes them (in go test's corpus file
// format); otherwise it fails the test for every seed whose file is missing
// or stale, so a changed message format cannot leave the corpus behind.
func FuzzSeeds(t *testing.T, target string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	write := os.Getenv(WriteSeedsEnv) != ""
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range seeds {
		path := filepath.Join(dir, name)
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if write {
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != data {
			t.Errorf("%s is missing or stale (%s=1 go test -run %s rewrites it): %v", path, WriteSeedsEnv, t.Name(), err)
		}
	}
}
