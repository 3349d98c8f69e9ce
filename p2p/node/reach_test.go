package node_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/medwallet/medwallet/p2p/node"
)

const echoID protocol.ID = "/medwallet-test/echo/1.0.0"

// newHost starts a host with o on a fresh key; it echoes echoID streams.
func newHost(t *testing.T, o node.Options) host.Host {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := node.New(key, o)
	if err != nil {
		t.Fatal(err)
	}
	h.SetStreamHandler(echoID, func(s network.Stream) {
		if _, err := io.Copy(s, s); err != nil {
			s.Reset()
			return
		}
		s.Close()
	})
	t.Cleanup(func() { h.Close() })
	return h
}

// waitAddr waits until h announces an address that contains sub, and
// returns it.
func waitAddr(t *testing.T, h host.Host, sub string) ma.Multiaddr {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		for _, a := range h.Addrs() {
			if strings.Contains(a.String(), sub) {
				return a
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no %s address after 30 s: %v", sub, h.Addrs())
		}
	}
}

// relayed starts a relay with budget b, a private peer that holds a
// reservation on it, and a light client; it returns the client, the
// private peer and its relay address.
func relayed(t *testing.T, b node.RelayBudget) (client, private host.Host, circuit ma.Multiaddr) {
	t.Helper()
	relay := newHost(t, node.Options{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Reach: node.Reach{RelayService: true, RelayBudget: b}})
	relayInfo := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	start := time.Now()
	private = newHost(t, node.Options{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Reach: node.Reach{
		Relays: []peer.AddrInfo{relayInfo}, Reachability: network.ReachabilityPrivate,
	}})
	circuit = waitAddr(t, private, "/p2p-circuit")
	t.Logf("a private host announced its relay address %v after it started", time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(circuit.String(), relay.Addrs()[0].String()+"/p2p/"+relay.ID().String()+"/p2p-circuit") {
		t.Fatalf("relay address %s is not through the relay %s", circuit, relayInfo)
	}
	client = newHost(t, node.Options{})
	return client, private, circuit
}

// TestRelayedConnection: a private peer reserves a slot on a relay and
// announces its relay address; a client that knows only that address
// reaches it, on a connection that says it is relayed; a stream opened
// without allowing a limited connection is refused; the relay resets a
// connection that crosses its data budget.
func TestRelayedConnection(t *testing.T) {
	const budget = 64 << 10
	client, private, circuit := relayed(t, node.RelayBudget{Bytes: budget, Duration: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lctx := network.WithAllowLimitedConn(ctx, "test")
	if err := client.Connect(lctx, peer.AddrInfo{ID: private.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	conns := client.Network().ConnsToPeer(private.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections to the private peer, want 1", len(conns))
	}
	if kind, tr := node.ConnKind(conns[0]); kind != "relayed" || tr != "tcp" {
		t.Fatalf("connection is %s over %s, want relayed over tcp", kind, tr)
	}
	// Without leave to use a limited connection, the stream waits for a
	// direct one (hole punching cannot happen on loopback) and fails.
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	_, err := client.NewStream(network.WithDialPeerTimeout(sctx, 500*time.Millisecond), private.ID(), echoID)
	scancel()
	if err == nil {
		t.Fatal("a stream over a relayed connection was opened without leave")
	}
	// Control traffic, with leave, goes through.
	s, err := client.NewStream(lctx, private.ID(), echoID)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("ledger push")
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(s, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
	// More than the budget is cut.
	big := make([]byte, 4*budget)
	go func() {
		_, _ = s.Write(big)
		_ = s.CloseWrite()
	}()
	n, err := io.Copy(io.Discard, s)
	if err == nil || n >= int64(len(big)) {
		t.Fatalf("read %d bytes of %d through a relay with a budget of %d, err %v", n, len(big), budget, err)
	}
}

// TestNoAnnounce: --no-announce drops addresses by prefix and by CIDR,
// --announce adds one.
func TestAnnounce(t *testing.T) {
	public := ma.StringCast("/ip4/198.51.100.9/tcp/4001")
	h := newHost(t, node.Options{Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/udp/0/quic-v1"}, Reach: node.Reach{
		Announce:   []ma.Multiaddr{public.Encapsulate(ma.StringCast("/p2p/12D3KooWFuPHHvpowyVT5GASzZdv3zGLdSut6RU9HKdZryRTKzoj"))},
		NoAnnounce: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.2"), ma.StringCast("/ip4/10.0.0.0/ipcidr/8")},
	}})
	var tcp, pub int
	for _, a := range h.Addrs() {
		switch {
		case strings.HasPrefix(a.String(), "/ip4/127.0.0.2"):
			t.Fatalf("%s announced despite --no-announce", a)
		case a.Equal(public):
			pub++
		case strings.HasPrefix(a.String(), "/ip4/127.0.0.1/tcp/"):
			tcp++
		}
	}
	if tcp != 1 || pub != 1 {
		t.Fatalf("addresses %v: want the TCP listen address and %s", h.Addrs(), public)
	}
	h2 := newHost(t, node.Options{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Reach: node.Reach{
		NoAnnounce: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.0/ipcidr/8")},
	}})
	if len(h2.Addrs()) != 0 {
		t.Fatalf("addresses %v inside a no-announce CIDR", h2.Addrs())
	}
}

// TestRelayBudgetDuration: the relay resets a relayed connection that
// outlives its budget's duration, however little it carried.
func TestRelayBudgetDuration(t *testing.T) {
	client, private, circuit := relayed(t, node.RelayBudget{Bytes: 1 << 20, Duration: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lctx := network.WithAllowLimitedConn(ctx, "test")
	if err := client.Connect(lctx, peer.AddrInfo{ID: private.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	s, err := client.NewStream(lctx, private.ID(), echoID)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The echo holds the stream open until the relay ends it, at 1 s.
	_, err = io.Copy(io.Discard, s)
	took := time.Since(start)
	if err == nil || took < 900*time.Millisecond || took > 10*time.Second {
		t.Fatalf("the relayed stream ended after %v (err %v), want a reset at the budget's 1 s", took, err)
	}
}
