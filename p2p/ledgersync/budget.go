package ledgersync

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// ErrOverBudget: the entry's author has spent its budget of new entries on
// this peer (WithAuthorBudget). It may be offered again later: the budget
// refills with time.
var ErrOverBudget = errors.New("ledgersync: author over its ledger budget")

// Budget is a token bucket per author, in entries and in bytes of entry
// encodings: an author may send Entries and Bytes at once, and the bucket
// refills by EntriesPerHour and BytesPerHour. An entry is admitted only if
// both buckets hold enough; it then takes one entry and its size.
type Budget struct {
	Entries        int
	Bytes          int
	EntriesPerHour int
	BytesPerHour   int
}

// Default budgets: an author may add this much in an hour, all at once
// if it likes. A patient who adds 50 records and grants each one, then
// grants them all at once, writes 102 entries and about 60 KiB (identity
// card, anchors of 0.2 KiB, one-record grants of 0.6 KiB, a 50-record
// grant of 17 KiB; TestLegitimateBurst); the largest grant a wallet
// writes is 350 KiB. The bulk budget is twenty times that burst in entries
// and over a hundred times in bytes. The consent lane keeps room for
// revocations and other consent entries once the bulk budget is spent.
var (
	DefaultBulkBudget    = Budget{Entries: 2048, Bytes: 8 << 20, EntriesPerHour: 2048, BytesPerHour: 8 << 20}
	DefaultConsentBudget = Budget{Entries: 64, Bytes: 1 << 20, EntriesPerHour: 64, BytesPerHour: 1 << 20}
)

// HourlyBudget is the budget of entries and bytes an hour, all of which
// may come at once.
func HourlyBudget(entries, bytes int) Budget {
	return Budget{Entries: entries, Bytes: bytes, EntriesPerHour: entries, BytesPerHour: bytes}
}

// maxConsentLaneEntry is the largest entry the consent lane takes; larger
// grants are charged to the bulk budget.
const maxConsentLaneEntry = 64 << 10

// maxBudgetAuthors bounds the authors whose buckets are remembered; past
// it, full buckets are forgotten first (an author that is forgotten starts
// again with a full bucket, which is what a full bucket is).
const maxBudgetAuthors = 1 << 16

func (b Budget) valid() error {
	if b.Entries < 1 || b.Bytes < consentMinEntry || b.EntriesPerHour < 0 || b.BytesPerHour < 0 {
		return fmt.Errorf("ledgersync: budget %+v: want at least 1 entry and %d bytes, and no negative rate", b, consentMinEntry)
	}
	return nil
}

// consentMinEntry is the least budget in bytes: a revocation must fit.
const consentMinEntry = 1 << 10

// consentLane reports whether e is charged to the consent lane: identity
// cards, grants, revocations, credentials (and their revocations),
// break-glass declarations and reviews, when small.
func consentLane(e *consent.Entry, size int) bool {
	if size > maxConsentLaneEntry {
		return false
	}
	switch e.Kind {
	case consent.KindIdentity, consent.KindGrant, consent.KindRevoke, consent.KindCredential,
		consent.KindBreakGlass, consent.KindReview:
		return true
	}
	return false
}

// bucket is one token bucket.
type bucket struct {
	n, b float64 // entries and bytes available
}

type authorBuckets struct {
	bulk, cons bucket
	last       time.Time
}

// budgets holds the buckets of every author seen lately.
type budgets struct {
	bulk, cons Budget
	now        func() time.Time

	mu sync.Mutex
	m  map[consent.ID]*authorBuckets

	refused atomic.Uint64
}

func newBudgets(bulk, cons Budget, now func() time.Time) *budgets {
	return &budgets{bulk: bulk, cons: cons, now: now, m: make(map[consent.ID]*authorBuckets)}
}

func (b *bucket) refill(bg Budget, d time.Duration) {
	h := d.Hours()
	b.n = min(float64(bg.Entries), b.n+h*float64(bg.EntriesPerHour))
	b.b = min(float64(bg.Bytes), b.b+h*float64(bg.BytesPerHour))
}

func (b *bucket) full(bg Budget) bool { return b.n >= float64(bg.Entries) && b.b >= float64(bg.Bytes) }

// refilled returns author's buckets refilled to now, or nil for an
// author not seen lately (whose buckets are full); called with mu held.
func (bs *budgets) refilled(author consent.ID, now time.Time) *authorBuckets {
	ab := bs.m[author]
	if ab != nil {
		if d := now.Sub(ab.last); d > 0 {
			ab.bulk.refill(bs.bulk, d)
			ab.cons.refill(bs.cons, d)
			ab.last = now
		}
	}
	return ab
}

func (b *bucket) fits(size int) bool { return b.n >= 1 && b.b >= float64(size) }

// fits reports whether author's buckets would pay for one entry of size
// bytes, without charging it.
func (bs *budgets) fits(author consent.ID, size int, lane bool) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	ab := bs.refilled(author, bs.now())
	return ab == nil || (lane && ab.cons.fits(size)) || ab.bulk.fits(size)
}

// take charges one entry of size bytes to author's bucket. Unless force,
// an entry the bucket cannot pay for is refused with ErrOverBudget; with
// force (entries a known peer sent) it is always taken and empties the
// bucket at most.
func (bs *budgets) take(author consent.ID, size int, lane bool, force bool) error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	now := bs.now()
	ab := bs.refilled(author, now)
	if ab == nil {
		if len(bs.m) >= maxBudgetAuthors {
			bs.forget(now)
		}
		ab = &authorBuckets{bulk: bucket{float64(bs.bulk.Entries), float64(bs.bulk.Bytes)},
			cons: bucket{float64(bs.cons.Entries), float64(bs.cons.Bytes)}, last: now}
		bs.m[author] = ab
	}
	pay := func(b *bucket) {
		b.n = max(0, b.n-1)
		b.b = max(0, b.b-float64(size))
	}
	switch {
	case lane && ab.cons.fits(size):
		pay(&ab.cons)
	case ab.bulk.fits(size) || force:
		pay(&ab.bulk)
	default:
		return fmt.Errorf("%w: %d bytes; it refills at %d entries and %d KiB an hour", ErrOverBudget,
			size, bs.bulk.EntriesPerHour, bs.bulk.BytesPerHour>>10)
	}
	return nil
}

// forget drops the buckets that are full again, and if that is not
// enough, any; called with mu held.
func (bs *budgets) forget(now time.Time) {
	for a, ab := range bs.m {
		d := now.Sub(ab.last)
		bulk, cons := ab.bulk, ab.cons
		bulk.refill(bs.bulk, d)
		cons.refill(bs.cons, d)
		if bulk.full(bs.bulk) && cons.full(bs.cons) {
			delete(bs.m, a)
		}
	}
	for a := range bs.m {
		if len(bs.m) < maxBudgetAuthors*3/4 {
			break
		}
		delete(bs.m, a)
	}
}
