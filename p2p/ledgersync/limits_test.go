package ledgersync

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
)

// holdStreams opens, from h, every stream of proto to p that p lets one
// remote have, and holds each with half a uvarint so its handler waits.
func holdStreams(tb testing.TB, h host.Host, p peer.ID, proto protocol.ID, n int) {
	tb.Helper()
	ctx := ctxT(tb, wait)
	for range n {
		str, err := h.NewStream(ctx, p, proto)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := str.Write([]byte{0x80}); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { str.Reset() })
	}
}

// Eight strangers holding every push and sync stream they may have (the
// global pool of 16 they took before) do not stop a patient's client from
// pulling and pushing a revocation, nor a known peer from syncing.
func TestStrangersHoldingStreamsDoNotBlockRevocation(t *testing.T) {
	known := newHost(t)
	n := newNode(t, WithKnownPeers([]peer.ID{known.ID()}))
	for i := range 8 {
		s := newHost(t)
		connect(t, s, n.h)
		holdStreams(t, s, n.h.ID(), PushID, StreamsPerPeer)
		holdStreams(t, s, n.h.ID(), SyncID, StreamsPerPeer)
		eventually(t, wait, fmt.Sprintf("stranger %d holds its slots", i), func() bool {
			n.s.syncLim.mu.Lock()
			defer n.s.syncLim.mu.Unlock()
			n.s.pushLim.mu.Lock()
			defer n.s.pushLim.mu.Unlock()
			return n.s.syncLim.perPeer[s.ID()] == StreamsPerPeer && n.s.pushLim.perPeer[s.ID()] == StreamsPerPeer
		})
	}

	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 5)
	// The feed without its revocation is on the peer already.
	for _, e := range feed[:4] {
		if res := n.s.accept(e); res.out != outAccepted {
			t.Fatal(res.out, res.err)
		}
	}
	client := newHost(t)
	connect(t, client, n.h)
	ctx := ctxT(t, wait)
	if _, err := Pull(ctx, client, n.h.ID(), nil); err != nil {
		t.Fatalf("the patient's pull while strangers hold sync streams: %v", err)
	}
	acks, err := Push(ctx, client, n.h.ID(), feed)
	if err != nil {
		t.Fatalf("the patient's push while strangers hold push streams: %v", err)
	}
	if acks[4].Status != AckAccepted || feed[4].Kind != consent.KindRevoke {
		t.Fatalf("revocation acked %v (%s)", acks[4].Status, feed[4].Kind)
	}
	// A known peer gets its streams however many strangers hold theirs.
	connect(t, known, n.h)
	holdStreams(t, known, n.h.ID(), SyncID, KnownStreamsPerPeer-1)
	if _, err := Pull(ctx, known, n.h.ID(), nil); err != nil {
		t.Fatalf("a known peer's pull: %v", err)
	}
}

// A stream that sends a byte now and then is cut at the end of its life,
// and a push below the minimum rate is reset.
func TestMeter(t *testing.T) {
	cases := []struct {
		name    string
		n       int64
		waited  time.Duration
		minRate int
		tooSlow bool
	}{
		{"within the grace", 1, 9 * time.Second, MinPushRate, false},
		{"a byte every few seconds", 12, time.Minute, MinPushRate, true},
		{"a slow but steady push", 70 << 10, time.Minute, MinPushRate, false},
		{"sync has no minimum", 12, time.Minute, 0, false},
	}
	for _, c := range cases {
		m := &meter{str: nopStream{}, end: time.Now().Add(time.Hour), idle: time.Second, minRate: c.minRate,
			grace: pushRateGrace, n: c.n, waited: c.waited}
		if err := m.next(); errors.Is(err, ErrTooSlow) != c.tooSlow {
			t.Errorf("%s: next() = %v, want too slow %v", c.name, err, c.tooSlow)
		}
	}
	// The deadline never passes the end of the stream's life.
	s := &deadlineStream{}
	m := newMeter(s, time.Second, time.Hour, 0)
	if err := m.next(); err != nil {
		t.Fatal(err)
	}
	if !s.d.Equal(m.end) {
		t.Errorf("deadline %v, want the end of life %v", s.d, m.end)
	}
}

