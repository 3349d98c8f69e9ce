package attack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/wallet"
)

// floodStrangers is how many fresh identities start a recovery of Alice:
// issue 15's "a thousand free ones", scaled down (each costs a connection
// and a push per peer; the cap is reached after the first four).
const floodStrangers = 100

// TestRecoveryFlood (issue 15): many fresh identities start recoveries
// naming one patient, on two separate `medwallet peer` processes. Each
// peer keeps peer.MaxPendingRecoveries of them and refuses the rest with
// code recovery-cap (not stored, not gossiped); a stranger's second start,
// a backdated one and one asking another guardian set are refused too.
// The patient's real recovery on a new machine is refused while the cap
// is full (the CLI says why and what to do); once the patient refuses one
// of the strangers' requests from her device, it is kept, her guardian
// approves it and the new machine gets her identity back.
func TestRecoveryFlood(t *testing.T) {
	needBinary(t)
	began := time.Now()
	n := &testnet{t: t, dir: t.TempDir()}
	n.netFile = filepath.Join(n.dir, "network.json")
	ports := freePorts(t, 2)
	for i := range 2 {
		n.peers = append(n.peers, n.newPeerProc(fmt.Sprintf("p%d", i+1), ports[i], nil))
	}
	t.Cleanup(n.killAll)
	if err := netfile.Write(n.netFile, netfile.Network{Peers: []string{n.peers[0].addr, n.peers[1].addr}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range n.peers {
		n.start(p)
	}
	for _, p := range n.peers {
		n.waitUp(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Alice names Carol her guardian (any 1 of 1).
	alice := n.newUser(ctx, "Alice", "patient")
	carol := n.newUser(ctx, "Carol", "patient")
	n.mustRun(ctx, alice, "contact", "add", "Carol", strings.TrimSpace(n.mustRun(ctx, carol, "whoami", "--card")))
	n.mustRun(ctx, carol, "contact", "add", "Alice", strings.TrimSpace(n.mustRun(ctx, alice, "whoami", "--card")))
	n.mustRun(ctx, alice, "guardian", "setup", "--threshold", "1", "--guardians", "Carol")
	var set struct {
		Set string `json:"set"`
	}
	if err := json.Unmarshal([]byte(n.mustRun(ctx, alice, "guardian", "show", "--json")), &set); err != nil {
		t.Fatal(err)
	}
	// Anyone who knows Alice's ID reads the set from her sealed identity
	// (the new machine must): the attacker asks the right set.
	setID, err := consent.ParseHash(set.Set)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("set up in %v", time.Since(began).Round(time.Millisecond))

	start := func(s *stranger, at time.Time, sid consent.Hash) *consent.Entry {
		a, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		return s.next(at.Unix(), consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryStart, Owner: alice.id,
			Set: sid, Recipient: a.Recipient().String(), Delay: 3600})
	}
	// push pushes e as s to both peers and returns the acks' codes
	// ("accepted" for an entry taken).
	push := func(s *stranger, e *consent.Entry) []string {
		var out []string
		for _, p := range n.peers {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			acks, err := ledgersync.Push(pctx, s.host, p.id, []*consent.Entry{e})
			cancel()
			if err != nil && !errors.Is(err, ledgersync.ErrNotAuthorised) {
				t.Fatalf("push to %s: %v", p.name, err)
			}
			for _, a := range acks {
				if a.Status == ledgersync.AckAccepted || a.Status == ledgersync.AckDuplicate {
					out = append(out, "accepted")
				} else {
					out = append(out, a.Code)
				}
			}
		}
		return out
	}

	// The flood, one stranger after another so that the first four are
	// the ones kept on both peers.
	flood := time.Now()
	var kept []*consent.Entry
	codes := map[string]int{}
	for i := range floodStrangers {
		s, err := newStranger(n)
		if err != nil {
			t.Fatal(err)
		}
		e := start(s, time.Now(), setID)
		got := push(s, e)
		for _, c := range got {
			codes[c]++
		}
		want := ledgersync.CodeRecoveryCap
		if i < peer.MaxPendingRecoveries {
			want = "accepted"
			kept = append(kept, e)
		}
		if got[0] != want || got[1] != want {
			t.Fatalf("stranger %d: %v, want %s on both peers", i, got, want)
		}
		if i == 0 {
			// A second start by a stranger with one pending.
			if got := push(s, start(s, time.Now(), setID)); got[0] != ledgersync.CodeRecoveryCap {
				t.Fatalf("a stranger's second start: %v, want %s", got, ledgersync.CodeRecoveryCap)
			}
		}
		s.host.Close()
	}
	// Refused outright, whatever the cap: a start asking another set, and
	// one dated so far back that it would count for less than
	// peer.RecoveryMinHold.
	for what, mk := range map[string]func(*stranger) *consent.Entry{
		"another set": func(s *stranger) *consent.Entry { return start(s, time.Now(), consent.HashBytes([]byte("old set"))) },
		"backdated":   func(s *stranger) *consent.Entry { return start(s, time.Now().Add(-20*time.Hour), setID) },
	} {
		s, err := newStranger(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := push(s, mk(s)); got[0] != ledgersync.CodeNotAuthorised || got[1] != ledgersync.CodeNotAuthorised {
			t.Fatalf("a start (%s): %v, want %s", what, got, ledgersync.CodeNotAuthorised)
		}
		s.host.Close()
	}
	t.Logf("%d strangers' starts on 2 peers in %v: %v", floodStrangers, time.Since(flood).Round(time.Millisecond), codes)

	// The real recovery, while the cap is full: refused, and the CLI says
	// why and what to do.
	fresh := &user{name: "new machine", home: filepath.Join(n.dir, "new")}
	out, err := n.run(ctx, fresh, "recover", "--start", string(alice.id))
	if err == nil || !strings.Contains(err.Error(), "no peer took the recovery request") || !strings.Contains(err.Error(), "recover --refuse") {
		t.Fatalf("the real recovery with the cap full: %v, want refused with recovery-cap\n%s", err, out)
	}
	// Alice's device sees the strangers' requests and refuses one: a
	// slot frees, and the new machine's request is kept.
	if !strings.Contains(n.mustRun(ctx, alice, "guardian", "requests"), wallet.RequestCode(kept[0].Hash())) {
		t.Fatal("Alice's device does not list the strangers' requests")
	}
	n.mustRun(ctx, alice, "recover", "--refuse", wallet.RequestCode(kept[0].Hash()))
	code := strings.TrimSpace(n.mustRun(ctx, fresh, "recover", "--start", string(alice.id)))
	n.mustRun(ctx, carol, "guardian", "approve", code)
	n.mustRun(ctx, fresh, "recover", "--finish")
	var who struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(n.mustRun(ctx, fresh, "whoami", "--json")), &who); err != nil || consent.ID(who.ID) != alice.id {
		t.Fatalf("the new machine is %q (%v), want Alice %s", who.ID, err, alice.id)
	}

	// Each peer holds the four strangers' starts it took and the real
	// one, nothing of the rest.
	for _, p := range n.peers {
		p.stop()
		starts := 0
		for _, e := range readLedger(t, p) {
			if b, err := e.DecodedBody(); err == nil && e.Kind == consent.KindRecovery && b.(*consent.RecoveryBody).Op == consent.RecoveryStart {
				starts++
			}
		}
		if starts != peer.MaxPendingRecoveries+1 {
			t.Errorf("%s holds %d recovery starts, want the %d strangers' it took and the real one", p.name, starts, peer.MaxPendingRecoveries)
		}
	}
	t.Logf("whole test %v", time.Since(began).Round(time.Millisecond))
}
