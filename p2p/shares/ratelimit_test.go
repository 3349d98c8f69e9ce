package shares

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newLimitFixture is newFixture with the peer's service registered again
// with a hand-moved clock and opts.
func newLimitFixture(t *testing.T, opts ...Option) (*fixture, *testClock, *Service) {
	t.Helper()
	f := newFixture(t)
	clock := &testClock{t: time.Now()}
	svc := NewService(f.peer.h, f.st, f.ledger, f.peer.signer,
		append([]Option{WithPublish(func(e *consent.Entry) { f.published <- e }), WithClock(clock.now)}, opts...)...)
	t.Cleanup(svc.Close)
	return f, clock, svc
}

// rawGet asks for share id and returns the peer's response frame.
func (f *fixture) rawGet(t *testing.T, by *actor, id vault.ShareID, req *consent.Request) response {
	t.Helper()
	s, _, err := open(context.Background(), by.h, f.peer.h.ID(), request{Op: OpGet, Share: id[:], Access: req.Encode()}, transferBudget)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	_ = s.CloseWrite()
	r, _ := readResponse(s, bufio.NewReader(s), f.peer.h.ID())
	return r
}

// A stranger hammering gets of its own share is refused "rate-limited"
// past its burst, before anything is decided or logged, while another
// requester is served as before; after a pause the stranger is served
// again.
func TestGetRateLimitPerRequester(t *testing.T) {
	const burst = 5
	f, clock, _ := newLimitFixture(t, WithGetLimit(1, burst))
	ctx := context.Background()
	mine := fakeShare(t, f.record, []byte("the stranger's own tiny share"))
	// The stranger stores a share of its own "record" and reads it back.
	id, err := Put(ctx, f.stranger.h, f.peer.h.ID(), f.record, bytes.NewReader(mine))
	if err != nil {
		t.Fatal(err)
	}
	own := func() *consent.Request {
		r := f.request(t, f.stranger, "patient/*.rs", "TREAT")
		r.Owner = f.stranger.id
		r, err := consent.SignRequest(f.stranger.signer, *r)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	served, limited := 0, 0
	for range 3 * burst {
		rc, err := Get(ctx, f.stranger.h, f.peer.h.ID(), id, own())
		switch {
		case err == nil:
			if !bytes.Equal(readAll(t, rc), mine) {
				t.Fatal("served bytes differ")
			}
			served++
		case errors.Is(err, ErrRateLimited):
			limited++
		default:
			t.Fatalf("get: %v", err)
		}
	}
	if served != burst || limited != 2*burst {
		t.Fatalf("served %d, rate-limited %d; want %d and %d", served, limited, burst, 2*burst)
	}
	// Nothing decided, nothing logged for the refused gets.
	if n := len(f.accessesAbout(f.stranger.id)); n != burst {
		t.Fatalf("peer feed has %d entries, want %d (one per get served)", n, burst)
	}

	// Another requester is not limited by the stranger's gets.
	g := f.patientAppends(t, consent.KindGrant, &consent.Grant{Grantee: f.clinician.id, Records: []string{f.record},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", NotBefore: time.Now().Add(-time.Minute).Unix()})
	pid, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, []byte("patient's"))))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := Get(ctx, f.clinician.h, f.peer.h.ID(), pid, f.request(t, f.clinician, "patient/*.rs", "TREAT"))
	if err != nil {
		t.Fatalf("the clinician's get while the stranger is limited: %v", err)
	}
	readAll(t, rc)
	if feed := f.peerFeed(); len(feed) != 1 {
		t.Fatalf("peer's sub-feed about the patient has %d access entries, want the clinician's allow", len(feed))
	} else if a := accessBody(t, feed[0]); !a.Allow || a.Grant != g.Hash() {
		t.Fatalf("logged %+v, want the clinician's allow", a)
	}

	// The bucket refills: one get a second.
	clock.add(2 * time.Second)
	for i := range 3 {
		_, err := Get(ctx, f.stranger.h, f.peer.h.ID(), id, own())
		if want := i < 2; (err == nil) != want {
			t.Fatalf("get %d after 2 s: %v", i, err)
		}
	}
}

// The buckets stay bounded however many identities ask.
func TestGetLimiterBounded(t *testing.T) {
	var l getLimiter
	l.burst = 2
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 * MaxGetBuckets {
		id := consent.ID(fmt.Sprintf("requester-%d", i))
		if !l.allow(id, now) {
			t.Fatalf("a new identity's first get refused")
		}
		if n := l.size(); n > MaxGetBuckets {
			t.Fatalf("%d buckets after %d identities, want at most %d", n, i+1, MaxGetBuckets)
		}
	}
	// A requester seen recently keeps its bucket: its burst is spent.
	hot := consent.ID("hot")
	for l.allow(hot, now) {
	}
	for i := range MaxGetBuckets / 2 {
		l.allow(consent.ID(fmt.Sprintf("other-%d", i)), now)
	}
	if l.allow(hot, now) {
		t.Fatal("a spent bucket was forgotten while fewer than MaxGetBuckets others asked")
	}
}

