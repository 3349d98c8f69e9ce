//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// asMedwallet, set to 1 in the environment, makes the test binary run as
// medwallet (see TestMain).
const asMedwallet = "MEDWALLET_TEST_AS_MEDWALLET"

// medwalletCmd runs the test binary as medwallet with a wallet home under dir.
func medwalletCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	for _, kv := range os.Environ() {
		// termenv never queries when $CI is set (as it is in CI) or TERM
		// names a multiplexer: the child gets neither, or the test could
		// not fail.
		if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "TERM=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, asMedwallet+"=1",
		"MEDWALLET_HOME="+filepath.Join(dir, "home"), "MEDWALLET_KEYRING_BACKEND=file",
		"MEDWALLET_PASSPHRASE=keyring pass", "MEDWALLET_NETWORK=",
		"TERM=xterm-256color")
	return cmd
}

// runInPty runs cmd with stdin, stdout and stderr on a pseudo-terminal that
// never answers, and returns everything the command wrote to it.
func runInPty(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once the command exits
		out <- b
	}()
	err = cmd.Wait()
	var b []byte
	select {
	case b = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("the pty was not closed after the command exited")
	}
	if err != nil {
		t.Fatalf("%v: %v; output %q", cmd.Args[1:], err, b)
	}
	return b
}

// Issue 17 point 3: outside the TUI, medwallet never queries the terminal
// (OSC 11 for the background colour, ESC[6n for the cursor), which on a
// terminal that does not answer stalled every command for seconds.
func TestNoTerminalQueries(t *testing.T) {
	dir := t.TempDir()
	// A generous bound, so that a command waiting for an answer fails the
	// test instead of hanging it; the test itself checks bytes, not time.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	init := medwalletCmd(ctx, dir, "init", "--name", "Alice")
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		noColor bool
		want    string
	}{
		{"version", []string{"--version"}, false, "medwallet version"},
		{"version NO_COLOR", []string{"--version"}, true, "medwallet version"},
		{"whoami", []string{"whoami"}, false, "name:          Alice"},
		{"whoami NO_COLOR", []string{"whoami"}, true, "name:          Alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := medwalletCmd(ctx, dir, tc.args...)
			if tc.noColor {
				cmd.Env = append(cmd.Env, "NO_COLOR=1")
			}
			out := runInPty(t, cmd)
			for _, q := range []string{"\x1b]", "\x1b[6n"} {
				if bytes.Contains(out, []byte(q)) {
					t.Errorf("medwallet %v wrote the terminal query %q: %q", tc.args, q, out)
				}
			}
			if !bytes.Contains(out, []byte(tc.want)) {
				t.Errorf("medwallet %v wrote %q, want %q in it", tc.args, out, tc.want)
			}
		})
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("medwallet was killed after two minutes: it waited for the terminal")
	}
}

// internal/termquiet sets TERM=dumb while bubbletea initialises; by the time
// any command runs, TERM is the one the process started with (the TUI and
// everything medwallet starts see the user's terminal type).
func TestTermRestored(t *testing.T) {
	environ, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		t.Skipf("no /proc/self/environ here: %v", err)
	}
	want, had := "", false
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("TERM=")); ok {
			want, had = string(v), true
		}
	}
	if got, ok := os.LookupEnv("TERM"); got != want || ok != had {
		t.Fatalf("TERM = %q (set %v), want %q (set %v) as the process started", got, ok, want, had)
	}
}
