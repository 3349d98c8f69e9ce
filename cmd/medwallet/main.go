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
	"strconv"
	"strings"
	"syscall"
)

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
	if err != nil && !g.json {
		// An unknown command or flag fails before cobra parses --json;
		// a script that asked for JSON still gets its error object.
		g.json = jsonRequested(args)
	}
	return g.finish(err)
}

// jsonRequested reports whether args, before any "--", hold --json (or
// --json=BOOL that is true).
func jsonRequested(args []string) bool {
	on := false
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" {
			on = true
		} else if v, ok := strings.CutPrefix(a, "--json="); ok {
			on, _ = strconv.ParseBool(v)
		}
	}
	return on
}
