package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/vault"
)

// cmdKilledAdd stores the shares of FILE on the wallet's network as
// `record add` would, and stops there, as an add killed after its shares
// were stored and before its manifest and anchor: killedadd FILE K N
// (the wallet is $MEDWALLET_HOME's, on $MEDWALLET_NETWORK).
func cmdKilledAdd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: killedadd FILE K N")
	}
	k, err := strconv.Atoi(args[1])
	ts.Check(err)
	n, err := strconv.Atoi(args[2])
	ts.Check(err)
	g := newGlobals(nil, io.Discard, io.Discard)
	g.home, g.network, g.keyringBackend = ts.Getenv("MEDWALLET_HOME"), ts.Getenv("MEDWALLET_NETWORK"), "file"
	g.passphraseFile = filepath.Join(ts.Getenv("WORK"), ".killedadd-pass")
	ts.Check(os.WriteFile(g.passphraseFile, []byte(ts.Getenv("MEDWALLET_PASSPHRASE")), 0o600))
	w, err := g.openWallet()
	ts.Check(err)
	id, err := w.Identity()
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := w.Dial(ctx)
	ts.Check(err)
	defer c.Close()
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	m, err := vault.Seal(ctx, f, c.ShareSink(), vault.SealOptions{Params: vault.Params{K: k, N: n},
		Owner: id.Signing.Public().(ed25519.PublicKey)})
	ts.Check(err)
	ts.Logf("killed add: record %s, %d shares stored, no manifest, no anchor", m.RecordID, len(m.Shares))
}

// cmdWaitGC waits (up to a minute) until the collector of the peer whose
// data directory is DIR has removed at least N items for REASON (orphan,
// superseded, expired) since it started: waitgc DIR REASON N
func cmdWaitGC(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitgc DIR REASON N")
	}
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	dir := ts.MkAbs(args[0])
	deadline := time.Now().Add(time.Minute)
	got := 0
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, peer.GCFile)); err == nil {
			var r struct {
				Collected map[string]int `json:"collected"`
			}
			if json.Unmarshal(b, &r) == nil {
				if got = r.Collected[args[1]]; got >= want {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("waitgc: %s collected %d %s items in a minute, want %d", args[0], got, args[1], want)
}
