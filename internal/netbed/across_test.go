//go:build linux

package netbed_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/netbed"
)

// natWorld is the topology of the NAT tests: a relay and a public peer on
// the internet; three homes, each a private peer behind its NAT (home1
// and home2 cone, home3 symmetric); a patient on a public address and a
// clinician behind the clinic's cone NAT.
//
// The patient is public so that setting up (record add, grant) does not
// depend on hole punching, and a broken hole punch fails the assertion
// about it rather than the setup; her connections to the home peers take
// DCUtR's other path, the home peer dialing her back directly. The
// clinician is behind NAT so that his connections to the home peers can
// only become direct by hole punching, and `medwallet peers` run by him
// shows whether it did.
type natWorld struct {
	*world
	relay, pub   *mwPeer
	homes        []*mwPeer // h1, h2 (cone), h3 (symmetric)
	alice, bob   *user
	circuit      map[*mwPeer]string // each home peer's relay address
	reachedRelay map[*mwPeer]time.Duration
}

func newNATWorld(ctx context.Context, t testing.TB) *natWorld {
	t.Helper()
	w := &natWorld{world: newWorld(t), circuit: map[*mwPeer]string{}, reachedRelay: map[*mwPeer]time.Duration{}}
	b := w.bed
	// The relay's budget per relayed connection is the operator's: 4 MiB
	// carries the control traffic and a 1 MiB share, not a 6 MiB one.
	w.relay = w.newPeer(b.Public("relay"), "relay", "--relay-service", "--relay-budget-mib", strconv.Itoa(relayBudgetMiB))
	w.pub = w.newPeer(b.Public("pub"), "pub", "--bootstrap", w.relay.direct()[0])
	for i, kind := range []netbed.NATKind{netbed.Cone, netbed.Cone, netbed.Symmetric} {
		nat := b.NAT(fmt.Sprintf("home%d", i+1), kind)
		// The home peers know they are behind NAT (the operator says
		// so): they reserve a slot on the relay at once rather than
		// after AutoNAT has made up its mind.
		h := w.newPeer(b.Behind(nat, fmt.Sprintf("h%d", i+1)), fmt.Sprintf("h%d", i+1),
			"--bootstrap", w.relay.direct()[0], "--bootstrap", w.pub.direct()[0],
			"--relay", w.relay.direct()[0], "--reachability", "private")
		w.homes = append(w.homes, h)
	}
	// The relay first: a home peer that finds it down retries only after
	// AutoRelay's back-off (about 10 s).
	for _, p := range []*mwPeer{w.relay, w.pub} {
		w.start(p)
	}
	for _, p := range []*mwPeer{w.relay, w.pub} {
		w.waitUp(p)
	}
	for _, h := range w.homes {
		w.start(h)
	}
	for _, h := range w.homes {
		w.circuit[h] = w.waitAddr(h, 60*time.Second, "relay address", isCircuit)
		w.reachedRelay[h] = time.Since(h.started)
	}
	clinic := b.NAT("clinic", netbed.Cone)
	w.alice = w.newUser(ctx, b.Public("alice"), "Alice", "patient")
	w.bob = w.newUser(ctx, b.Behind(clinic, "bob"), "Bob", "clinician")
	w.exchangeCards(ctx, w.alice, w.bob)
	return w
}

// relayBudgetMiB is the relay's --relay-budget-mib.
const relayBudgetMiB = 4

func isCircuit(a string) bool { return strings.Contains(a, "/p2p-circuit/") }

// network lists peers at their relay addresses, with the relay.
func (w *natWorld) network(peers ...*mwPeer) network {
	n := network{Relays: w.relay.direct()}
	for _, p := range peers {
		n.Peers = append(n.Peers, w.circuit[p])
	}
	return n
}

// peerConns is what `medwallet peers --json` says of one peer.
type peerConns struct {
	ID        string `json:"id"`
	Reachable bool   `json:"reachable"`
	Conns     []struct {
		Kind      string `json:"kind"`
		Transport string `json:"transport"`
		Addr      string `json:"addr"`
	} `json:"conns"`
}

// kinds runs `medwallet peers --json` as u with network n and returns,
// per peer ID, the kinds of its connections ("direct", "relayed").
func (w *natWorld) kinds(ctx context.Context, u *user, n network) map[string][]string {
	t := w.t
	t.Helper()
	w.setNetwork(u, n)
	out := w.mustRun(ctx, u, "peers", "--json")
	var ps []peerConns
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("peers --json: %v\n%s", err, out)
	}
	res := map[string][]string{}
	for _, p := range ps {
		if !p.Reachable {
			t.Fatalf("peers --json: %s unreachable\n%s", p.ID, out)
		}
		for _, c := range p.Conns {
			res[p.ID] = append(res[p.ID], c.Kind)
		}
	}
	return res
}

