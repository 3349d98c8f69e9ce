package ledgersync

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

// Admission refusals. Each names the limit it enforces; errors.Is finds
// them in the error of a refused entry.
var (
	// ErrEntryTooLarge: the entry's encoding is over the maximum entry
	// size (WithMaxMessageSize). It also matches consent.ErrTooLarge.
	ErrEntryTooLarge = errors.New("ledgersync: entry over the max entry size")
	// ErrFutureEntry: the entry is dated more than the max clock skew
	// ahead of the peer's clock (WithMaxClockSkew). It may be offered
	// again once the peer's clock has caught up.
	ErrFutureEntry = errors.New("ledgersync: entry dated beyond the max clock skew")
)

// admit checks e, whose encoding is size bytes, against the limits every
// entry received on gossip, push or sync passes before ingestion.
func (in *Ingest) admit(e *consent.Entry, size int) error {
	if size > in.cfg.maxMsgSize {
		return fmt.Errorf("%w: %w (%d bytes, limit %d)", ErrEntryTooLarge, consent.ErrTooLarge, size, in.cfg.maxMsgSize)
	}
	now := in.cfg.now()
	if limit := now.Add(in.cfg.maxSkew).Unix(); e.Time > limit {
		return fmt.Errorf("%w: dated %s, %s ahead of this peer's clock (limit %v)", ErrFutureEntry,
			time.Unix(e.Time, 0).UTC().Format(time.RFC3339), time.Duration(e.Time-now.Unix())*time.Second, in.cfg.maxSkew)
	}
	return nil
}

// charge takes e, received from the remote from, out of its author's
// budget, before it is ingested. It charges nothing for an entry that the
// ledger holds already, one that fails another admission limit (ingestion
// refuses it), and one by a known peer or a related author. What a known
// peer sends (by sync or gossip) is charged but never refused: a sync this
// peer started with a known peer is not throttled, so a long catch-up stays
// fast, and an author cannot multiply its budget by going through several
// known peers.
func (in *Ingest) charge(e *consent.Entry, size int, from peer.ID) error {
	if !in.chargeable(e, size) {
		return nil
	}
	err := in.budget.take(e.Author, size, consentLane(e, size), in.cfg.isKnown(from))
	if err != nil {
		in.budget.refused.Add(1)
		return fmt.Errorf("%s: %w", entryName(e), err)
	}
	return nil
}

// chargeable reports whether e is charged to its author's budget.
func (in *Ingest) chargeable(e *consent.Entry, size int) bool {
	if in.budget == nil || in.cfg.known[string(e.Author)] || (in.cfg.related != nil && in.cfg.related(e.Author)) {
		return false
	}
	return in.admit(e, size) == nil && !in.holds(e)
}

// decodeCharged decodes and verifies b, received from the remote from, as
// decode does, and charges it to its author's budget (charge). An entry
// the Authoriser refuses is refused first (ErrNotAuthorised). An entry
// whose author cannot pay is refused before its signature is checked:
// verification is most of the cost of a large entry, and refusing bytes
// that merely claim an author spends nothing of that author's budget.
func (in *Ingest) decodeCharged(b []byte, from peer.ID) (*consent.Entry, error) {
	return in.decodeChargedBy(b, from, "gossip")
}