type nopStream struct{ network.Stream }

func (nopStream) SetDeadline(time.Time) error { return nil }

type deadlineStream struct {
	network.Stream
	d time.Time
}

func (s *deadlineStream) SetDeadline(d time.Time) error { s.d = d; return nil }

// legitimateBurst is what a patient writes when adding 50 records and
// granting them: an identity card, 50 anchors, 50 one-record grants and
// one grant of all 50.
func legitimateBurst(tb testing.TB, s consent.Signer) []*consent.Entry {
	tb.Helper()
	l := newLedger(tb)
	grantee := testSigner(tb, "clinician").ID()
	at := t0
	app := func(kind consent.Kind, body any) {
		if _, err := l.Append(s, at, kind, body); err != nil {
			tb.Fatal(err)
		}
		at = at.Add(time.Second)
	}
	app(consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1" + fmt.Sprintf("%058d", 0), Role: "patient"})
	var ids []string
	for i := range 50 {
		id := fmt.Sprintf("%032x", i+1)
		ids = append(ids, id)
		app(consent.KindAnchor, &consent.AnchorBody{Record: id, Manifest: consent.HashBytes([]byte(id))})
	}
	k, err := age.GenerateX25519Identity()
	if err != nil {
		tb.Fatal(err)
	}
	r := k.Recipient()
	grant := func(recs []string) *consent.Grant {
		g := &consent.Grant{Grantee: grantee, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", NotBefore: t0.Unix(), Records: recs}
		for _, id := range recs {
			g.Keys = append(g.Keys, consent.WrappedKey{Record: id, Key: wrapTestKey(tb, r)})
		}
		return g
	}
	for _, id := range ids {
		app(consent.KindGrant, grant([]string{id}))
	}
	app(consent.KindGrant, grant(ids))
	var out []*consent.Entry
	l.View(func(v *consent.View) { out = v.Feed(s.ID()) })
	return out
}

// TestLegitimateBurst measures the burst the default budget is set from
// and checks that it fits twenty times over, entries and bytes.
func TestLegitimateBurst(t *testing.T) {
	feed := legitimateBurst(t, testSigner(t, "patient"))
	size, largest := 0, 0
	for _, e := range feed {
		n := len(e.Encode())
		size += n
		largest = max(largest, n)
	}
	t.Logf("a patient adding 50 records and granting them: %d entries, %d bytes (largest %d)", len(feed), size, largest)
	if b := DefaultBulkBudget; 20*len(feed) > b.Entries || 20*size > b.Bytes {
		t.Errorf("default bulk budget %+v is not twenty times the burst (%d entries, %d bytes)", b, len(feed), size)
	}
	in := newTestIngest(t, WithClock(func() time.Time { return t0 }))
	// The ledger holds none of them, so each round is charged again, as
	// if the patient wrote twenty such bursts at once.
	for i := range 20 {
		for _, e := range feed {
			if err := in.charge(e, len(e.Encode()), ""); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
}

// fixedClock is a clock after every test entry's date that never moves,
// so budgets do not refill during a test.
func fixedClock() time.Time { return t0.Add(24 * time.Hour) }

// feedBytes is the size of what l holds of a's feed.
func feedBytes(l *consent.Ledger, a consent.ID) (n, size int) {
	l.View(func(v *consent.View) {
		for _, e := range v.Feed(a) {
			n++
			size += len(e.Encode())
		}
	})
	return n, size
}

// A stranger pushing 150 large entries is cut off once its author's budget
// is spent; an honest author's entries, pushed alongside, still flow, and
// so does a revocation by an author whose bulk budget is spent.
func TestStrangerBudgetCutsOffBulk(t *testing.T) {
	// A budget of 2 MiB an hour keeps the test small: the default is 8.
	budget := HourlyBudget(DefaultBulkBudget.Entries, 2<<20)
	n := newNode(t, WithClock(fixedClock), WithAuthorBudget(budget, DefaultConsentBudget))
	junk := paddedFeed(t, testSigner(t, "stranger"), 150, 100<<10)
	stranger := newHost(t)
	connect(t, stranger, n.h)
	ctx := ctxT(t, 5*time.Minute)
	acks, err := Push(ctx, stranger, n.h.ID(), junk)
	if err != nil {
		t.Fatal(err)
	}
	rejected := 0
	for _, a := range acks {
		if a.Status == AckRejected {
			rejected++
		}
	}
	held, size := feedBytes(n.l, junk[0].Author)
	t.Logf("stranger: %d of %d entries of %d KiB held (%d KiB), %d refused", held, len(junk), len(junk[0].Encode())>>10, size>>10, rejected)
	if size > budget.Bytes || rejected == 0 {
		t.Errorf("the stranger got %d bytes in (budget %d), %d refused", size, budget.Bytes, rejected)
	}
	if acks[len(acks)-1].Status != AckRejected || n.s.BudgetStats().Refused == 0 {
		t.Errorf("last ack %v, stats %+v", acks[len(acks)-1], n.s.BudgetStats())
	}

	// An honest author's burst, pushed after, flows.
	honest := legitimateBurst(t, testSigner(t, "patient"))
	client := newHost(t)
	connect(t, client, n.h)
	acks, err = Push(ctx, client, n.h.ID(), honest)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		if a.Status != AckAccepted {
			t.Fatalf("honest entry %d: %v %s", i, a.Status, a.Reason)
		}
	}

	// An author that spent its bulk budget still gets a revocation in.
	bob := testSigner(t, "bob")
	bulk := paddedFeed(t, bob, 30, 100<<10)
	acks, err = Push(ctx, client, n.h.ID(), bulk)
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for i, a := range acks {
		if a.Status == AckAccepted {
			last = i
		}
	}
	if last == len(bulk)-1 {
		t.Fatal("bob's bulk budget was never spent")
	}
	rev, err := consent.NewEntry(bob, bulk[last].Head(), fixedClock().Add(-time.Hour), consent.KindRevoke, &consent.RevokeBody{Grant: bulk[last].Hash()})
	if err != nil {
		t.Fatal(err)
	}
	acks, err = Push(ctx, client, n.h.ID(), []*consent.Entry{rev})
	if err != nil || acks[0].Status != AckAccepted {
		t.Fatalf("revocation after the bulk budget was spent: %v %v", acks, err)
	}
}

// A sync this peer starts with a known peer is not throttled; the same
// entries from a peer that is not known are cut off by the budget.
func TestKnownPeerSyncIsNotThrottled(t *testing.T) {
	budget := WithAuthorBudget(HourlyBudget(DefaultBulkBudget.Entries, 2<<20), DefaultConsentBudget)
	src := newNode(t, WithClock(fixedClock))
	author := testSigner(t, "busy")
	feed := paddedFeed(t, author, 20, 150<<10)
	for _, e := range feed {
		if _, err := src.l.Ingest(e); err != nil {
			t.Fatal(err)
		}
	}
	_, total := feedBytes(src.l, author.ID())
	if total <= 2<<20 {
		t.Fatalf("test feed of %d bytes is within the budget", total)
	}
	knows := newNode(t, WithClock(fixedClock), budget, WithKnownPeers([]peer.ID{src.h.ID()}))
	stranger := newNode(t, WithClock(fixedClock), budget)
	for _, nd := range []*node{knows, stranger} {
		connect(t, nd.h, src.h)
		if _, err := nd.s.SyncWith(ctxT(t, time.Minute), src.h.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := feedBytes(knows.l, author.ID()); got != len(feed) {
		t.Errorf("from a known peer: %d of %d entries", got, len(feed))
	}
	if got, size := feedBytes(stranger.l, author.ID()); size > 2<<20 || got == len(feed) {
		t.Errorf("from a peer that is not known: %d entries, %d bytes", got, size)
	}
}

// The budget refills with time; known peers and related authors are not
// charged; a known peer's entries of other authors are charged but never
// refused.
func TestBudgetRefillAndExemptions(t *testing.T) {
	now := fixedClock()
	clock := func() time.Time { return now }
	friend, kin, other := testSigner(t, "friend"), testSigner(t, "kin"), testSigner(t, "other")
	friendPeer, err := peer.Decode(string(friend.ID()))
	if err != nil {
		t.Fatal(err)
	}
	in := newTestIngest(t, WithClock(clock), WithAuthorBudget(HourlyBudget(2, 1<<20), HourlyBudget(1, 1<<10)),
		WithKnownPeers([]peer.ID{friendPeer}), WithRelatedAuthors(func(a consent.ID) bool { return a == kin.ID() }))
	charge := func(s consent.Signer, from peer.ID) error {
		e := makeFeed(t, s, 2)[1] // an anchor: bulk
		return in.charge(e, len(e.Encode()), from)
	}
	for i := range 2 {
		if err := charge(other, ""); err != nil {
			t.Fatalf("entry %d within the budget: %v", i, err)
		}
	}
	if err := charge(other, ""); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("third entry: %v, want ErrOverBudget", err)
	}
	if err := charge(other, friendPeer); err != nil {
		t.Fatalf("from a known peer: %v", err)
	}
	for range 5 {
		if err := charge(friend, ""); err != nil {
			t.Fatalf("a known peer's own entry: %v", err)
		}
		if err := charge(kin, ""); err != nil {
			t.Fatalf("a related author's entry: %v", err)
		}
	}
	now = now.Add(30 * time.Minute) // refills one entry
	if err := charge(other, ""); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
	if err := charge(other, ""); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("past the refill: %v", err)
	}
	if got := in.BudgetStats(); got.Refused != 2 || got.Authors != 1 {
		t.Errorf("stats %+v, want 2 refused, 1 author", got)
	}
	if _, err := NewIngest(newLedger(t), WithAuthorBudget(Budget{}, DefaultConsentBudget)); err == nil {
		t.Error("an empty budget was accepted")
	}
}

// Once an author is over its budget, what claims to be its entry is
// refused before the signature is checked (the costly part), and a forged
// claim spends nothing of the author's budget.
func TestOverBudgetRefusedBeforeVerification(t *testing.T) {
	in := newTestIngest(t, WithClock(fixedClock), WithAuthorBudget(HourlyBudget(1, 1<<20), HourlyBudget(1, 1<<10)))
	feed := makeFeed(t, testSigner(t, "other"), 3)
	if _, err := in.decodeCharged(feed[1].Encode(), ""); err != nil {
		t.Fatal(err)
	}
	forged := *feed[2]
	forged.Sig = make([]byte, len(forged.Sig))
	if _, err := in.decodeCharged(forged.Encode(), ""); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("a forged entry of an author over budget: %v, want ErrOverBudget", err)
	}
	// Within the budget, the forgery fails verification and is not charged.
	in2 := newTestIngest(t, WithClock(fixedClock), WithAuthorBudget(HourlyBudget(1, 1<<20), HourlyBudget(1, 1<<10)))
	if _, err := in2.decodeCharged(forged.Encode(), ""); err == nil || errors.Is(err, ErrOverBudget) {
		t.Fatalf("a forged entry: %v, want a signature error", err)
	}
	if _, err := in2.decodeCharged(feed[1].Encode(), ""); err != nil {
		t.Fatalf("the author's own entry after a forgery: %v", err)
	}
}
