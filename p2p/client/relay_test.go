package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

// relayNet is a relay, a peer behind it (private: it reaches nobody
// directly but through the relay, and announces no direct address), and
// a public peer.
type relayNet struct {
	relay   lpeer.AddrInfo
	private *peer.Peer
	public  *peer.Peer
	// circuit is the private peer's relay address, with /p2p/ID.
	circuit string
	// direct is the private peer's loopback address, for setting up.
	direct string
}

// startRelayNet starts a relay whose budget per relayed connection is
// budget bytes, a private peer with a reservation on it, and a public peer.
func startRelayNet(t *testing.T, budget int64) *relayNet {
	t.Helper()
	ctx := context.Background()
	_, rkey, _ := ed25519.GenerateKey(nil)
	rh, err := node.New(rkey, node.Options{Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Reach: node.Reach{RelayService: true, RelayBudget: node.RelayBudget{Bytes: budget, Duration: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rh.Close() })
	n := &relayNet{relay: lpeer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}}
	dir := t.TempDir()
	// The private peer listens on 127.0.0.2 and never announces it: the
	// client learns no direct address of it, not even through identify.
	n.private, err = peer.Start(ctx, peer.Config{DataDir: filepath.Join(dir, "private"), Listen: []string{"/ip4/127.0.0.2/tcp/0"},
		Reach: node.Reach{Relays: []lpeer.AddrInfo{n.relay}, Reachability: network.ReachabilityPrivate,
			NoAnnounce: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.2")}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.private.Close() })
	testutil.Eventually(t, 30*time.Second, "the private peer announces its relay address", func() bool {
		for _, a := range n.private.Addrs() {
			if strings.Contains(a, "/p2p-circuit/") {
				n.circuit = a
				return true
			}
		}
		return false
	})
	for _, a := range n.private.Addrs() {
		if !strings.Contains(a, "/p2p-circuit/") {
			t.Fatalf("the private peer announces %s, a direct address", a)
		}
	}
	for _, a := range n.private.Host.Network().ListenAddresses() {
		if !node.IsRelayed(a) {
			n.direct = a.String() + "/p2p/" + n.private.Host.ID().String()
		}
	}
	n.public, err = peer.Start(ctx, peer.Config{DataDir: filepath.Join(dir, "public"), Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.public.Close() })
	return n
}

// seal stores a record of size random bytes with k 1 of n 2 through c (one
// share on each peer) and returns the manifest and the share on peer p.
func seal(t *testing.T, c *Client, key ed25519.PrivateKey, size int, p lpeer.ID) (*vault.Manifest, vault.ShareID) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	m, err := vault.Seal(context.Background(), bytes.NewReader(data), c.ShareSink(), vault.SealOptions{
		Params: vault.Params{K: 1, N: 2, StripeSize: 1 << 20}, Owner: key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Shares {
		if hs := c.Holders(context.Background(), s.ID); len(hs) == 1 && hs[0] == p {
			return m, s.ID
		}
	}
	t.Fatalf("no share of the record on %s", p)
	return nil, vault.ShareID{}
}

// TestThroughRelay: a client that knows a private peer only by its relay
// address reaches it on a relayed connection; ledger push, ledger sync
// and share has run over it; a share get waits for a direct connection,
// then runs over the relay within its budget, and one that needs more
// than the budget fails with a *shares.RelayError.
func TestThroughRelay(t *testing.T) {
	defer func(d time.Duration) { shares.DirectWait = d }(shares.DirectWait)
	defer func(d time.Duration) { DirectWait = d }(DirectWait)
	shares.DirectWait, DirectWait = 2*time.Second, 300*time.Millisecond
	const budget = 256 << 10
	n := startRelayNet(t, budget)
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	signer, _ := consent.NewKeySigner(key)
	privID := n.private.Host.ID()

	// Set up directly: a small record and a large one, a share of each
	// on the private peer.
	setup, err := Dial(ctx, key, []string{n.direct, n.public.TCPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Require(2); err != nil {
		t.Fatal(err)
	}
	small, smallShare := seal(t, setup, key, 16<<10, privID)
	large, largeShare := seal(t, setup, key, 1<<20, privID)
	setup.Close()

	// Through the relay only.
	c, err := Dial(ctx, key, []string{n.circuit})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Require(1); err != nil {
		t.Fatal(err)
	}
	if cs := c.Conns(privID); len(cs) != 1 || cs[0].Kind != "relayed" || cs[0].Transport != "tcp" {
		t.Fatalf("connections %+v, want one relayed over tcp", cs)
	}
	if h := c.Health(ctx); len(h) != 1 || !h[0].Reachable || len(h[0].Conns) != 1 || h[0].Conns[0].Kind != "relayed" {
		t.Fatalf("health %+v", h)
	}

	// Ledger push over the relay.
	gl, _ := consent.OpenLedger(consent.NewMemStore())
	_, grantee, _ := ed25519.GenerateKey(nil)
	gs, _ := consent.NewKeySigner(grantee)
	e, err := gl.Append(signer, time.Now(), consent.KindGrant, &consent.Grant{
		Grantee: gs.ID(), Records: []string{small.RecordID.String()}, Scopes: []string{"patient/*.rs"},
		Purpose: "TREAT", NotBefore: time.Now().Add(-time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Push(ctx, []*consent.Entry{e}); err != nil || len(ok) != 1 {
		t.Fatalf("push through the relay: %v, %v", ok, err)
	}
	// Ledger sync over the relay.
	got, err := c.Pull(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContainsEntry(got, e) {
		t.Fatalf("pulled %d entries through the relay, not the one pushed", len(got))
	}
	// Share has over the relay.
	if hs := c.Holders(ctx, largeShare); len(hs) != 1 || hs[0] != privID {
		t.Fatalf("holders %v through the relay", hs)
	}

	own := Access{Owner: signer.ID(), Scope: "patient/*.rs", Purpose: "TREAT"}
	// A small share fits the budget: no direct connection comes on
	// loopback, so the get falls back to the relayed one.
	own.Record = small.RecordID.String()
	rc, err := c.Getter(own).Get(ctx, smallShare)
	if err != nil {
		t.Fatalf("get of a small share through the relay: %v", err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("reading a small share through the relay: %v", err)
	}
	rc.Close()
	// A large one does not, and says why.
	own.Record = large.RecordID.String()
	start := time.Now()
	rc, err = c.Getter(own).Get(ctx, largeShare)
	if took := time.Since(start); took >= shares.DirectWait {
		t.Errorf("the second get waited %v for a direct connection on a relayed one already waited on", took)
	}
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
	}
	var re *shares.RelayError
	if !errors.Is(err, shares.ErrRelayOnly) || !errors.As(err, &re) || re.Peer != privID {
		t.Fatalf("get of a share larger than the relay's budget: %v, want a *shares.RelayError", err)
	}
}

func slicesContainsEntry(es []*consent.Entry, e *consent.Entry) bool {
	for _, x := range es {
		if x.Hash() == e.Hash() {
			return true
		}
	}
	return false
}
