package ledgersync

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/consent"
)

const wait = 10 * time.Second

// settle waits until n's mesh has k peers and the syncs started by
// connections and mesh links are done: entries made afterwards travel by
// gossip (or by a sync that a gap starts).
func settle(tb testing.TB, n *node, k int) {
	tb.Helper()
	eventually(tb, wait, "mesh formed, syncs done", func() bool {
		return n.s.meshSize() == k && n.s.syncBusy.Load() == 0 && n.s.Stats().Syncs > 0
	})
}

// waitSynced waits until n finished at least k pull syncs (the on-connect
// ones), so that entries made afterwards can only travel by gossip, gap
// sync or push.
func waitSynced(tb testing.TB, n *node, k uint64) {
	tb.Helper()
	eventually(tb, wait, "on-connect sync", func() bool { return n.s.Stats().Syncs >= k })
}

func TestGossipReachesALineOfFive(t *testing.T) {
	nodes := make([]*node, 5)
	for i := range nodes {
		nodes[i] = newNode(t)
	}
	for i := 1; i < len(nodes); i++ {
		connect(t, nodes[i-1].h, nodes[i].h)
	}
	// Publish once the mesh is whole and the syncs it started are done, so
	// that entries can only travel by gossip.
	for i, n := range nodes {
		k := 2
		if i == 0 || i == len(nodes)-1 {
			k = 1
		}
		settle(t, n, k)
	}

	alice := testSigner(t, "alice")
	bob := testSigner(t, "bob")
	first := appendN(t, nodes[0].l, alice, 1)[0]
	if err := nodes[0].s.Publish(ctxT(t, wait), first); err != nil {
		t.Fatal(err)
	}
	last := appendN(t, nodes[4].l, bob, 1)[0]
	if err := nodes[4].s.Publish(ctxT(t, wait), last); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		eventually(t, wait, "gossip reaches every peer", func() bool { return n.has(first) && n.has(last) })
		st := n.s.Stats()
		if st.Rejected != 0 || st.Conflicts != 0 || st.Synced != 0 {
			t.Errorf("node %d: %+v", i, st)
		}
	}
	// Hooks fire for entries received, not for the node's own appends.
	for i, n := range nodes {
		want := 2
		if i == 0 || i == 4 {
			want = 1
		}
		eventually(t, wait, "hook calls", func() bool { return n.seenCount() == want })
	}
}

func message(data []byte) *pubsub.Message {
	topic := GossipTopic
	return &pubsub.Message{Message: &pb.Message{Data: data, Topic: &topic}}
}