func has(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestAcrossNATs is the test bed: shares on the private home
// peers, the clinician's import from them byte-identical over
// hole-punched connections, a revocation that reaches every home peer
// (each then denies him), and behind the symmetric NAT a connection that
// stays relayed and still carries the control traffic.
func TestAcrossNATs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	w := newNATWorld(ctx, t)
	h1, h2, h3 := w.homes[0], w.homes[1], w.homes[2]
	for _, h := range w.homes {
		t.Logf("%s (%s NAT) reachable through the relay %v after its start", h.name, h.host.NAT.Kind, w.reachedRelay[h].Round(time.Millisecond))
	}

	// the patient places a record on the three home peers
	data, file := w.randomFile("scan.bin", 1<<20)
	w.setNetwork(w.alice, w.network(h1, h2, h3))
	rec := w.mustRun(ctx, w.alice, "record", "add", file, "--k", "1", "--n", "3")
	grant := w.mustRun(ctx, w.alice, "grant", "--to", "Bob", "--record", rec, "--scope", "patient/*.rs", "--purpose", "TREAT")

	// the clinician's connections to the cone homes become direct by hole
	// punching; the one to the symmetric home stays relayed
	start := time.Now()
	k := w.kinds(ctx, w.bob, w.network(h1, h2))
	t.Logf("peers (clinician to h1, h2) in %v: %v", time.Since(start).Round(time.Millisecond), k)
	for _, h := range []*mwPeer{h1, h2} {
		if !has(k[h.id], "direct") {
			t.Errorf("the clinician has no direct connection to %s behind a cone NAT: %v", h.name, k[h.id])
		}
	}
	k = w.kinds(ctx, w.bob, w.network(h3))
	if has(k[h3.id], "direct") || !has(k[h3.id], "relayed") {
		t.Errorf("the clinician's connections to %s behind the symmetric NAT: %v, want relayed only", h3.name, k[h3.id])
	}

	// his import from the cone homes, byte-identical
	w.setNetwork(w.bob, w.network(h1, h2))
	out := filepath.Join(w.dir, "import")
	w.mustRun(ctx, w.bob, "import", grant, "--out", out)
	got, err := os.ReadFile(filepath.Join(out, rec+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the imported record differs from the patient's")
	}
	// and from the symmetric home alone: ledger, manifest and the share
	// over the relay (1 MiB, within its budget)
	w.setNetwork(w.bob, w.network(h3))
	out3 := filepath.Join(w.dir, "import3")
	w.mustRun(ctx, w.bob, "import", grant, "--out", out3)
	if got, err := os.ReadFile(filepath.Join(out3, rec+".bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("import through the relay from %s: %v", h3.name, err)
	}

	// a share larger than the relay's budget: from the symmetric home it
	// fails with the relay's own error; from a cone home it comes over
	// the hole-punched connection
	big, bigFile := w.randomFile("big.bin", (relayBudgetMiB+2)<<20)
	w.setNetwork(w.alice, w.network(h1, h3))
	bigRec := w.mustRun(ctx, w.alice, "record", "add", bigFile, "--k", "1", "--n", "2")
	bigGrant := w.mustRun(ctx, w.alice, "grant", "--to", "Bob", "--record", bigRec, "--scope", "patient/*.rs", "--purpose", "TREAT")
	w.setNetwork(w.bob, w.network(h3))
	_, err = w.run(ctx, w.bob, "import", bigGrant, "--out", filepath.Join(w.dir, "big3"))
	var ee *exitError
	if !errors.As(err, &ee) || !strings.Contains(ee.stderr, "only through") {
		t.Errorf("import of %d MiB through a relay with a %d MiB budget: %v\nwant the relay's own error (shares.RelayError, ErrRelayOnly and its hint), not a share reported truncated", len(big)>>20, relayBudgetMiB, err)
	}
	w.setNetwork(w.bob, w.network(h1))
	w.mustRun(ctx, w.bob, "import", bigGrant, "--out", filepath.Join(w.dir, "big1"))
	if got, err := os.ReadFile(filepath.Join(w.dir, "big1", bigRec+".bin")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("import of %d MiB over the hole-punched connection: %v", len(big)>>20, err)
	}

	// the revocation reaches every home peer: each denies him
	w.setNetwork(w.alice, w.network(h1, h2, h3))
	w.mustRun(ctx, w.alice, "revoke", grant)
	revoked := time.Now()
	for _, h := range w.homes {
		w.setNetwork(w.bob, w.network(h))
		tries := w.waitDenied(ctx, w.bob, grant)
		t.Logf("%s denies the clinician (import %d, %v after the revoke returned)", h.name, tries, time.Since(revoked).Round(time.Millisecond))
	}
}

// randomFile writes size random bytes to a file of the world.
func (w *world) randomFile(name string, size int) ([]byte, string) {
	w.t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	file := filepath.Join(w.dir, name)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		w.t.Fatal(err)
	}
	return data, file
}

// waitDenied has u import the grant until the peers of u's network deny
// it (exit 4), within a minute, and returns how many imports it took.
func (w *natWorld) waitDenied(ctx context.Context, u *user, grant string) int {
	t := w.t
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		_, err := w.run(ctx, u, "import", grant, "--out", filepath.Join(w.dir, fmt.Sprintf("late%d", i)))
		var ee *exitError
		switch {
		case errors.As(err, &ee) && ee.code == 4:
			return i + 1
		case err == nil:
			t.Fatalf("an import after the revocation succeeded")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no denial within a minute of the revocation: %v", err)
		}
	}
}
