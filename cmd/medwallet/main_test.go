package main

import (
	"bytes"
	"errors"
	"github.com/medwallet/medwallet/internal/testutil"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/p2p/netfile"
)

func TestMain(m *testing.M) {
	// Cheap key derivation for tests; the costs are recorded with each
	// keyring and export, so nothing else changes.
	testKDFCost = 10
	if os.Getenv(asMedwallet) == "1" {
		// Re-executed by a test (pty_test.go) to run as medwallet.
		os.Exit(run(os.Args[1:]))
	}
	testscript.Main(m, map[string]func(){
		"medwallet": func() {
			execPeer(os.Args[1:]) // peerbin_test.go
			os.Exit(run(os.Args[1:]))
		},
	})
}

func TestScripts(t *testing.T) {
	data := testutil.SharedData(t)
	peerBin := buildPeerBinary(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("MEDWALLET_HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("MEDWALLET_KEYRING_BACKEND", "file")
			env.Setenv("MEDWALLET_PASSPHRASE", "keyring pass")
			env.Setenv("SHARED_DATA", data)
			env.Setenv("GORACE", raceOptions(os.Getenv("GORACE")))
			env.Setenv(peerBinEnv, peerBin)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":        cmdExits,
			"flipchar":     cmdFlipChar,
			"waitfile":     cmdWaitFile,
			"mknet":        cmdMkNet,
			"corruptshare": cmdCorruptShare,
			"nogrep":       cmdNoGrep,
			"mkrelays":     cmdMkRelays,
			"killedadd":    cmdKilledAdd, // gc_script_test.go
			"waitgc":       cmdWaitGC,
			"shlcert":      cmdSHLCert,   // cmd_share_test.go
			"shlclient":    cmdSHLClient, // cmd_share_test.go
		},
	})
}

// raceOptions are the race detector's options for the medwallet processes
// a script starts (under -race they are the race-built test binary): the
// caller's GORACE, with atexit_sleep_ms=0 unless it sets that itself. By
// default a race-built process that exits 0 with goroutines still running
// sleeps a second first, so that they may still report a race; a script
// runs hundreds of commands one after another, and that second each was
// over a third of this package's time under -race. The detector itself stays
// on: a race while a command runs is reported as before; only the grace
// second after the command has finished is gone.
func raceOptions(gorace string) string {
	if strings.Contains(gorace, "atexit_sleep_ms") {
		return gorace
	}
	return strings.TrimSpace(gorace + " atexit_sleep_ms=0")
}

// cmdExits runs a program and checks its exit code: exits CODE PROG ARGS...
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// cmdFlipChar replaces the byte at OFFSET (negative: from the end, before
// any trailing newline) of FILE by another base64url character.
func cmdFlipChar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipchar FILE OFFSET")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	for len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		ts.Fatalf("flipchar: offset %d outside %d bytes", off, len(b))
	}
	if b[off] == 'A' {
		b[off] = 'B'
	} else {
		b[off] = 'A'
	}
	ts.Check(os.WriteFile(path, append(b, '\n'), 0o600))
}

// cmdWaitFile waits until FILE exists and is not empty (a background
// peer writes its addresses there once it listens): waitfile FILE
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(60 * time.Second)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s did not appear", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdMkNet writes a network file from peers' address files, taking each
// file's first TCP address: mknet OUT ADDRFILE...
func cmdMkNet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mknet OUT ADDRFILE...")
	}
	var n netfile.Network
	for _, f := range args[1:] {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		for _, line := range strings.Fields(string(b)) {
			if strings.Contains(line, "/tcp/") {
				n.Peers = append(n.Peers, line)
				break
			}
		}
	}
	ts.Check(netfile.Write(ts.MkAbs(args[0]), n))
}

// cmdCorruptShare flips one byte in the first stored chunk of a stopped
// peer's share database: corruptshare DBFILE
func cmdCorruptShare(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: corruptshare DBFILE")
	}
	db, err := bolt.Open(ts.MkAbs(args[0]), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	ts.Check(err)
	defer db.Close()
	ts.Check(db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("chunks"))
		if b == nil {
			return errors.New("no chunks bucket")
		}
		k, v := b.Cursor().First()
		if k == nil {
			return errors.New("the peer holds no share")
		}
		c := append([]byte(nil), v...)
		c[len(c)/2] ^= 0x40
		return b.Put(k, c)
	}))
}

// cmdNoGrep fails if any file under the directories contains the marker:
// nogrep MARKER DIR...
func cmdNoGrep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: nogrep MARKER DIR...")
	}
	marker := []byte(args[0])
	files := 0
	for _, dir := range args[1:] {
		ts.Check(filepath.WalkDir(ts.MkAbs(dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			if bytes.Contains(b, marker) {
				ts.Fatalf("%s contains %q", path, marker)
			}
			return nil
		}))
	}
	if files == 0 {
		ts.Fatalf("nogrep: no file under %v", args[1:])
	}
	ts.Logf("nogrep: %d files checked", files)
}