// decodeChargedBy is decodeCharged for an entry received by op (push,
// gossip): an entry the Authoriser refuses is refused before anything
// else, with an error wrapping ErrNotAuthorised.
func (in *Ingest) decodeChargedBy(b []byte, from peer.ID, op string) (*consent.Entry, error) {
	if len(b) > in.cfg.maxMsgSize {
		return nil, fmt.Errorf("%w: %w (%d bytes, limit %d)", ErrEntryTooLarge, consent.ErrTooLarge, len(b), in.cfg.maxMsgSize)
	}
	e, err := consent.DecodeEntry(b)
	if err != nil {
		return nil, err
	}
	if err := in.mayWrite(from, op, e); err != nil {
		return nil, err
	}
	if !in.cfg.isKnown(from) && in.chargeable(e, len(b)) && !in.budget.fits(e.Author, len(b), consentLane(e, len(b))) {
		in.budget.refused.Add(1)
		return nil, fmt.Errorf("%s: %w", entryName(e), ErrOverBudget)
	}
	if err := consent.VerifyEntry(e); err != nil {
		return nil, err
	}
	if err := in.charge(e, len(b), from); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeBatch is decodeChargedBy of each of encs, received from the remote
// from by op, in order: es[i] is the entry, or errs[i] why it was refused.
// The entries charged to their author's budget are checked one by one as
// decodeChargedBy does, so that a budget is charged in order and only for
// valid entries; the others (by known peers, related authors) have their
// signatures checked together (consent.VerifyBatch), which the ledger
// then does not check again.
func (in *Ingest) decodeBatch(encs [][]byte, from peer.ID, op string) ([]*consent.Entry, []error) {
	es := make([]*consent.Entry, len(encs))
	errs := make([]error, len(encs))
	var rest []int
	for i, b := range encs {
		if len(b) > in.cfg.maxMsgSize {
			errs[i] = fmt.Errorf("%w: %w (%d bytes, limit %d)", ErrEntryTooLarge, consent.ErrTooLarge, len(b), in.cfg.maxMsgSize)
			continue
		}
		e, err := consent.DecodeEntry(b)
		if err != nil {
			errs[i] = err
			continue
		}
		if in.chargeable(e, len(b)) {
			es[i], errs[i] = in.decodeChargedBy(b, from, op)
			continue
		}
		if err := in.mayWrite(from, op, e); err != nil {
			errs[i] = err
			continue
		}
		es[i] = e
		rest = append(rest, i)
	}
	if len(rest) == 0 {
		return es, errs
	}
	batch := make([]*consent.Entry, len(rest))
	for j, i := range rest {
		batch[j] = es[i]
	}
	for j, err := range consent.VerifyBatch(batch) {
		if err != nil {
			es[rest[j]], errs[rest[j]] = nil, err
		}
	}
	return es, errs
}

// BudgetStats counts the entries refused because their author was over
// its budget, and the authors whose buckets are tracked.
type BudgetStats struct {
	Refused uint64
	Authors int
}

// BudgetStats returns the state of the author budgets.
func (in *Ingest) BudgetStats() BudgetStats {
	if in.budget == nil {
		return BudgetStats{}
	}
	in.budget.mu.Lock()
	defer in.budget.mu.Unlock()
	return BudgetStats{Refused: in.budget.refused.Load(), Authors: len(in.budget.m)}
}

// authorSeq names one slot of a feed.
type authorSeq struct {
	author consent.ID
	seq    uint64
}

// gapEntry is one entry held while it waits for its predecessor.
type gapEntry struct {
	e    *consent.Entry
	h    consent.Hash
	size int
	el   *list.Element
}

// gap holds entries whose predecessor is missing, across all authors,
// within a count and a byte budget: past either, the oldest is dropped. A
// dropped entry is not lost to the network: the sync with the next peer
// fetches the feed from the held head. The ledger's own pending set is
// never used by ingestion, so nothing else grows with gaps.
type gap struct {
	maxEntries, maxBytes int
	bytes                int
	order                *list.List // of *gapEntry, oldest first
	bySlot               map[authorSeq]*gapEntry
	dropped              uint64
}

func newGap(maxEntries, maxBytes int) *gap {
	return &gap{maxEntries: maxEntries, maxBytes: maxBytes, order: list.New(), bySlot: make(map[authorSeq]*gapEntry)}
}

// get returns the entry held for a slot.
func (g *gap) get(s authorSeq) *gapEntry { return g.bySlot[s] }

// add holds e, dropping the oldest entries until it fits the budget.
func (g *gap) add(e *consent.Entry, h consent.Hash, size int) {
	for g.order.Len() > 0 && (g.order.Len()+1 > g.maxEntries || g.bytes+size > g.maxBytes) {
		g.remove(g.order.Front().Value.(*gapEntry))
		g.dropped++
	}
	ge := &gapEntry{e: e, h: h, size: size}
	ge.el = g.order.PushBack(ge)
	g.bySlot[authorSeq{e.Author, e.Seq}] = ge
	g.bytes += size
}

func (g *gap) remove(ge *gapEntry) {
	g.order.Remove(ge.el)
	delete(g.bySlot, authorSeq{ge.e.Author, ge.e.Seq})
	g.bytes -= ge.size
}

// GapStats is what the gap holds: entries waiting for a missing
// predecessor, their bytes, and how many were dropped to stay in budget.
type GapStats struct {
	Entries int
	Bytes   int
	Dropped uint64
}

// GapStats returns the state of the gap.
func (in *Ingest) GapStats() GapStats {
	in.ingestMu.Lock()
	defer in.ingestMu.Unlock()
	return GapStats{Entries: in.gap.order.Len(), Bytes: in.gap.bytes, Dropped: in.gap.dropped}
}

// refusalLogEvery is how often a remote's refusals are logged at most.
const refusalLogEvery = time.Minute

// maxRefusalRemotes bounds the remotes whose last refusal line is
// remembered; past it, those older than refusalLogEvery are forgotten.
const maxRefusalRemotes = 1 << 12

// refusals rate-limits the info lines about refused requests: one per
// remote per refusalLogEvery.
type refusals struct {
	mu   sync.Mutex
	last map[peer.ID]time.Time
}

// due reports whether a line about remote may be logged now, and if so
// notes it.
func (r *refusals) due(remote peer.ID, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.last[remote]; ok && now.Sub(t) < refusalLogEvery {
		return false
	}
	if r.last == nil {
		r.last = make(map[peer.ID]time.Time)
	}
	if len(r.last) >= maxRefusalRemotes {
		for p, t := range r.last {
			if now.Sub(t) >= refusalLogEvery {
				delete(r.last, p)
			}
		}
		if len(r.last) >= maxRefusalRemotes {
			return false
		}
	}
	r.last[remote] = now
	return true
}

// feedTag names author's feed in logs without naming the author: the first
// 6 bytes of a hash of the ID.
func feedTag(author consent.ID) string {
	h := consent.HashBytes([]byte("medwallet feed tag\n" + string(author)))
	return h.String()[:12]
}

// notAuthorised counts a refusal of the Authoriser and logs it at info,
// at most once a minute per remote. op names what was refused (heads,
// fetch, push, sync, gossip).
func (in *Ingest) notAuthorised(remote peer.ID, op string, author consent.ID) {
	in.n.notAuthorised.Add(1)
	if !in.refused.due(remote, time.Now()) {
		return
	}
	args := []any{"peer", shortPeer(remote), "op", op}
	if author != "" {
		args = append(args, "feed", feedTag(author))
	}
	in.log.Info("ledger request refused: not authorised", args...)
}

// mayRead asks the Authoriser, if any, whether remote may read author's feed.
func (in *Ingest) mayRead(remote peer.ID, author consent.ID) bool {
	return in.cfg.auth == nil || in.cfg.auth.MayRead(remote, author)
}

// mayWrite asks the Authoriser, if any, whether this peer stores e,
// received from remote by op; a refusal is counted and logged, and wraps
// ErrNotAuthorised.
func (in *Ingest) mayWrite(remote peer.ID, op string, e *consent.Entry) error {
	if in.cfg.auth == nil {
		return nil
	}
	err := in.cfg.auth.MayWrite(remote, e)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotAuthorised) {
		err = fmt.Errorf("%w: %w", ErrNotAuthorised, err)
	}
	in.notAuthorised(remote, op, e.Author)
	return err
}

// RefusedError is a peer's typed refusal of a ledger request: Code is one
// of the refusal codes (CodeNotAuthorised, CodeRecoveryCap). It wraps
// ErrNotAuthorised, or ErrRecoveryCap, for that code.
type RefusedError struct {
	Peer   peer.ID
	Code   string
	Detail string // the peer's words; never holds entry bodies
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("peer %s refused: %s", e.Peer.ShortString(), e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the sentinel error of the refusal code.
func (e *RefusedError) Unwrap() error {
	switch e.Code {
	case CodeNotAuthorised:
		return ErrNotAuthorised
	case CodeRecoveryCap:
		return ErrRecoveryCap
	}
	return nil
}
