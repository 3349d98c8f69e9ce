package peer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/serving"
)

func namedSigner(t *testing.T, name string) *consent.KeySigner {
	t.Helper()
	seed := sha256.Sum256([]byte("peer test key: " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// An equivocation a peer detects is remembered: the peer logs the proof on
// its own feed, so after a restart on the same data directory it still
// refuses the author's entries and honours none of its grants, and a
// second peer that only received the proof does the same.
func TestEquivocationSurvivesRestartAndSpreads(t *testing.T) {
	ctx := context.Background()
	dirA := t.TempDir()
	a, err := Start(ctx, Config{DataDir: dirA, Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()

	alice, bob := namedSigner(t, "alice"), namedSigner(t, "bob")
	const rec = "00112233445566778899aabbccddeeff"
	now := time.Now()
	l, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	card, err := l.Append(alice, now, consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1testrecipient", Role: "patient"})
	if err != nil {
		t.Fatal(err)
	}
	grant, err := l.Append(alice, now, consent.KindGrant, &consent.Grant{Grantee: bob.ID(), Records: []string{rec},
		Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: now.Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	// Another entry at seq 2: alice equivocates.
	fork, err := consent.NewEntry(alice, card.Head(), now.Add(time.Second), consent.KindAnchor,
		&consent.AnchorBody{Record: rec, Manifest: consent.HashBytes([]byte("another manifest"))})
	if err != nil {
		t.Fatal(err)
	}
	// And what alice signs after it, on the first branch.
	next, err := l.Append(alice, now.Add(2*time.Second), consent.KindAnchor,
		&consent.AnchorBody{Record: rec, Manifest: consent.HashBytes([]byte("manifest"))})
	if err != nil {
		t.Fatal(err)
	}

	// The client is alice's own: a peer keeps the feeds of the patients
	// it serves, pushed by them after they enrolled it.
	aliceSeed := sha256.Sum256([]byte("peer test key: alice"))
	client, err := node.New(ed25519.NewKeyFromSeed(aliceSeed[:]), node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	push := func(p *Peer, e *consent.Entry) ledgersync.Ack {
		t.Helper()
		if err := client.Connect(ctx, p.Host.Peerstore().PeerInfo(p.Host.ID())); err != nil {
			t.Fatal(err)
		}
		if err := serving.Enrol(ctx, client, p.Host.ID(), serving.Secret{1}); err != nil {
			t.Fatal(err)
		}
		acks, err := ledgersync.Push(ctx, client, p.Host.ID(), []*consent.Entry{e})
		if err != nil {
			t.Fatal(err)
		}
		return acks[0]
	}
	decide := func(p *Peer) consent.Decision {
		t.Helper()
		req, err := consent.SignRequest(bob, consent.Request{Owner: alice.ID(), Record: rec, Scope: "patient/Observation.rs",
			Purpose: "TREAT", Time: time.Now().Unix(), Nonce: fmt.Appendf(nil, "nonce-%d", time.Now().UnixNano())})
		if err != nil {
			t.Fatal(err)
		}
		var d consent.Decision
		p.Ledger.View(func(v *consent.View) { d = consent.Decide(v, req, time.Now()) })
		return d
	}
	refused := func(p *Peer, name string) {
		t.Helper()
		ack := push(p, next)
		if ack.Status != ledgersync.AckRejected || !strings.Contains(ack.Reason, "equivocated") {
			t.Errorf("%s: alice's next entry: %v %q, want rejected as by an equivocating author", name, ack.Status, ack.Reason)
		}
		var d consent.Decision
		if d = decide(p); d.Allow || d.Reason != consent.ReasonEquivocating {
			t.Errorf("%s: bob's request under alice's grant: %+v, want denied %s", name, d, consent.ReasonEquivocating)
		}
	}

	for _, e := range []*consent.Entry{card, grant} {
		if ack := push(a, e); ack.Status != ledgersync.AckAccepted {
			t.Fatalf("push %d: %v %s", e.Seq, ack.Status, ack.Reason)
		}
	}
	if d := decide(a); !d.Allow {
		t.Fatalf("before the equivocation: %+v, want allowed", d)
	}
	if ack := push(a, fork); ack.Status != ledgersync.AckRejected {
		t.Fatalf("the fork: %v, want rejected", ack.Status)
	}
	logged := func(p *Peer) bool {
		var ok bool
		p.Ledger.View(func(v *consent.View) {
			for _, pl := range v.ProofLogs(alice.ID()) {
				ok = ok || pl.Logger == a.ID()
			}
		})
		return ok
	}
	testutil.Eventually(t, 10*time.Second, "a logs the proof on its own feed", func() bool { return logged(a) })
	refused(a, "a")

	// Restart a on the same data directory.
	aID := a.ID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a, err = Start(ctx, Config{DataDir: dirA, Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	if !logged(a) {
		t.Fatal("the proof entry did not survive the restart")
	}
	refused(a, "a after a restart")
	var proofs int
	a.Ledger.View(func(v *consent.View) { proofs = len(v.ProofLogs(alice.ID())) })
	if proofs != 1 {
		t.Errorf("%d proof entries against alice, want 1 (once per author)", proofs)
	}

	// b never sees the fork: it holds alice's grant, then learns of the
	// equivocation from a's proof alone.
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, e := range []*consent.Entry{card, grant} {
		if ack := push(b, e); ack.Status != ledgersync.AckAccepted {
			t.Fatalf("push %d to b: %v %s", e.Seq, ack.Status, ack.Reason)
		}
	}
	if d := decide(b); !d.Allow {
		t.Fatalf("b before the proof: %+v, want allowed", d)
	}
	if err := b.Host.Connect(ctx, a.Host.Peerstore().PeerInfo(a.Host.ID())); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "b syncs a's proof", func() bool {
		var ok bool
		b.Ledger.View(func(v *consent.View) { ok = v.Equivocating(alice.ID()) })
		return ok
	})
	refused(b, "b")
	var logs []consent.ProofLog
	b.Ledger.View(func(v *consent.View) { logs = v.ProofLogs(alice.ID()) })
	if len(logs) != 1 || logs[0].Logger != aID {
		t.Errorf("b holds proof entries %+v, want a's only", logs)
	}
}
