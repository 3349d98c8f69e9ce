package ledgersync

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// longFeeds caches the long feeds the tests and benchmarks push: signing
// 100,000 entries takes seconds, so each length is made once.
var longFeeds = struct {
	sync.Mutex
	m map[int][]*consent.Entry
}{m: map[int][]*consent.Entry{}}

// longFeed returns n chained anchors of "long feed author"'s feed, signed
// directly (no ledger), times one second apart from t0.
func longFeed(tb testing.TB, n int) []*consent.Entry {
	tb.Helper()
	longFeeds.Lock()
	defer longFeeds.Unlock()
	if f, ok := longFeeds.m[n]; ok {
		return f
	}
	s := testSigner(tb, "long feed author")
	out := make([]*consent.Entry, 0, n)
	var head consent.Head
	for i := range n {
		e, err := consent.NewEntry(s, head, t0.Add(time.Duration(i)*time.Second), consent.KindAnchor, &consent.AnchorBody{
			Record:   fmt.Sprintf("%032x", i),
			Manifest: consent.HashBytes(fmt.Appendf(nil, "manifest %d", i)),
		})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, e)
		head = consent.Head{Seq: e.Seq, Hash: e.Hash(), Time: e.Time}
	}
	longFeeds.m[n] = out
	return out
}

// pushNode is a peer that takes a long feed from one author: the author
// is related (as a patient whose shares the peer stores is), so its
// budget does not apply, and the clock is past the feed's last entry.
func pushNode(tb testing.TB, feed []*consent.Entry) *node {
	tb.Helper()
	author := feed[0].Author
	end := time.Unix(feed[len(feed)-1].Time, 0)
	return newNode(tb, WithRelatedAuthors(func(a consent.ID) bool { return a == author }),
		WithClock(func() time.Time { return end }))
}

// longPushLen is the feed TestPushLongFeed pushes: 20,000 entries (78
// batches), a quarter of that under the race detector.
func longPushLen() int {
	if raceEnabled {
		return 5000
	}
	return 20000
}

// A feed far longer than one batch (the old limit was 4096 entries per
// push) is pushed in one Push, in batches of at most maxPushBatch.
func TestPushLongFeed(t *testing.T) {
	feed := longFeed(t, longPushLen())
	n := pushNode(t, feed)
	client := newHost(t)
	connect(t, client, n.h)
	acks, err := Push(ctxT(t, 2*time.Minute), client, n.h.ID(), feed)
	if err != nil {
		t.Fatal(err)
	}
	if len(acks) != len(feed) {
		t.Fatalf("%d acks for %d entries", len(acks), len(feed))
	}
	for i, a := range acks {
		if a.Status != AckAccepted {
			t.Fatalf("entry %d: %+v", i+1, a)
		}
	}
	if h := n.head(feed[0].Author); h.Seq != uint64(len(feed)) || h.Hash != feed[len(feed)-1].Hash() {
		t.Fatalf("head %d after the push, want %d", h.Seq, len(feed))
	}
	st := n.s.Stats()
	want := uint64((len(feed) + maxPushBatch - 1) / maxPushBatch)
	if st.PushEntries != uint64(len(feed)) || st.PushBatches != want {
		t.Errorf("%d entries in %d batches on the wire, want %d in %d", st.PushEntries, st.PushBatches, len(feed), want)
	}
}

// A second push of a grown feed sends only the entries the peer lacks;
// a push of what the peer holds sends no entry at all.
func TestPushSendsOnlyWhatThePeerLacks(t *testing.T) {
	feed := longFeed(t, 600)
	n := pushNode(t, feed)
	client := newHost(t)
	connect(t, client, n.h)
	if _, err := Push(ctxT(t, time.Minute), client, n.h.ID(), feed[:500]); err != nil {
		t.Fatal(err)
	}
	before := n.s.Stats()
	acks, err := Push(ctxT(t, time.Minute), client, n.h.ID(), feed)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		want := AckDuplicate
		if i >= 500 {
			want = AckAccepted
		}
		if a.Status != want || a.Hash != feed[i].Hash() {
			t.Fatalf("ack %d: %+v, want %v", i, a, want)
		}
	}
	after := n.s.Stats()
	if d := after.PushEntries - before.PushEntries; d != 100 {
		t.Errorf("the second push sent %d entries, want the 100 new ones", d)
	}
	if d := after.PushBatches - before.PushBatches; d != 1 {
		t.Errorf("the second push sent %d batches, want 1", d)
	}
	if _, err := Push(ctxT(t, time.Minute), client, n.h.ID(), feed); err != nil {
		t.Fatal(err)
	}
	if again := n.s.Stats(); again.PushEntries != after.PushEntries {
		t.Errorf("a push of what the peer holds sent %d entries", again.PushEntries-after.PushEntries)
	}
	if h := n.head(feed[0].Author); h.Seq != 600 {
		t.Fatalf("head %d, want 600", h.Seq)
	}
}

