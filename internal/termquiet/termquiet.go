// Package termquiet keeps bubbletea's package initialisation from querying
// the terminal.
//
// bubbletea v1 calls lipgloss.HasDarkBackground in an init function
// (tea_init.go). On a terminal that makes termenv write two queries to
// stdout, OSC 11 (ESC]11;?ESC\) and a cursor position report (ESC[6n), and
// wait up to five seconds for the answer, in every process that links
// bubbletea: `medwallet --version` and `medwallet whoami` included, and for
// nothing, since the TUI draws on stderr with a renderer of its own. Only the
// TUI may query the terminal, and only on stderr.
//
// Go initialises, among the packages whose imports are initialised, the one
// with the smallest import path first (the spec's "Package initialization").
// This package imports only os and sorts before github.com/muesli/termenv,
// so its init runs before termenv's, lipgloss's and bubbletea's: it sets
// TERM=dumb, which termenv takes as "never query". Package tui imports it
// and calls Restore in its own init, which runs after bubbletea's, so that
// TERM is back to what the user set before any command runs.
// cmd/medwallet's pty test fails if the queries ever come back.
package termquiet

import "os"

var (
	term, hadTerm = os.LookupEnv("TERM")
	restored      bool
)

func init() { os.Setenv("TERM", "dumb") }

// Restore puts TERM back as it was when the process started. It runs once,
// from package tui's init; later calls do nothing.
func Restore() {
	if restored {
		return
	}
	restored = true
	if hadTerm {
		os.Setenv("TERM", term)
	} else {
		os.Unsetenv("TERM")
	}
}
