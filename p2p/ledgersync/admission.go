package ledgersync

import (
	"container/list"
	"errors"
	"fmt"
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
// whose author cannot pay is refused before its signature is checked:
// verification is most of the cost of a large entry, and refusing bytes
// that merely claim an author spends nothing of that author's budget.
func (in *Ingest) decodeCharged(b []byte, from peer.ID) (*consent.Entry, error) {
	if len(b) > in.cfg.maxMsgSize {
		return nil, fmt.Errorf("%w: %w (%d bytes, limit %d)", ErrEntryTooLarge, consent.ErrTooLarge, len(b), in.cfg.maxMsgSize)
	}
	e, err := consent.DecodeEntry(b)
	if err != nil {
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