func TestValidator(t *testing.T) {
	n := newNode(t, WithMaxMessageSize(2048))
	stranger := newHost(t).ID()
	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 5)

	forged := *feed[0]
	forged.Sig = slices.Clone(forged.Sig)
	forged.Sig[0] ^= 1
	unknown := signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix(), Kind: 99, Body: []byte{0xa0}})
	big := signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix(), Kind: consent.KindIdentity})
	big.Body, _ = consent.Marshal(&consent.IdentityBody{AgeRecipient: "age1" + strings.Repeat("q", 3000), Role: "patient"})
	big = signRaw(t, alice, big)
	if err := consent.VerifyEntry(big); err != nil {
		t.Fatal(err)
	}
	badChain := *feed[1]
	badChain.Prev = consent.HashBytes([]byte("elsewhere"))
	badChainE := signRaw(t, alice, &badChain)
	// Another entry at seq 1: equivocation once feed[0] is held.
	other := signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix() + 1, Kind: consent.KindAnchor,
		Body: mustMarshal(t, &consent.AnchorBody{Record: "rec-x", Manifest: consent.HashBytes([]byte("x"))})})

	steps := []struct {
		name string
		data []byte
		want pubsub.ValidationResult
	}{
		{"garbage", []byte("not an entry"), pubsub.ValidationReject},
		{"empty", nil, pubsub.ValidationReject},
		{"forged signature", forged.Encode(), pubsub.ValidationReject},
		{"unknown kind", unknown.Encode(), pubsub.ValidationReject},
		{"oversized", big.Encode(), pubsub.ValidationReject},
		{"non-canonical", append(feed[0].Encode(), 0), pubsub.ValidationReject},
		{"gap", feed[2].Encode(), pubsub.ValidationIgnore},
		{"first", feed[0].Encode(), pubsub.ValidationAccept},
		{"duplicate", feed[0].Encode(), pubsub.ValidationIgnore},
		{"bad chain", badChainE.Encode(), pubsub.ValidationReject},
		{"fills the gap", feed[1].Encode(), pubsub.ValidationAccept},
		{"pending one now held", feed[2].Encode(), pubsub.ValidationIgnore},
		{"next", feed[3].Encode(), pubsub.ValidationAccept},
		{"equivocation", other.Encode(), pubsub.ValidationIgnore},
		// Nothing more of an author proven to equivocate: not taken in,
		// not forwarded.
		{"after the equivocation", feed[4].Encode(), pubsub.ValidationIgnore},
	}
	for _, st := range steps {
		if got := n.s.validate(context.Background(), stranger, message(st.data)); got != st.want {
			t.Errorf("%s: got %v, want %v", st.name, got, st.want)
		}
	}
	for _, e := range []*consent.Entry{&forged, unknown, big, badChainE, feed[4]} {
		if n.holdsHash(e.Hash()) {
			t.Errorf("refused entry %s was ingested", entryName(e))
		}
	}
	if h := n.head(alice.ID()); h.Seq != 4 || h.Hash != feed[3].Hash() {
		t.Errorf("head %+v, want seq 4", h)
	}
	var eq bool
	n.l.View(func(v *consent.View) { eq = v.Equivocating(alice.ID()) })
	if !eq {
		t.Error("equivocation not recorded")
	}
	st := n.s.Stats()
	if st.Rejected != 8 || st.Conflicts != 1 || st.Accepted != 4 || st.Pending != 1 {
		t.Errorf("stats %+v", st)
	}
	eventually(t, wait, "hooks in feed order", func() bool { return n.seenCount() == 4 })
	for i, e := range n.seen {
		if e.Seq != uint64(i+1) {
			t.Errorf("hook %d saw seq %d", i, e.Seq)
		}
	}
}

func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := consent.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// rogue joins the topic with a bare gossipsub and no validator, so it can
// send anything.
func rogue(t *testing.T) (*pubsub.Topic, peer.ID, func(*node)) {
	h := newHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts := []pubsub.Option{pubsub.WithNoAuthor(),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithMessageIdFn(msgID)}
	if os.Getenv("LEDGERSYNC_DEBUG") != "" {
		opts = append(opts, pubsub.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", "rogue")))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(GossipTopic)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := topic.Relay()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay)
	return topic, h.ID(), func(n *node) { connect(t, h, n.h) }
}

func TestGossipRefusesBadEntries(t *testing.T) {
	n := newNode(t)
	topic, _, join := rogue(t)
	join(n)
	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 2)
	forged := *feed[1]
	forged.Sig = slices.Clone(forged.Sig)
	forged.Sig[5] ^= 0x80
	unknown := signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix(), Kind: 42, Body: []byte{0xa0}})

	ctx := ctxT(t, wait)
	publish := func(data []byte) {
		t.Helper()
		if err := topic.Publish(ctx, data, pubsub.WithReadiness(pubsub.MinTopicSize(1))); err != nil {
			t.Fatal(err)
		}
	}
	// MinTopicSize counts a peer whose subscription arrived before our own
	// stream to it opened, and a message sent then is lost: wait until n
	// has grafted the rogue, which it does only after hearing from it.
	eventually(t, wait, "n grafts the rogue", func() bool { return n.s.meshSize() == 1 })
	// A valid entry first, so the rogue's path to n is known to work.
	publish(feed[0].Encode())
	eventually(t, wait, "first valid entry arrives", func() bool { return n.has(feed[0]) })
	for _, data := range [][]byte{[]byte("garbage"), forged.Encode(), unknown.Encode(), feed[1].Encode()} {
		publish(data)
	}
	eventually(t, wait, func() string {
		return fmt.Sprintf("valid entry arrives (%v) and bad ones are rejected: %+v", n.has(feed[1]), n.s.Stats())
	}, func() bool {
		return n.has(feed[1]) && n.s.Stats().Rejected == 3
	})
	if n.holdsHash(forged.Hash()) || n.holdsHash(unknown.Hash()) {
		t.Error("a refused entry was ingested")
	}
}