// A push whose head the peer holds a different entry for sends every
// entry: the peer, not the client, decides (here: the fork is rejected as
// an equivocation).
func TestPushOfAForkSendsTheFork(t *testing.T) {
	feed := longFeed(t, 600)[:maxUnofferedPush+4]
	n := pushNode(t, feed)
	client := newHost(t)
	connect(t, client, n.h)
	if _, err := Push(ctxT(t, time.Minute), client, n.h.ID(), feed); err != nil {
		t.Fatal(err)
	}
	last := len(feed) - 1
	s := testSigner(t, "long feed author")
	fork, err := consent.NewEntry(s, consent.Head{Seq: feed[last-1].Seq, Hash: feed[last-1].Hash(), Time: feed[last-1].Time},
		time.Unix(feed[last].Time, 0), consent.KindAnchor, &consent.AnchorBody{Record: "fork", Manifest: consent.HashBytes([]byte("fork"))})
	if err != nil {
		t.Fatal(err)
	}
	before := n.s.Stats()
	forked := append(append([]*consent.Entry(nil), feed[:last]...), fork)
	acks, err := Push(ctxT(t, wait), client, n.h.ID(), forked)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks[:last] {
		if a.Status != AckDuplicate {
			t.Fatalf("ack %d: %+v, want duplicate", i, a)
		}
	}
	if acks[last].Status != AckRejected {
		t.Fatalf("the fork's ack: %+v, want rejected", acks[last])
	}
	if d := n.s.Stats().PushEntries - before.PushEntries; d != uint64(len(forked)) {
		t.Errorf("%d entries sent, want all %d", d, len(forked))
	}
	if st := n.s.Stats(); st.Conflicts+st.Rejected == 0 {
		t.Errorf("the peer did not see the fork: %+v", st)
	}
}

// BenchmarkPush100k pushes a 100,000-entry feed to a fresh peer.
func BenchmarkPush100k(b *testing.B) { benchPush(b, 100_000) }

// BenchmarkPush10k pushes a 10,000-entry feed to a fresh peer.
func BenchmarkPush10k(b *testing.B) { benchPush(b, 10_000) }

func benchPush(b *testing.B, n int) {
	feed := longFeed(b, n)
	client := newHost(b)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		nd := pushNode(b, feed)
		connect(b, client, nd.h)
		b.StartTimer()
		start := cpuTime()
		if _, err := Push(ctxT(b, 10*time.Minute), client, nd.h.ID(), feed); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		b.StopTimer()
		if h := nd.head(feed[0].Author); h.Seq != uint64(n) {
			b.Fatalf("head %d, want %d", h.Seq, n)
		}
		nd.s.Close()
		nd.h.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// PushFeed sends a feed from a ledger, read as it goes: all of it to a
// peer that holds none, only what follows the peer's head to a peer that
// holds a prefix, nothing to a peer that holds it all.
func TestPushFeed(t *testing.T) {
	feed := longFeed(t, 700)
	author := feed[0].Author
	n := pushNode(t, feed)
	client := newHost(t)
	connect(t, client, n.h)
	src := newLedger(t)
	push := func(want int) {
		t.Helper()
		acks := 0
		err := PushFeed(ctxT(t, time.Minute), client, n.h.ID(), src, author, func(a Ack) error {
			acks++
			return a.Err(n.h.ID())
		})
		if err != nil {
			t.Fatal(err)
		}
		if acks != want {
			t.Fatalf("%d entries sent, want %d", acks, want)
		}
		var hd consent.Head
		src.View(func(v *consent.View) { hd = v.Head(author) })
		if got := n.head(author); got != hd {
			t.Fatalf("the peer's head is %d, the ledger's %d", got.Seq, hd.Seq)
		}
	}
	if _, err := src.IngestBatch(feed[:600]); err != nil {
		t.Fatal(err)
	}
	push(600)
	if _, err := src.IngestBatch(feed[600:]); err != nil {
		t.Fatal(err)
	}
	push(100)
	push(0)
}