// Denials repeated within a minute: one entry logs the first, the repeats
// are answered with its hash and counted, and one summary entry logs the
// count when the window closes. The audit holds, counting every denial.
// Allowed gets are never aggregated.
func TestRepeatedDenialsCounted(t *testing.T) {
	f, clock, svc := newLimitFixture(t)
	ctx := context.Background()
	id, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, []byte("ciphertext"))))
	if err != nil {
		t.Fatal(err)
	}
	const repeats = 6
	var first consent.Hash
	for i := range repeats {
		r := f.rawGet(t, f.clinician, id, f.request(t, f.clinician, "patient/*.rs", "TREAT"))
		if r.Code != "denied" || r.Reason != consent.ReasonNoGrant || len(r.Entry) != 32 {
			t.Fatalf("get %d: %+v, want a no-grant denial naming its entry", i, r)
		}
		if i == 0 {
			copy(first[:], r.Entry)
		} else if !bytes.Equal(r.Entry, first[:]) {
			t.Fatalf("repeat %d names entry %x, want the first denial's %s", i, r.Entry, first)
		}
		clock.add(5 * time.Second)
	}
	if feed := f.peerFeed(); len(feed) != 1 || feed[0].Hash() != first {
		t.Fatalf("peer feed has %d entries, want the first denial only", len(feed))
	}
	// Another reason is another run.
	f.rawGet(t, f.clinician, id, f.request(t, f.clinician, "patient/*.rs", "NOPE"))
	if n := len(f.peerFeed()); n != 2 {
		t.Fatalf("peer feed has %d entries, want 2", n)
	}

	// The window closes: the next decision first logs the summary.
	clock.add(consent.RepeatWindow)
	last := f.request(t, f.stranger, "patient/*.rs", "TREAT")
	if r := f.rawGet(t, f.stranger, id, last); r.Code != "denied" {
		t.Fatalf("stranger: %+v", r)
	}
	feed := f.peerFeed()
	if len(feed) != 4 {
		t.Fatalf("peer feed has %d entries, want first, other reason, summary, stranger", len(feed))
	}
	sum := accessBody(t, feed[2])
	t0 := feed[0].Time
	if sum.Allow || sum.Reason != consent.ReasonNoGrant || sum.Repeats == nil ||
		*sum.Repeats != (consent.Repeats{Count: repeats - 1, First: t0 + 5, Last: t0 + 5*(repeats-1), Of: first}) {
		t.Fatalf("summary %+v repeats %+v, want %d no-grant denials after %s", sum, sum.Repeats, repeats-1, first)
	}

	// The stranger's denial again, three times: counted.
	for range 3 {
		f.rawGet(t, f.stranger, id, f.request(t, f.stranger, "patient/*.rs", "TREAT"))
	}

	// Allowed gets are each their own entry.
	f.patientAppends(t, consent.KindGrant, &consent.Grant{Grantee: f.clinician.id, Records: []string{f.record},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", NotBefore: time.Now().Add(-time.Minute).Unix()})
	seen := map[string]bool{}
	for i := range 3 {
		r := f.rawGet(t, f.clinician, id, f.request(t, f.clinician, "patient/*.rs", "TREAT"))
		if !r.OK || seen[string(r.Entry)] {
			t.Fatalf("allowed get %d: %+v, want an allow with an entry of its own", i, r)
		}
		seen[string(r.Entry)] = true
	}
	if n := len(f.peerFeed()); n != 7 {
		t.Fatalf("peer feed has %d entries, want 3 more allows", n)
	}

	// A run cut short by the service closing is summarised then.
	svc.closeRepeats()
	feed = f.peerFeed()
	if len(feed) != 8 {
		t.Fatalf("peer feed has %d entries after close, want the stranger's summary too", len(feed))
	}
	if s := accessBody(t, feed[7]); s.Repeats == nil || s.Repeats.Count != 3 || s.Repeats.Of != feed[3].Hash() {
		t.Fatalf("closing summary %+v", s.Repeats)
	}

	rep := consent.AuditLedger(f.ledger.Entries())
	if !rep.OK() || len(rep.Findings) != 0 {
		t.Fatalf("audit: %+v", rep.Findings)
	}
	// 1 + 5 no-grant by the clinician, 1 purpose, 1 + 3 no-grant by the
	// stranger; 3 allowed.
	if rep.Denied != 11 || rep.Allowed != 3 || rep.Accesses != 14 || rep.Repeated != 8 || rep.Summaries != 2 {
		t.Fatalf("audit counted %+v", rep)
	}
}

// When more runs are open than the bound, the oldest is summarised at
// once, and the audit still holds.
func TestRepeatRunsBounded(t *testing.T) {
	f, _, svc := newLimitFixture(t)
	svc.reps.max = 1
	ctx := context.Background()
	id, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, []byte("ciphertext"))))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.rawGet(t, f.clinician, id, f.request(t, f.clinician, "patient/*.rs", "TREAT"))
	}
	f.rawGet(t, f.stranger, id, f.request(t, f.stranger, "patient/*.rs", "TREAT"))
	feed := f.peerFeed()
	if len(feed) != 3 {
		t.Fatalf("peer feed has %d entries, want clinician, stranger, clinician's summary", len(feed))
	}
	if s := accessBody(t, feed[2]); s.Repeats == nil || s.Repeats.Count != 2 || s.Repeats.Of != feed[0].Hash() {
		t.Fatalf("summary %+v", s.Repeats)
	}
	svc.decideMu.Lock()
	n := len(svc.reps.runs)
	svc.decideMu.Unlock()
	if n != 1 {
		t.Fatalf("%d runs tracked, want 1", n)
	}
	if rep := consent.AuditLedger(f.ledger.Entries()); !rep.OK() || len(rep.Findings) != 0 || rep.Denied != 4 {
		t.Fatalf("audit: %+v", rep)
	}
}