func TestPartitionedPeerConverges(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	connect(t, a.h, b.h)
	connect(t, b.h, c.h)
	connect(t, a.h, c.h)
	waitSynced(t, c, 2)

	// Cut c off: forget the addresses both ways, as a partition would, so
	// that a sync still queued from the first connection cannot dial c
	// again; then close the connections.
	for _, n := range []*node{a, b} {
		n.h.Peerstore().ClearAddrs(c.h.ID())
		c.h.Peerstore().ClearAddrs(n.h.ID())
	}
	for _, p := range []peer.ID{a.h.ID(), b.h.ID()} {
		if err := c.h.Network().ClosePeer(p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, wait, "c disconnected", func() bool { return len(c.h.Network().Peers()) == 0 })

	alice := testSigner(t, "alice")
	feed := appendN(t, a.l, alice, 20) // seqs 5, 10, 15, 20 are revokes
	for _, e := range feed {
		if err := a.s.Publish(ctxT(t, wait), e); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, wait, "b gets all 20", func() bool { return b.head(alice.ID()).Seq == 20 })
	if h := c.head(alice.ID()); h.Seq != 0 {
		t.Fatalf("c, cut off, has seq %d", h.Seq)
	}

	// Reconnect to b only: the on-connect sync brings everything.
	connect(t, c.h, b.h)
	eventually(t, wait, "c converges", func() bool { return c.head(alice.ID()) == b.head(alice.ID()) })
	eventually(t, wait, "c's hooks", func() bool { return c.seenCount() == 20 })
	for i, e := range c.seen {
		if e.Seq != uint64(i+1) {
			t.Fatalf("hook %d saw seq %d", i, e.Seq)
		}
	}
}

func TestGossipGapTriggersSync(t *testing.T) {
	a, b := newNode(t), newNode(t)
	connect(t, a.h, b.h)
	settle(t, a, 1)
	settle(t, b, 1)
	alice := testSigner(t, "alice")
	feed := appendN(t, a.l, alice, 3)
	// Only the last is gossiped: b holds it pending and pulls the rest.
	if err := a.s.Publish(ctxT(t, wait), feed[2]); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "b fills the gap", func() bool { return b.head(alice.ID()).Seq == 3 })
	if st := b.s.Stats(); st.Pending == 0 {
		t.Errorf("gap not seen: %+v", st)
	}
}

func TestPushOutOfOrderConverges(t *testing.T) {
	a, b := newNode(t), newNode(t)
	connect(t, a.h, b.h)
	waitSynced(t, a, 1)
	client := newHost(t)
	connect(t, client, a.h)
	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 3)

	acks, err := Push(ctxT(t, wait), client, a.h.ID(), []*consent.Entry{feed[2], feed[1], feed[0]})
	if err != nil {
		t.Fatal(err)
	}
	want := []AckStatus{AckPending, AckPending, AckAccepted}
	for i, ack := range acks {
		if ack.Status != want[i] {
			t.Errorf("ack %d: %v %q, want %v", i, ack.Status, ack.Reason, want[i])
		}
	}
	for _, n := range []*node{a, b} {
		eventually(t, wait, "feed converges", func() bool { return n.head(alice.ID()).Seq == 3 })
	}
}

