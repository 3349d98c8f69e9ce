//go:build linux

package netbed_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/medwallet/medwallet/internal/netbed"
)

// bin is the medwallet binary TestMain builds once per run ("" when no
// bed can be built here: the tests then skip, or fail under
// $MEDWALLET_REQUIRE_NETNS=1, through netbed.Need).
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() || netbed.Check() != nil {
		return m.Run()
	}
	stop := netbed.Guard()
	defer stop()
	if b := os.Getenv("MEDWALLET_NETBED_BIN"); b != "" {
		// A binary built elsewhere (a release, another branch).
		bin = b
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "medwallet-netbed-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netbed:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "medwallet")
	build := exec.Command("go", "build", "-o", bin, "github.com/medwallet/medwallet/cmd/medwallet")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "netbed: building medwallet:", err)
		return 1
	}
	return m.Run()
}
