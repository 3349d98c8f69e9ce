package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// Exit codes; docs/cli.md lists them and scripts rely on them.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitNotFound = 3
	exitDenied   = 4
	exitVerify   = 5
)

// usageError marks a command line that cannot be run as written.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue) || isCobraUsage(err):
		return exitUsage
	case errors.Is(err, wallet.ErrDenied):
		return exitDenied
	case errors.Is(err, wallet.ErrNotFound), errors.Is(err, keystore.ErrNotFound):
		return exitNotFound
	case errors.Is(err, wallet.ErrVerify), errors.Is(err, keystore.ErrBadPassphrase), errors.Is(err, consent.ErrBadCard):
		return exitVerify
	}
	return exitError
}

// isCobraUsage recognises the few usage errors cobra makes without a type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument", "flag needs an argument", "if any flags in the group", "at least one of the flags in the group"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// resultError is a failure whose full result a script should still see:
// under --json, finish prints result instead of the error object (the exit
// code still says it failed). audit verify uses it for a failed report.
type resultError struct {
	result any
	error
}

func (e resultError) Unwrap() error { return e.error }

// errorJSON is printed on stdout under --json when a command fails:
//
//	{"error": {"message": "...", "hint": "...", "detail": "...", "exit_code": 1}}
//
// message is the one line a person reads (the same as on stderr); hint,
// when present, names the flag or command that fixes it; detail, when
// present, is the internal error that message words plainly (a reset
// stream, a CBOR offset, a peer count), for logs and bug reports: its text
// is not stable. exit_code is the process's exit code.
type errorJSON struct {
	Error struct {
		Message  string `json:"message"`
		Hint     string `json:"hint,omitempty"`
		Detail   string `json:"detail,omitempty"`
		ExitCode int    `json:"exit_code"`
	} `json:"error"`
}

// finish reports err once, in the one format users see, and returns the exit code.
func (g *globalOptions) finish(err error) int {
	code := exitCode(err)
	if err == nil {
		return code
	}
	msg, hint, detail := describe(err)
	var re resultError
	if g.json && errors.As(err, &re) {
		writeJSON(g.stdout, re.result)
		return code
	}
	if g.json {
		var ej errorJSON
		ej.Error.Message, ej.Error.Hint, ej.Error.Detail, ej.Error.ExitCode = msg, hint, detail, code
		writeJSON(g.stdout, ej)
		return code
	}
	fmt.Fprintf(g.stderr, "medwallet: error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(g.stderr, "medwallet: hint: %s\n", hint)
	}
	if g.verbose && detail != "" {
		fmt.Fprintf(g.stderr, "medwallet: detail: %s\n", detail)
	}
	return code
}

// oneLine folds a multi-line message so every error is one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// emit prints a command's result: v as JSON under --json, else human(stdout).
func (g *globalOptions) emit(v any, human func(w io.Writer)) error {
	if g.json {
		return writeJSON(g.stdout, v)
	}
	human(g.stdout)
	return nil
}

// note prints a human message on stderr; it stays quiet under --json.
func (g *globalOptions) note(format string, args ...any) {
	if !g.json {
		fmt.Fprintf(g.stderr, format+"\n", args...)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine writes v as one line of JSON (for streams such as log --watch).
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// idOf turns an ID string back into an ID for display.
func idOf(s string) consent.ID { return consent.ID(s) }
