package node_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/shares"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The tests run real hosts on loopback. All of 127.0.0.0/8 is local on
// Linux, so a test host that listens on 127.0.0.x also dials from it (the
// TCP transport reuses its listening port): that is how strangers and
// honest parties get source addresses of their own. 127.0.0.1 is this
// machine and is not limited per IP, so no party in these tests uses it.

// held counts the streams a target's handlers have accepted and not yet
// seen end.
type target struct {
	host.Host
	held atomic.Int64
}

// newTarget starts a peer host with handlers for the protocols under test:
// each reads one byte, answers one byte and holds the stream until the
// remote closes it.
func newTarget(t *testing.T, o node.Options) *target {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	if o.Listen == nil {
		o.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := node.New(key, o)
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{Host: h}
	hold := func(s network.Stream) {
		defer s.Close()
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err != nil {
			s.Reset()
			return
		}
		if _, err := s.Write(b[:]); err != nil {
			s.Reset()
			return
		}
		tg.held.Add(1)
		defer tg.held.Add(-1)
		_, _ = io.Copy(io.Discard, s)
	}
	for _, id := range []protocol.ID{shares.ID, ledgersync.SyncID, ledgersync.PushID} {
		h.SetStreamHandler(id, hold)
	}
	t.Cleanup(func() { h.Close() })
	return tg
}

// party is a remote host that listens (and so dials) from ip, with a
// fresh identity and no limits of its own.
func party(t *testing.T, ip string) host.Host {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	sk, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(
		libp2p.Identity(sk),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// known returns h as a known peer: its ID and the address it listens on.
func known(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// hold opens a stream of proto from h to tg and waits for the handler's
// answer; it returns the stream if the target accepted it, nil if the
// target refused or reset it.
func hold(ctx context.Context, h host.Host, tg *target, proto protocol.ID) network.Stream {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, tg.ID(), proto)
	if err != nil {
		return nil
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := s.Write(b[:]); err != nil {
		s.Reset()
		return nil
	}
	if _, err := io.ReadFull(s, b[:]); err != nil {
		s.Reset()
		return nil
	}
	_ = s.SetDeadline(time.Time{})
	return s
}

// holdMany holds up to n streams of proto and returns how many the target
// accepted; it stops at the first refusal.
func holdMany(ctx context.Context, h host.Host, tg *target, proto protocol.ID, n int) (got int) {
	for range n {
		if hold(ctx, h, tg, proto) == nil {
			return got
		}
		got++
	}
	return got
}

// connect dials tg from h and checks that the target sees the connection
// coming from ip.
func connect(ctx context.Context, t *testing.T, h host.Host, tg *target, ip string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.Connect(cctx, peer.AddrInfo{ID: tg.ID(), Addrs: tg.Addrs()}); err != nil {
		return err
	}
	for _, c := range tg.Network().ConnsToPeer(h.ID()) {
		if got, err := manet.ToIP(c.RemoteMultiaddr()); err != nil || !got.Equal(net.ParseIP(ip)) {
			t.Errorf("a party listening on %s dialled from %v: the test cannot tell parties apart by address", ip, c.RemoteMultiaddr())
		}
	}
	return nil
}

// A host that fails to start leaves no resource or connection manager
// running (TestMain checks for goroutines left behind).
func TestNewFailsCleanly(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	for _, l := range [][]string{{"not-a-multiaddr"}} {
		if h, err := node.New(key, node.Options{Listen: l}); err == nil {
			h.Close()
			t.Errorf("listening on %q: no error", l)
		}
	}
}

// One remote identity cannot hold more streams of a protocol than its
// per-peer allowance, whoever else is connected; a known peer has an
// allowance of its own.
func TestPerPeerProtocolLimit(t *testing.T) {
	ctx := context.Background()
	k := party(t, "127.0.0.2")
	tg := newTarget(t, node.Options{Known: []peer.AddrInfo{known(k)}})
	for _, c := range []struct {
		proto protocol.ID
		want  int
	}{
		{shares.ID, 4}, {ledgersync.SyncID, 2}, {ledgersync.PushID, 2},
	} {
		t.Run(string(c.proto), func(t *testing.T) {
			for i, ip := range []string{"127.0.0.3", "127.0.0.4"} {
				s := party(t, ip)
				if err := connect(ctx, t, s, tg, ip); err != nil {
					t.Fatal(err)
				}
				if got := holdMany(ctx, s, tg, c.proto, 10); got != c.want {
					t.Errorf("stranger %d held %d streams, want %d", i, got, c.want)
				}
			}
		})
	}
	strangers, _ := node.RefusalsOf(tg)
	if strangers.Streams == 0 {
		t.Errorf("refusals %+v: no stream refusal counted", strangers)
	}
	if err := connect(ctx, t, k, tg, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if got := holdMany(ctx, k, tg, shares.ID, 10); got != 10 {
		t.Errorf("a known peer held %d share streams, want 10", got)
	}
}

// strangers starts n strangers, spread over ips, that each connect to tg
// and hold as many streams of each proto as it accepts (up to 8). It
// returns how many connections and streams tg refused them.
func strangers(ctx context.Context, t *testing.T, tg *target, n int, ips []string, protos ...protocol.ID) (connRefused, streamRefused int64) {
	t.Helper()
	hosts := make([]host.Host, n)
	for i := range hosts {
		hosts[i] = party(t, ips[i%len(ips)])
	}
	var cr, sr atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := connect(ctx, t, h, tg, ips[i%len(ips)]); err != nil {
				cr.Add(1)
				return
			}
			for _, p := range protos {
				if holdMany(ctx, h, tg, p, 8) < 8 {
					sr.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return cr.Load(), sr.Load()
}

func ips(from, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("127.0.0.%d", from+i))
	}
	return out
}

// 200 strangers from a few addresses (one attacker) hold every connection
// and share stream they are given; an honest client, told apart only by
// its own address, still connects and opens a share stream, and a known
// peer still opens sync and push streams.
func TestHonestClientAmongStrangers(t *testing.T) {
	ctx := context.Background()
	k := party(t, "127.0.0.2")
	tg := newTarget(t, node.Options{Known: []peer.AddrInfo{known(k)}})
	cr, sr := strangers(ctx, t, tg, 200, ips(10, 2), shares.ID)
	t.Logf("strangers: %d connections refused, %d stopped by a stream limit; target holds %d streams", cr, sr, tg.held.Load())
	if cr == 0 {
		t.Errorf("every stranger connected: no per-IP limit")
	}

	honest := party(t, "127.0.0.3")
	if err := connect(ctx, t, honest, tg, "127.0.0.3"); err != nil {
		t.Fatalf("honest client: %v", err)
	}
	if hold(ctx, honest, tg, shares.ID) == nil {
		t.Errorf("honest client: share stream refused")
	}
	if err := connect(ctx, t, k, tg, "127.0.0.2"); err != nil {
		t.Fatalf("known peer: %v", err)
	}
	for _, p := range []protocol.ID{ledgersync.SyncID, ledgersync.PushID} {
		if hold(ctx, k, tg, p) == nil {
			t.Errorf("known peer: %s stream refused", p)
		}
	}
}

// 200 strangers from 40 addresses (too many for per-IP limits to tell
// them apart) take all the connections and all the sync and push streams
// strangers may have; a known peer still connects and opens sync and push
// streams, from the pool strangers cannot use.
func TestKnownPeerAmongManyStrangers(t *testing.T) {
	ctx := context.Background()
	// The strangers fill the connection limit too; keep the connection
	// manager from trimming them while a slow machine sets this up.
	defer node.SetGracePeriod(time.Hour)()
	k := party(t, "127.0.0.2")
	tg := newTarget(t, node.Options{Known: []peer.AddrInfo{known(k)}, Limits: node.Limits{Memory: 256 << 20}})
	cr, sr := strangers(ctx, t, tg, 200, ips(10, 40), ledgersync.SyncID, ledgersync.PushID)
	t.Logf("strangers: %d connections refused, %d stopped by a stream limit; target holds %d streams", cr, sr, tg.held.Load())
	// The strangers' pool is full: a fresh stranger from a fresh address
	// gets no sync stream. That is what the known peers' pool is for.
	late := party(t, "127.0.0.3")
	if err := connect(ctx, t, late, tg, "127.0.0.3"); err == nil && hold(ctx, late, tg, ledgersync.SyncID) != nil {
		t.Fatalf("a late stranger still got a sync stream: the strangers did not exhaust their pool, the test shows nothing")
	}
	if err := connect(ctx, t, k, tg, "127.0.0.2"); err != nil {
		t.Fatalf("known peer: %v", err)
	}
	for _, p := range []protocol.ID{ledgersync.SyncID, ledgersync.PushID} {
		if hold(ctx, k, tg, p) == nil {
			t.Errorf("known peer: %s stream refused", p)
		}
	}
}

// Past three quarters of MaxConns connections, the connection manager
// closes strangers' connections down to half of MaxConns, and keeps known
// peers'.
func TestConnManagerTrimsStrangers(t *testing.T) {
	ctx := context.Background()
	defer node.SetGracePeriod(time.Nanosecond)()
	k := party(t, "127.0.0.2")
	tg := newTarget(t, node.Options{Known: []peer.AddrInfo{known(k)}, Limits: node.Limits{MaxConns: 40}})
	if err := connect(ctx, t, k, tg, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if cr, _ := strangers(ctx, t, tg, 36, ips(10, 3)); cr != 0 {
		t.Fatalf("%d strangers could not connect", cr)
	}
	if n := len(tg.Network().Peers()); n != 37 {
		t.Fatalf("%d peers connected, want 37", n)
	}
	tg.ConnManager().TrimOpenConns(ctx)
	if n := len(tg.Network().Peers()); n > 30 {
		t.Errorf("%d peers connected after trimming, want at most 30", n)
	}
	if tg.Network().Connectedness(k.ID()) != network.Connected {
		t.Errorf("the known peer was trimmed")
	}
}

// Push carries revocations, and the patient's client is a stranger to
// peers: 60 stranger identities on 6 addresses (more than the 80 push
// streams a fixed strangers' pool of the smallest budget would allow),
// each holding every push stream it may, leave a fresh client from a fresh
// address its push stream.
func TestStrangersCannotFillThePushPool(t *testing.T) {
	ctx := context.Background()
	defer node.SetGracePeriod(time.Hour)()
	tg := newTarget(t, node.Options{Limits: node.Limits{Memory: 256 << 20}})
	cr, sr := strangers(ctx, t, tg, 60, ips(10, 6), ledgersync.PushID)
	t.Logf("strangers: %d connections refused, %d stopped by a stream limit; target holds %d streams", cr, sr, tg.held.Load())
	client := party(t, "127.0.0.3")
	if err := connect(ctx, t, client, tg, "127.0.0.3"); err != nil {
		t.Fatalf("client: %v", err)
	}
	if hold(ctx, client, tg, ledgersync.PushID) == nil {
		t.Fatal("a fresh client's push stream was refused while strangers held theirs")
	}
}
