package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const repoConfig = "../../../goreleaser.yaml"

// The repository's own goreleaser.yaml passes: this is the check .ci/run runs.
func TestRepoConfig(t *testing.T) {
	builds, problems, err := check(repoConfig, "../../..")
	if err != nil || len(problems) > 0 || builds == 0 {
		t.Fatalf("%s: %d builds, problems %q, error %v", repoConfig, builds, problems, err)
	}
}

// Each broken copy of the real file fails, for the reason given.
func TestBrokenConfigs(t *testing.T) {
	orig, err := os.ReadFile(repoConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown key", "project_name:", "projet_name:", "field projet_name not found"},
		{"wrong type", "binary: medwallet\n", "binary: [medwallet]\n", "cannot unmarshal"},
		{"version", "version: 2", "version: 1", "version is 1"},
		{"main", "main: ./cmd/medwallet", "main: ./cmd/nothere", "is not a directory"},
		{"version stamp", "main.version", "main.Version", "do not set main.version"},
		{"archive ids", "ids: [medwallet]", "ids: [other]", `no build has id "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.old) {
				t.Fatalf("%s no longer holds %q: update this test", repoConfig, tc.old)
			}
			bad := filepath.Join(t.TempDir(), "goreleaser.yaml")
			if err := os.WriteFile(bad, []byte(strings.Replace(string(orig), tc.old, tc.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, problems, err := check(bad, "../../..")
			got := strings.Join(problems, "; ")
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
