// Command releasecheck checks goreleaser.yaml without building goreleaser.
//
// It loads the file with goreleaser's own configuration loader
// (github.com/goreleaser/goreleaser/v2/pkg/config), which decodes it
// strictly into goreleaser's configuration types: an unknown or misspelt
// key, a value of the wrong type or a configuration version other than 2
// fails. It then checks what ties the file to this repository: every
// build's main package exists, every build stamps main.version, and every
// archive names builds that exist.
//
// It lives in its own module so that the main go.mod does not carry
// goreleaser's dependencies; .ci/run builds it in about two minutes of CPU
// where `go install` of goreleaser takes half an hour. The full
// `goreleaser check`, which also runs goreleaser's defaults and deprecation
// checks, is scripts/release-check.sh, run before every release.
//
//	cd internal/tools/releasecheck && go run . ../../../goreleaser.yaml
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goreleaser/goreleaser/v2/pkg/config"
)

func main() {
	path := "goreleaser.yaml"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	builds, problems, err := check(path, filepath.Dir(path))
	if err != nil {
		fmt.Fprintf(os.Stderr, "releasecheck: %s: %v\n", path, err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "releasecheck: %s: %s\n", path, p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("releasecheck: %s: valid (strict goreleaser v2 load, %d builds)\n", path, builds)
}

// check loads the configuration strictly and returns its number of builds
// and what is wrong with it; paths in it are relative to the directory root.
func check(path, root string) (int, []string, error) {
	p, err := config.Load(path)
	if err != nil {
		return 0, nil, err
	}
	var problems []string
	if p.Version != 2 {
		problems = append(problems, fmt.Sprintf("version is %d, want 2", p.Version))
	}
	if len(p.Builds) == 0 {
		problems = append(problems, "no builds")
	}
	ids := map[string]bool{}
	for i, b := range p.Builds {
		name := b.ID
		if name == "" {
			name = fmt.Sprintf("builds[%d]", i)
		}
		ids[b.ID] = true
		main := filepath.Join(root, b.Dir, b.Main)
		if fi, err := os.Stat(main); err != nil || !fi.IsDir() {
			problems = append(problems, fmt.Sprintf("build %s: main %q is not a directory here", name, b.Main))
		}
		if !slices.ContainsFunc(b.Ldflags, func(f string) bool { return strings.Contains(f, "-X main.version=") }) {
			problems = append(problems, fmt.Sprintf("build %s: ldflags do not set main.version", name))
		}
	}
	for i, a := range p.Archives {
		for _, id := range a.IDs {
			if !ids[id] {
				problems = append(problems, fmt.Sprintf("archives[%d]: no build has id %q", i, id))
			}
		}
	}
	return len(p.Builds), problems, nil
}
