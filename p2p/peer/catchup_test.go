package peer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/serving"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

// actor is a light client: a dial-only host and its signer.
type actor struct {
	h host.Host
	s *consent.KeySigner
}

func newActor(t *testing.T) actor {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(nil)
	h, err := node.New(k, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	s, err := consent.NewKeySigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return actor{h, s}
}

func (a actor) dial(t *testing.T, p *Peer) {
	t.Helper()
	if err := a.h.Connect(context.Background(), p.Host.Peerstore().PeerInfo(p.Host.ID())); err != nil {
		t.Fatal(err)
	}
}

// enrol asks p to serve a, as a patient's wallet does before it pushes.
func (a actor) enrol(t *testing.T, p *Peer) {
	t.Helper()
	a.dial(t, p)
	if err := serving.Enrol(context.Background(), a.h, p.Host.ID(), serving.Secret{1}); err != nil {
		t.Fatal(err)
	}
}

// push pushes entries to p and fails unless every one was taken.
func (a actor) push(t *testing.T, p *Peer, es ...*consent.Entry) {
	t.Helper()
	a.dial(t, p)
	acks, err := ledgersync.Push(context.Background(), a.h, p.Host.ID(), es)
	if err != nil {
		t.Fatal(err)
	}
	for _, ack := range acks {
		if ack.Status != ledgersync.AckAccepted && ack.Status != ledgersync.AckDuplicate {
			t.Fatalf("push to %s: %v %s", p.Host.ID().ShortString(), ack.Status, ack.Reason)
		}
	}
}

// A peer restarted on its data directory after it missed a revocation,
// while strangers hold every ledger-sync stream they may have on its
// bootstrap peer (the 16 slots of the old global pool), refuses the
// revoked grantee ("busy") until it has caught up, then denies it. It
// never serves on its stale view, however long catching up takes.
func TestRestartedPeerNeverServesARevokedGrantee(t *testing.T) {
	ctx := context.Background()
	a, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dirB := t.TempDir()
	cfgB := Config{DataDir: dirB, Listen: node.LoopbackListen, Bootstrap: []string{a.TCPAddr()}}
	b, err := Start(ctx, cfgB)
	if err != nil {
		t.Fatal(err)
	}

	owner, grantee := newActor(t), newActor(t)
	ol, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	defer ol.Close()
	rec := "00112233445566778899aabbccddeeff"
	now := time.Now()
	grant, err := ol.Append(owner.s, now, consent.KindGrant, &consent.Grant{Grantee: grantee.s.ID(),
		Records: []string{rec}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", NotBefore: now.Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	// The owner's serve entry names a and b: each reads the owner's
	// feeds from the other (neither knows the other otherwise: b only
	// bootstraps from a).
	servers := []consent.ID{a.ID(), b.ID()}
	slices.Sort(servers)
	serve, err := ol.Append(owner.s, now, consent.KindServe, &consent.ServeBody{Peers: servers})
	if err != nil {
		t.Fatal(err)
	}
	owner.enrol(t, b)
	owner.push(t, b, grant, serve)
	owner.dial(t, b)
	rid, _ := vault.ParseRecordID(rec)
	data := make([]byte, vault.ShareHeaderSize)
	copy(data, "MWSH")
	data[4] = 1
	copy(data[12:28], rid[:])
	data = append(data, bytes.Repeat([]byte("ciphertext"), 1000)...)
	id, err := shares.Put(ctx, owner.h, b.Host.ID(), rec, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	nonce := 0
	get := func(p *Peer) error {
		nonce++
		req, err := consent.SignRequest(grantee.s, consent.Request{Owner: owner.s.ID(), Record: rec,
			Scope: "patient/*.rs", Purpose: "TREAT", Time: time.Now().Unix(), Nonce: fmt.Appendf(nil, "nonce-%012d", nonce)})
		if err != nil {
			return err
		}
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		rc, err := shares.Get(gctx, grantee.h, p.Host.ID(), id, req)
		if err == nil {
			rc.Close()
		}
		return err
	}
	grantee.dial(t, b)
	if err := get(b); err != nil {
		t.Fatalf("the grantee before the revocation: %v", err)
	}

	// b goes down; the owner revokes on a.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	rev, err := ol.Append(owner.s, time.Now(), consent.KindRevoke, &consent.RevokeBody{Grant: grant.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	owner.enrol(t, a)
	owner.push(t, a, grant, serve, rev)

	// Strangers take every sync stream a lets them have, and keep them
	// busy with a heads request every second, as the attack did.
	holdSync(t, a, 8)

	b, err = Start(ctx, cfgB)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	grantee.h.Peerstore().AddAddrs(b.Host.ID(), b.Host.Addrs(), time.Hour)
	busy := 0
	testutil.Eventually(t, 30*time.Second, "the restarted peer catches up and denies", func() bool {
		err := get(b)
		var denied *shares.DeniedError
		switch {
		case err == nil:
			t.Fatal("the restarted peer served the revoked grantee")
		case errors.As(err, &denied):
			return true
		case errors.Is(err, shares.ErrRemote) && strings.Contains(err.Error(), "catching up"):
			busy++
		case errors.Is(err, network.ErrResourceLimitExceeded), strings.Contains(err.Error(), "dial"):
		}
		return false
	})
	t.Logf("refused as busy %d times before it denied", busy)
}

// holdSync has n strangers take every sync stream p lets each have, and
// keep each busy with a heads request every second (the idle deadline is
// 20 s) until the test ends.
func holdSync(t *testing.T, p *Peer, n int) {
	t.Helper()
	heads := []byte{0x03, 0xa1, 0x01, 0x01} // one frame: {1: 1}, the heads of every feed
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for range n {
		s := newActor(t)
		s.dial(t, p)
		for range ledgersync.StreamsPerPeer {
			str, err := s.h.NewStream(context.Background(), p.Host.ID(), ledgersync.SyncID)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { str.Reset() })
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, str)
			}()
			go func() {
				defer wg.Done()
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for range tick.C {
					if _, err := str.Write(heads); err != nil {
						return
					}
				}
			}()
		}
	}
}

// holdPush has n strangers take every push stream p lets each have, each
// held with half a uvarint (the handler waits for the rest).
func holdPush(t *testing.T, p *Peer, n int) {
	t.Helper()
	for range n {
		s := newActor(t)
		s.dial(t, p)
		for range ledgersync.StreamsPerPeer {
			str, err := s.h.NewStream(context.Background(), p.Host.ID(), ledgersync.PushID)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { str.Reset() })
			if _, err := str.Write([]byte{0x80}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// While eight strangers hold the push and sync streams of every peer (the
// 16 slots of the old global pools), the patient's client pulls and pushes
// a revocation to its peers, and the revocation reaches a peer the client
// does not dial too (gossip and sync between peers).
func TestRevocationWhileStrangersHoldStreams(t *testing.T) {
	ctx := context.Background()
	var peers []*Peer
	var boot []string
	for i := range 4 {
		p, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen, Bootstrap: boot})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		peers = append(peers, p)
		if i == 0 {
			boot = []string{p.TCPAddr()}
		}
	}
	_, ok, _ := ed25519.GenerateKey(nil)
	owner, _ := consent.NewKeySigner(ok)
	grantee := newActor(t)
	ol, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	defer ol.Close()
	now := time.Now()
	grant, err := ol.Append(owner, now, consent.KindGrant, &consent.Grant{Grantee: grantee.s.ID(),
		Records: []string{"00112233445566778899aabbccddeeff"}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT",
		NotBefore: now.Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := ol.Append(owner, now, consent.KindRevoke, &consent.RevokeBody{Grant: grant.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	// The owner names its four serving peers (as a wallet does where it
	// places records): peers that do not know each other otherwise may
	// then sync the owner's feed between them (need to know).
	var serving4 []consent.ID
	for _, p := range peers {
		serving4 = append(serving4, consent.ID(p.Host.ID().String()))
	}
	slices.Sort(serving4)
	serve, err := ol.Append(owner, now, consent.KindServe, &consent.ServeBody{Peers: serving4})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		holdPush(t, p, 8)
		holdSync(t, p, 8)
	}
	// The client's network is the first three peers.
	var addrs []string
	for _, p := range peers[:3] {
		addrs = append(addrs, p.TCPAddr())
	}
	c, err := client.Dial(ctx, ok, addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The owner's wallet enrolled its three peers, and another device of
	// the owner's the fourth: every peer serves the owner, and the fourth
	// must get the revocation from the others.
	oh, err := node.New(ok, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	for _, p := range peers {
		if err := oh.Connect(ctx, p.Host.Peerstore().PeerInfo(p.Host.ID())); err != nil {
			t.Fatal(err)
		}
		if err := serving.Enrol(ctx, oh, p.Host.ID(), serving.Secret{1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Pull(ctx, nil); err != nil {
		t.Fatalf("pull while strangers hold sync streams: %v", err)
	}
	took, err := c.Push(ctx, []*consent.Entry{grant, rev, serve})
	if err != nil || len(took) != 3 {
		t.Fatalf("push while strangers hold push streams: %d peers took it: %v", len(took), err)
	}
	for i, p := range peers {
		testutil.Eventually(t, 30*time.Second, fmt.Sprintf("peer %d holds the revocation", i), func() bool {
			var revoked bool
			p.Ledger.View(func(v *consent.View) { revoked = v.Revoked(grant.Hash()) })
			return revoked
		})
	}
}
