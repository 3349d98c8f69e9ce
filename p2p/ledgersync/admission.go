package ledgersync

import (
	"container/list"
	"errors"
	"fmt"
	"time"

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
