package ledgersync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/medwallet/medwallet/consent"
)

// newTestIngest returns an Ingest on a fresh ledger.
func newTestIngest(tb testing.TB, opts ...Option) *Ingest {
	tb.Helper()
	in, err := NewIngest(newLedger(tb), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { in.Close() })
	return in
}

// paddedEntry returns the entry after head in s's feed, dated at: a grant
// of records whose wrapped keys are keyLen opaque bytes each, so that its
// encoding is about records*keyLen bytes.
func paddedEntry(tb testing.TB, s consent.Signer, head consent.Head, at time.Time, records, keyLen int) *consent.Entry {
	tb.Helper()
	g := consent.Grant{Grantee: testSigner(tb, "grantee").ID(), Scopes: []string{"patient/Observation.rs"},
		Purpose: "TREAT", NotBefore: t0.Unix()}
	for i := range records {
		id := fmt.Sprintf("%032x", i)
		g.Records = append(g.Records, id)
		g.Keys = append(g.Keys, consent.WrappedKey{Record: id, Key: []byte(strings.Repeat("k", keyLen))})
	}
	e, err := consent.NewEntry(s, head, at, consent.KindGrant, &g)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// paddedFeed returns n chained entries of s's feed of about size bytes each.
func paddedFeed(tb testing.TB, s consent.Signer, n, size int) []*consent.Entry {
	tb.Helper()
	var out []*consent.Entry
	var head consent.Head
	for i := range n {
		e := paddedEntry(tb, s, head, t0.Add(time.Duration(i)*time.Minute), max(1, size/4000), min(size, 4000))
		out = append(out, e)
		head = e.Head()
	}
	return out
}

func TestAdmitEntrySize(t *testing.T) {
	alice := testSigner(t, "alice")
	// Over DefaultMaxEntrySize, within consent.MaxEntrySize: accepted
	// before the cap.
	over := paddedEntry(t, alice, consent.Head{}, t0, 200, 4000)
	if n := len(over.Encode()); n <= DefaultMaxEntrySize || n > consent.MaxEntrySize {
		t.Fatalf("test entry of %d bytes", n)
	}
	largest := bigGrant(t, consent.MaxGrantRecords, consent.MaxRecordIDLen, 10)

	in := newTestIngest(t)
	res := in.accept(over) // the sync path
	if res.out != outRefused || !errors.Is(res.err, ErrEntryTooLarge) || !errors.Is(res.err, consent.ErrTooLarge) {
		t.Errorf("accept oversize: %v %v, want refused with ErrEntryTooLarge", res.out, res.err)
	}
	if _, err := in.decode(over.Encode()); !errors.Is(err, ErrEntryTooLarge) { // gossip and push
		t.Errorf("decode oversize: %v, want ErrEntryTooLarge", err)
	}
	if !strings.Contains(res.reason(), "max entry size") {
		t.Errorf("reason %q does not name the limit", res.reason())
	}
	if res := in.accept(largest); res.out != outAccepted {
		t.Errorf("largest legitimate entry: %v %v", res.out, res.err)
	}

	small := newTestIngest(t, WithMaxMessageSize(4096))
	if res := small.accept(largest); !errors.Is(res.err, ErrEntryTooLarge) {
		t.Errorf("WithMaxMessageSize(4096): %v", res.err)
	}
}

func TestAdmitClockSkew(t *testing.T) {
	now := t0.Add(time.Hour)
	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 2) // at t0 and t0+1m
	soon, err := consent.NewEntry(alice, feed[1].Head(), now.Add(4*time.Minute), consent.KindRevoke, &consent.RevokeBody{Grant: feed[1].Hash()})
	if err != nil {
		t.Fatal(err)
	}
	late, err := consent.NewEntry(alice, soon.Head(), now.Add(6*time.Minute), consent.KindRevoke, &consent.RevokeBody{Grant: soon.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	far, err := consent.NewEntry(testSigner(t, "mallory"), consent.Head{}, time.Unix(1<<40, 0), consent.KindIdentity,
		&consent.IdentityBody{AgeRecipient: "age1testrecipient", Role: "patient"})
	if err != nil {
		t.Fatal(err)
	}

	in := newTestIngest(t, WithClock(func() time.Time { return now }))
	for _, e := range []*consent.Entry{feed[0], feed[1], soon} {
		if res := in.accept(e); res.out != outAccepted {
			t.Fatalf("%s: %v %v", entryName(e), res.out, res.err)
		}
	}
	for _, e := range []*consent.Entry{late, far} {
		res := in.accept(e)
		if res.out != outRefused || !errors.Is(res.err, ErrFutureEntry) {
			t.Errorf("%s: %v %v, want refused with ErrFutureEntry", entryName(e), res.out, res.err)
		}
		if !strings.Contains(res.reason(), "max clock skew") {
			t.Errorf("reason %q does not name the limit", res.reason())
		}
	}

	// Once the clock has caught up, the same entry joins.
	wide := newTestIngest(t, WithClock(func() time.Time { return now }), WithMaxClockSkew(10*time.Minute))
	for _, e := range []*consent.Entry{feed[0], feed[1], soon, late} {
		if res := wide.accept(e); res.out != outAccepted {
			t.Errorf("skew 10m: %s: %v %v", entryName(e), res.out, res.err)
		}
	}
}

// TestGapCapAcrossAuthors sends entries whose predecessor never comes from
// many authors: what the peer holds for them stays within the gap limit,
// the oldest go first, and the newest still join when the gap fills.
func TestGapCapAcrossAuthors(t *testing.T) {
	const maxEntries, maxBytes = 64, 2 << 20
	const authors, perAuthor, size = 20, 6, 100 << 10
	in := newTestIngest(t, WithGapLimit(maxEntries, maxBytes))

	feeds := make([][]*consent.Entry, authors)
	sent := 0
	for i := range feeds {
		feeds[i] = paddedFeed(t, testSigner(t, fmt.Sprintf("author-%d", i)), perAuthor, size)
		for _, e := range feeds[i][1:] { // seq 1 never comes
			if res := in.accept(e); res.out != outPending {
				t.Fatalf("%s: %v %v", entryName(e), res.out, res.err)
			}
			sent += len(e.Encode())
			if gs := in.GapStats(); gs.Entries > maxEntries || gs.Bytes > maxBytes {
				t.Fatalf("gap holds %d entries, %d bytes; limit %d, %d", gs.Entries, gs.Bytes, maxEntries, maxBytes)
			}
		}
	}
	var ledgerPending int
	in.l.View(func(v *consent.View) { ledgerPending = v.Pending() })
	gs := in.GapStats()
	t.Logf("sent %d bytes of gap entries; held %d entries, %d bytes; ledger pending %d; dropped %d", sent, gs.Entries, gs.Bytes, ledgerPending, gs.Dropped)
	if ledgerPending != 0 {
		t.Errorf("the ledger holds %d pending entries, want none", ledgerPending)
	}
	if gs.Dropped == 0 || gs.Bytes < maxBytes-2*size {
		t.Errorf("gap stats %+v: nothing dropped, or far under the byte limit", gs)
	}

	// The newest author's entries are held: its first entry releases them.
	last := feeds[authors-1]
	if res := in.accept(last[0]); res.out != outAccepted || len(res.acc) != perAuthor {
		t.Errorf("newest author: %v, %d joined, want %d", res.out, len(res.acc), perAuthor)
	}
	// The oldest author's were dropped: only its first entry joins, and
	// the rest come again (by sync, here by hand).
	first := feeds[0]
	if res := in.accept(first[0]); res.out != outAccepted || len(res.acc) != 1 {
		t.Errorf("oldest author: %v, %d joined, want 1", res.out, len(res.acc))
	}
	for _, e := range first[1:] {
		if res := in.accept(e); res.out != outAccepted {
			t.Errorf("oldest author again: %s: %v %v", entryName(e), res.out, res.err)
		}
	}
	if gs := in.GapStats(); gs.Bytes > maxBytes {
		t.Errorf("gap %+v", gs)
	}
}

func TestGapCapCount(t *testing.T) {
	const maxEntries = 16
	in := newTestIngest(t, WithGapLimit(maxEntries, consent.MaxEntrySize))
	for i := range 100 {
		feed := makeFeed(t, testSigner(t, fmt.Sprintf("a%d", i)), 3)
		for _, e := range feed[1:] {
			if res := in.accept(e); res.out != outPending {
				t.Fatalf("%s: %v %v", entryName(e), res.out, res.err)
			}
		}
		if gs := in.GapStats(); gs.Entries > maxEntries {
			t.Fatalf("gap holds %d entries, limit %d", gs.Entries, maxEntries)
		}
	}
	if gs := in.GapStats(); gs.Entries != maxEntries || gs.Dropped != 200-maxEntries {
		t.Errorf("gap %+v, want %d held and %d dropped", gs, maxEntries, 200-maxEntries)
	}
}

// TestGapEquivocation: two entries for one slot in the gap are recorded
// as equivocation, as the ledger's own pending set did.
func TestGapEquivocation(t *testing.T) {
	alice := testSigner(t, "alice")
	feed := makeFeed(t, alice, 3)
	fork := signRaw(t, alice, &consent.Entry{Seq: 3, Prev: feed[1].Hash(), Time: feed[2].Time + 1, Kind: consent.KindAnchor,
		Body: mustMarshal(t, &consent.AnchorBody{Record: "rec-x", Manifest: consent.HashBytes([]byte("x"))})})

	in := newTestIngest(t)
	if res := in.accept(feed[2]); res.out != outPending {
		t.Fatalf("gap: %v", res.out)
	}
	if res := in.accept(fork); res.out != outConflict {
		t.Errorf("fork in the gap: %v %v, want conflict", res.out, res.err)
	}

	in2 := newTestIngest(t)
	if res := in2.accept(fork); res.out != outPending {
		t.Fatalf("gap: %v", res.out)
	}
	// The fork chains to seq 2: it joins with it, and the entry that
	// comes later for its slot is the equivocation.
	for i, want := range []outcome{outAccepted, outAccepted, outConflict} {
		if res := in2.accept(feed[i]); res.out != want {
			t.Fatalf("%s: %v %v, want %v", entryName(feed[i]), res.out, res.err, want)
		}
	}
	for _, in := range []*Ingest{in, in2} {
		var eq bool
		in.l.View(func(v *consent.View) { eq = v.Equivocating(alice.ID()) })
		if !eq {
			t.Error("equivocation not recorded")
		}
	}
	if gs := in2.GapStats(); gs.Entries != 0 {
		t.Errorf("gap %+v after the feed filled", gs)
	}
}

// TestAdmissionTwoHosts pushes an oversize entry and a future-dated one to
// a peer, which refuses both (the second with an ack saying why), while a normal entry gets
// through to the next peer; the same entries come to nothing by gossip
// or sync.
func TestAdmissionTwoHosts(t *testing.T) {
	a, b := newNode(t), newNode(t)
	connect(t, a.h, b.h)
	waitSynced(t, a, 1)
	client := newHost(t)
	connect(t, client, a.h)

	over := paddedEntry(t, testSigner(t, "big"), consent.Head{}, t0, 200, 4000)
	future, err := consent.NewEntry(testSigner(t, "early"), consent.Head{}, time.Now().Add(time.Hour), consent.KindIdentity,
		&consent.IdentityBody{AgeRecipient: "age1testrecipient", Role: "patient"})
	if err != nil {
		t.Fatal(err)
	}
	alice := testSigner(t, "alice")
	normal := makeFeed(t, alice, 1)[0]

	// Over the max entry size, the frame is not read: the stream is reset.
	if acks, err := Push(ctxT(t, wait), client, a.h.ID(), []*consent.Entry{over}); err == nil {
		t.Errorf("oversize push acked: %+v", acks)
	}
	acks, err := Push(ctxT(t, wait), client, a.h.ID(), []*consent.Entry{future, normal})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status AckStatus
		reason string
	}{{AckRejected, "max clock skew"}, {AckAccepted, ""}}
	for i, ack := range acks {
		if ack.Status != want[i].status || !strings.Contains(ack.Reason, want[i].reason) {
			t.Errorf("ack %d: %v %q, want %v %q", i, ack.Status, ack.Reason, want[i].status, want[i].reason)
		}
	}
	eventually(t, wait, "the normal entry reaches b", func() bool { return b.has(normal) })

	// Gossip: the validator refuses both.
	if got := b.s.validate(context.Background(), a.h.ID(), message(over.Encode())); got != pubsub.ValidationReject {
		t.Errorf("gossip oversize: %v", got)
	}
	if got := b.s.validate(context.Background(), a.h.ID(), message(future.Encode())); got != pubsub.ValidationIgnore {
		t.Errorf("gossip future: %v", got)
	}

	// Sync: a peer that holds them (its ledger took them directly) does
	// not pass them on, and the sync still brings the rest.
	c := newNode(t)
	for _, e := range []*consent.Entry{over, future} {
		if _, err := c.l.Ingest(e); err != nil {
			t.Fatal(err)
		}
	}
	carol := testSigner(t, "carol")
	appendN(t, c.l, carol, 2)
	d := newNode(t)
	connect(t, d.h, c.h)
	if _, err := d.s.SyncWith(ctxT(t, wait), c.h.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "carol's feed reaches d", func() bool { return d.head(carol.ID()).Seq == 2 })
	for _, n := range []*node{a, b, d} {
		for _, e := range []*consent.Entry{over, future} {
			if n.holdsHash(e.Hash()) {
				t.Errorf("refused entry %s is held", entryName(e))
			}
		}
	}
}
