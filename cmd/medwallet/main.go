// Command medwallet is a patient-held wallet for medical records: keys in
// the OS keyring, records encrypted with age and erasure-coded onto peers,
// consent signed by the patient and enforced by every peer.
//
// See README.md for a tour and docs/cli.md for exit codes and JSON output.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at release time (goreleaser ldflags).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes one command line and returns the process exit code.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := newGlobals(os.Stdin, os.Stdout, os.Stderr)
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return g.finish(err)
}
