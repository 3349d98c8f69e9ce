package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// Under -race, the long-running `medwallet peer` processes that scripts
// start run a medwallet built without the race detector; every other
// command a script runs is the race-built test binary. The peer code runs
// under -race in-process elsewhere: p2p/peer and the other p2p packages,
// wallet and wallet/demo (six peers in one process), and
// TestPeerMetricsFromConfig (this command's peer, from a config file).
// A race-built peer took about a fifth of this package's CPU time, idling
// in scripts for a minute or more. MEDWALLET_SCRIPT_PEER_RACE=1 keeps the
// race detector in the script peers too.

// peerBinEnv names, in a script's environment, the medwallet binary
// without the race detector that `medwallet peer` runs as.
const peerBinEnv = "MEDWALLET_TEST_PEER_BIN"

// buildPeerBinary builds medwallet without the race detector into a
// temporary directory of t's and returns its path, or "" when the script
// peers are the test binary itself: without -race, under -short (scripts
// start no peer) or with MEDWALLET_SCRIPT_PEER_RACE=1.
func buildPeerBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled || testing.Short() || os.Getenv("MEDWALLET_SCRIPT_PEER_RACE") == "1" {
		return ""
	}
	bin := filepath.Join(t.TempDir(), "medwallet")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building medwallet without -race for the script peers: %v\n%s", err, out)
	}
	return bin
}

// isPeerRun says whether args (a medwallet command line) start a peer:
// the peer command itself, not one of its subcommands, nor its help.
func isPeerRun(args []string) bool {
	i := slices.Index(args, "peer")
	if i < 0 {
		return false
	}
	for _, a := range args[:i] {
		if !strings.HasPrefix(a, "-") {
			return false // "peer" is an argument of another command
		}
	}
	for _, a := range args[i+1:] {
		if a == "usage" || a == "-h" || a == "--help" || a == "help" {
			return false
		}
	}
	return true
}

// execPeer replaces this process by the peer binary named in the
// environment when args start a peer, so that the script's signals and
// wait reach the peer itself; it returns otherwise.
func execPeer(args []string) {
	bin := os.Getenv(peerBinEnv)
	if bin == "" || !isPeerRun(args) {
		return
	}
	err := syscall.Exec(bin, append([]string{"medwallet"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "medwallet (test): running the peer binary %s: %v\n", bin, err)
	os.Exit(1)
}