func TestPushFromLightClient(t *testing.T) {
	nodes := []*node{newNode(t), newNode(t), newNode(t)}
	connect(t, nodes[0].h, nodes[1].h)
	connect(t, nodes[1].h, nodes[2].h)
	waitSynced(t, nodes[1], 2)
	client := newHost(t) // no Service, not in the mesh
	connect(t, client, nodes[0].h)

	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 3)
	forged := *feed[2]
	forged.Sig = slices.Clone(forged.Sig)
	forged.Sig[0] ^= 1
	unknown := signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix(), Kind: 77, Body: []byte{0xa0}})
	push := []*consent.Entry{feed[0], feed[1], feed[0], &forged, unknown, feed[2]}

	acks, err := Push(ctxT(t, wait), client, nodes[0].h.ID(), push)
	if err != nil {
		t.Fatal(err)
	}
	want := []AckStatus{AckAccepted, AckAccepted, AckDuplicate, AckRejected, AckRejected, AckAccepted}
	if len(acks) != len(want) {
		t.Fatalf("%d acks", len(acks))
	}
	for i, ack := range acks {
		if ack.Status != want[i] || ack.Hash != push[i].Hash() {
			t.Errorf("ack %d: %v %q, want %v", i, ack.Status, ack.Reason, want[i])
		}
	}
	if !strings.Contains(acks[3].Reason, "bad signature") || !strings.Contains(acks[4].Reason, "unknown entry kind") {
		t.Errorf("reasons %q, %q", acks[3].Reason, acks[4].Reason)
	}
	for _, n := range nodes {
		eventually(t, wait, "pushed entries reach every peer", func() bool { return n.head(alice.ID()).Seq == 3 })
	}
	acks, err = Push(ctxT(t, wait), client, nodes[0].h.ID(), feed)
	if err != nil {
		t.Fatal(err)
	}
	for i, ack := range acks {
		if ack.Status != AckDuplicate {
			t.Errorf("second push, ack %d: %v", i, ack.Status)
		}
	}
}

func TestPull(t *testing.T) {
	n := newNode(t)
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	fa := appendN(t, n.l, alice, 5)
	fb := appendN(t, n.l, bob, 3)
	client := newHost(t)
	connect(t, client, n.h)

	got, err := Pull(ctxT(t, wait), client, n.h.ID(), map[consent.ID]uint64{alice.ID(): 2})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(fa[2:]), fb...)
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for _, e := range want {
		if !slices.ContainsFunc(got, func(g *consent.Entry) bool { return g.Hash() == e.Hash() }) {
			t.Errorf("missing %s", entryName(e))
		}
	}
	all, err := Pull(ctxT(t, wait), client, n.h.ID(), nil)
	if err != nil || len(all) != 8 {
		t.Fatalf("pull all: %d entries, %v", len(all), err)
	}
	none, err := Pull(ctxT(t, wait), client, n.h.ID(), map[consent.ID]uint64{alice.ID(): 5, bob.ID(): 3})
	if err != nil || len(none) != 0 {
		t.Fatalf("pull nothing: %d entries, %v", len(none), err)
	}
	// A client's own ledger takes what it pulled.
	l := newLedger(t)
	for _, e := range all {
		if _, err := l.Ingest(e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSyncBatchesLongFeeds(t *testing.T) {
	a, b := newNode(t), newNode(t)
	alice := testSigner(t, "alice")
	appendN(t, a.l, alice, maxBatchLen+30)
	connect(t, b.h, a.h)
	n, err := b.s.SyncWith(ctxT(t, wait), a.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "b has the whole feed", func() bool { return b.head(alice.ID()) == a.head(alice.ID()) })
	if n > maxBatchLen+30 {
		t.Errorf("accepted %d", n)
	}
}

func TestSyncRecordsEquivocation(t *testing.T) {
	a, b := newNode(t), newNode(t)
	alice := testSigner(t, "alice")
	appendN(t, a.l, alice, 2)
	// b holds a different seq 1 by the same author.
	other := signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix() + 7, Kind: consent.KindAnchor,
		Body: mustMarshal(t, &consent.AnchorBody{Record: "rec-y", Manifest: consent.HashBytes([]byte("y"))})})
	if _, err := b.l.Ingest(other); err != nil {
		t.Fatal(err)
	}
	connect(t, b.h, a.h)
	if _, err := b.s.SyncWith(ctxT(t, wait), a.h.ID()); err != nil {
		t.Fatal(err)
	}
	var eq bool
	b.l.View(func(v *consent.View) { eq = v.Equivocating(alice.ID()) })
	if !eq {
		t.Error("equivocation not recorded by sync")
	}
}

