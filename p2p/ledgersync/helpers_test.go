package ledgersync

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/consent"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fixed "now" of the tests.
var t0 = time.Unix(1767225600, 0).UTC()

var hostSeq atomic.Uint64

// newHost starts a host on loopback TCP with a fresh key, closed at cleanup.
func newHost(tb testing.TB) host.Host {
	tb.Helper()
	seed := sha256.Sum256(fmt.Appendf(nil, "ledgersync test host %s %d", tb.Name(), hostSeq.Add(1)))
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		tb.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Identity(priv))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

func newLedger(tb testing.TB) *consent.Ledger {
	tb.Helper()
	l, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// node is a peer: host, ledger, service, and every entry its hook saw.
type node struct {
	h host.Host
	l *consent.Ledger
	s *Service

	mu   sync.Mutex
	seen []*consent.Entry
}

// newNode starts a peer; periodic sync is off unless opts turn it on, so
// tests see gossip, on-connect and on-gap sync only.
func newNode(tb testing.TB, opts ...Option) *node {
	tb.Helper()
	n := &node{h: newHost(tb), l: newLedger(tb)}
	base := []Option{WithSyncInterval(0)}
	if os.Getenv("LEDGERSYNC_DEBUG") != "" {
		base = append(base, WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", n.h.ID().ShortString())))
	}
	s, err := New(context.Background(), n.h, n.l, append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	n.s = s
	s.OnAccepted(func(e *consent.Entry) {
		n.mu.Lock()
		n.seen = append(n.seen, e)
		n.mu.Unlock()
	})
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return n
}

func (n *node) head(a consent.ID) consent.Head {
	var h consent.Head
	n.l.View(func(v *consent.View) { h = v.Head(a) })
	return h
}

func (n *node) has(e *consent.Entry) bool {
	h := e.Hash()
	var ok bool
	n.l.View(func(v *consent.View) {
		got, held := v.HashAt(e.Author, e.Seq)
		ok = held && got == h
	})
	return ok
}

func (n *node) holdsHash(h consent.Hash) bool {
	var ok bool
	n.l.View(func(v *consent.View) { _, ok = v.Entry(h) })
	return ok
}

func (n *node) seenCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.seen)
}

func connect(tb testing.TB, a, b host.Host) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		tb.Fatal(err)
	}
}

// eventually polls cond every 10 ms until it holds or d passes. what is a
// string or a func() string (called on failure).
func eventually(tb testing.TB, d time.Duration, what any, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			if f, ok := what.(func() string); ok {
				what = f()
			}
			tb.Fatalf("not within %v: %v", d, what)
		}
		<-tick.C
	}
}

func ctxT(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

func testSigner(tb testing.TB, name string) *consent.KeySigner {
	tb.Helper()
	seed := sha256.Sum256([]byte("ledgersync test key: " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// appendN appends n entries to s's feed in l: an identity card first, then
// anchors, then a revoke of the last anchor's hash every fifth entry.
func appendN(tb testing.TB, l *consent.Ledger, s consent.Signer, n int) []*consent.Entry {
	tb.Helper()
	var out []*consent.Entry
	for range n {
		var head consent.Head
		l.View(func(v *consent.View) { head = v.Head(s.ID()) })
		at := t0.Add(time.Duration(head.Seq) * time.Minute)
		var kind consent.Kind
		var body any
		switch {
		case head.Seq == 0:
			kind, body = consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1testrecipient", Role: "patient"}
		case head.Seq%5 == 4:
			kind, body = consent.KindRevoke, &consent.RevokeBody{Grant: head.Hash}
		default:
			kind, body = consent.KindAnchor, &consent.AnchorBody{
				Record:   fmt.Sprintf("rec-%d", head.Seq),
				Manifest: consent.HashBytes(fmt.Appendf(nil, "manifest %d", head.Seq)),
			}
		}
		e, err := l.Append(s, at, kind, body)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// makeFeed returns n chained entries of s's feed without any ledger.
func makeFeed(tb testing.TB, s consent.Signer, n int) []*consent.Entry {
	tb.Helper()
	return appendN(tb, newLedger(tb), s, n)
}

// signRaw signs e as it is, whatever its kind or body.
func signRaw(tb testing.TB, s consent.Signer, e *consent.Entry) *consent.Entry {
	tb.Helper()
	e.Author = s.ID()
	sig, err := s.Sign(e.SignedMessage())
	if err != nil {
		tb.Fatal(err)
	}
	e.Sig = sig
	return e
}

// meshSize is the number of peers in our mesh for the topic.
func (s *GossipService) meshSize() int {
	s.meshMu.Lock()
	defer s.meshMu.Unlock()
	return len(s.mesh)
}