func TestOversizedIsRefused(t *testing.T) {
	n := newNode(t, WithMaxMessageSize(1024))
	client := newHost(t)
	connect(t, client, n.h)

	// A sync request frame announcing 1 GiB: reset before any allocation.
	str, err := client.NewStream(ctxT(t, wait), n.h.ID(), SyncID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write(binary.AppendUvarint(nil, 1<<30)); err != nil {
		t.Fatal(err)
	}
	_ = str.SetDeadline(time.Now().Add(wait))
	if _, err := io.ReadAll(bufio.NewReader(str)); err == nil {
		t.Error("oversized sync frame: stream closed cleanly, want reset")
	}
	str.Reset()

	// A pushed entry over the peer's limit: the stream is reset, no ack.
	alice := testSigner(t, "alice")
	big := signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix(), Kind: consent.KindIdentity,
		Body: mustMarshal(t, &consent.IdentityBody{AgeRecipient: "age1" + strings.Repeat("q", 2000), Role: "patient"})})
	if err := consent.VerifyEntry(big); err != nil {
		t.Fatal(err)
	}
	if acks, err := Push(ctxT(t, wait), client, n.h.ID(), []*consent.Entry{big}); err == nil {
		t.Errorf("oversized push acked: %+v", acks)
	}
	if n.holdsHash(big.Hash()) {
		t.Error("oversized entry ingested")
	}

	// The peer still serves.
	feed := makeFeed(t, alice, 2)
	acks, err := Push(ctxT(t, wait), client, n.h.ID(), feed)
	if err != nil || len(acks) != 2 || acks[1].Status != AckAccepted {
		t.Fatalf("push after refusal: %+v, %v", acks, err)
	}
	got, err := Pull(ctxT(t, wait), client, n.h.ID(), nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("pull after refusal: %d, %v", len(got), err)
	}
}

func TestPeriodicSync(t *testing.T) {
	a, b := newNode(t), newNode(t, WithSyncInterval(50*time.Millisecond))
	connect(t, a.h, b.h)
	waitSynced(t, b, 1)
	alice := testSigner(t, "alice")
	appendN(t, a.l, alice, 4) // appended, never published
	eventually(t, wait, "periodic sync", func() bool { return b.head(alice.ID()).Seq == 4 })
}

func TestCloseLeavesNothing(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	func() {
		ctx := context.Background()
		var svcs []*Service
		var hosts []host.Host
		for range 3 {
			h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(ctx, h, newLedger(t), WithSyncInterval(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range hosts {
				connect(t, h, o)
			}
			hosts = append(hosts, h)
			svcs = append(svcs, s)
		}
		alice := testSigner(t, "alice")
		e := appendN(t, svcs[0].l, alice, 1)[0]
		if err := svcs[0].Publish(ctxT(t, wait), e); err != nil {
			t.Fatal(err)
		}
		for _, s := range svcs[1:] {
			eventually(t, wait, "gossip", func() bool {
				var ok bool
				s.l.View(func(v *consent.View) { ok = v.Head(alice.ID()).Seq == 1 })
				return ok
			})
		}
		for _, s := range svcs {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal("second Close:", err)
			}
			if err := s.Publish(ctx, e); !errors.Is(err, ErrClosed) {
				t.Errorf("Publish after Close: %v", err)
			}
			if _, err := s.SyncWith(ctx, hosts[0].ID()); !errors.Is(err, ErrClosed) {
				t.Errorf("SyncWith after Close: %v", err)
			}
		}
		for _, h := range hosts {
			h.Close()
		}
	}()
	goleak.VerifyNone(t, opt)
}

func TestInboundStreamsPerPeerAreBounded(t *testing.T) {
	n := newNode(t)
	client := newHost(t)
	connect(t, client, n.h)
	ctx := ctxT(t, wait)
	var held []network.Stream
	for range StreamsPerPeer {
		str, err := client.NewStream(ctx, n.h.ID(), SyncID)
		if err != nil {
			t.Fatal(err)
		}
		// Half a uvarint: the handler starts and waits for the rest.
		if _, err := str.Write([]byte{0x80}); err != nil {
			t.Fatal(err)
		}
		held = append(held, str)
	}
	eventually(t, wait, "handlers hold their slots", func() bool {
		n.s.syncLim.mu.Lock()
		defer n.s.syncLim.mu.Unlock()
		return n.s.syncLim.perPeer[client.ID()] == StreamsPerPeer
	})
	if _, err := Pull(ctx, client, n.h.ID(), nil); err == nil {
		t.Error("a third concurrent sync stream was served")
	}
	for _, str := range held {
		str.Reset()
	}
	eventually(t, wait, "slots released", func() bool {
		_, err := Pull(ctx, client, n.h.ID(), nil)
		return err == nil
	})
}

// TestGossipOutOfOrderConverges sends a feed backwards by gossip: the peer
// holds the later entries pending, pulls the missing ones, and passes all
// of them on to a peer behind it.
func TestGossipOutOfOrderConverges(t *testing.T) {
	n, m := newNode(t), newNode(t)
	connect(t, n.h, m.h)
	settle(t, m, 1)
	topic, _, join := rogue(t)
	join(n)
	eventually(t, wait, "n grafts the rogue", func() bool { return n.s.meshSize() == 2 })
	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 5)
	ctx := ctxT(t, wait)
	for i := len(feed) - 1; i >= 0; i-- {
		if err := topic.Publish(ctx, feed[i].Encode(), pubsub.WithReadiness(pubsub.MinTopicSize(1))); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range []*node{n, m} {
		eventually(t, wait, "feed converges", func() bool { return nd.head(alice.ID()).Seq == 5 })
		eventually(t, wait, "hooks in feed order", func() bool { return nd.seenCount() == 5 })
		for i, e := range nd.seen {
			if e.Seq != uint64(i+1) {
				t.Errorf("hook %d saw seq %d", i, e.Seq)
			}
		}
	}
}

func TestPullInParts(t *testing.T) {
	n := newNode(t)
	alice := testSigner(t, "alice")
	feed := appendN(t, n.l, alice, 10)
	client := newHost(t)
	connect(t, client, n.h)
	defer func(old int) { pullLimit = old }(pullLimit)
	pullLimit = 4 * (len(feed[1].Body) + len(feed[1].Sig) + 128)

	l := newLedger(t)
	for rounds := 1; ; rounds++ {
		have := map[consent.ID]uint64{}
		l.View(func(v *consent.View) { have[alice.ID()] = v.Head(alice.ID()).Seq })
		got, err := Pull(ctxT(t, wait), client, n.h.ID(), have)
		if err != nil && !errors.Is(err, ErrPullLimit) {
			t.Fatal(err)
		}
		for _, e := range got {
			if _, err := l.Ingest(e); err != nil {
				t.Fatal(err)
			}
		}
		if err == nil {
			break
		}
		if len(got) == 0 || rounds > 10 {
			t.Fatalf("round %d: no progress", rounds)
		}
	}
	var head consent.Head
	l.View(func(v *consent.View) { head = v.Head(alice.ID()) })
	if head.Seq != 10 {
		t.Errorf("pulled up to seq %d", head.Seq)
	}
}
