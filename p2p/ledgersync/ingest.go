package ledgersync

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/medwallet/medwallet/consent"
)

// Stats counts what a Service did with the entries it received.
type Stats struct {
	Accepted   uint64 // entries that joined a feed through this service
	Duplicates uint64 // entries already held
	Pending    uint64 // entries held waiting for a missing predecessor
	Rejected   uint64 // malformed, unknown kind, bad signature, bad chain, oversized
	Conflicts  uint64 // equivocations: recorded as evidence, not forwarded
	Synced     uint64 // of Accepted, those that came by pull sync
	Syncs      uint64 // completed pull syncs
	SyncErrors uint64 // failed pull syncs
}

type counters struct {
	accepted, duplicates, pending, rejected, conflicts, synced, syncs, syncErrors atomic.Uint64
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	return Stats{
		Accepted:   s.n.accepted.Load(),
		Duplicates: s.n.duplicates.Load(),
		Pending:    s.n.pending.Load(),
		Rejected:   s.n.rejected.Load(),
		Conflicts:  s.n.conflicts.Load(),
		Synced:     s.n.synced.Load(),
		Syncs:      s.n.syncs.Load(),
		SyncErrors: s.n.syncErrors.Load(),
	}
}

// OnAccepted registers fn to be called with every entry that joins a feed
// through this service (gossip, sync, push, or Publish of an entry the
// ledger did not hold), once, in the order the ledger accepted them. Calls
// come from one goroutine; a slow fn delays the next calls, not ingestion.
// Entries appended with Ledger.Append are not reported. cancel removes fn.
func (s *Service) OnAccepted(fn func(e *consent.Entry)) (cancel func()) {
	s.hookMu.Lock()
	id := s.nextHook
	s.nextHook++
	s.hooks[id] = fn
	s.hookMu.Unlock()
	return func() {
		s.hookMu.Lock()
		delete(s.hooks, id)
		s.hookMu.Unlock()
	}
}

func (s *Service) dispatchEvents() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.eventSig:
		}
		for {
			s.hookMu.Lock()
			evs := s.events
			s.events = nil
			hooks := make([]func(*consent.Entry), 0, len(s.hooks))
			ids := make([]uint64, 0, len(s.hooks))
			for id := range s.hooks {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				hooks = append(hooks, s.hooks[id])
			}
			s.hookMu.Unlock()
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				for _, fn := range hooks {
					fn(e)
				}
			}
		}
	}
}

// queueEvents is called with ingestMu held.
func (s *Service) queueEvents(acc []*consent.Entry) {
	if len(acc) == 0 {
		return
	}
	s.hookMu.Lock()
	s.events = append(s.events, acc...)
	s.hookMu.Unlock()
	select {
	case s.eventSig <- struct{}{}:
	default:
	}
}

// holds reports whether e is an accepted entry of the ledger.
func (s *Service) holds(e *consent.Entry) bool {
	h := e.Hash()
	var ok bool
	s.l.View(func(v *consent.View) {
		if v.Head(e.Author).Seq >= e.Seq {
			_, ok = v.Entry(h)
		}
	})
	return ok
}

// outcome is what ingesting one received entry did.
type outcome uint8

const (
	outAccepted  outcome = iota // joined its feed (maybe releasing pending ones)
	outDuplicate                // already in its feed
	outPending                  // predecessor missing: held by the ledger until it comes
	outConflict                 // a different entry holds its place: equivocation, recorded
	outBadChain                 // comes next but does not link to the head held here
	outInvalid                  // malformed, unknown kind, bad signature, too large
	outInternal                 // the store failed
)

type result struct {
	out outcome
	acc []*consent.Entry // entries that joined a feed, e first if it did
	err error
}

func (r result) reason() string {
	switch r.out {
	case outAccepted:
		return "accepted"
	case outDuplicate:
		return "already held"
	case outPending:
		return "waiting for a missing predecessor"
	case outConflict:
		return "equivocation: another entry holds this author and seq"
	}
	if r.err != nil {
		return r.err.Error()
	}
	return "refused"
}

// accept ingests e, a decoded and verified entry, into the ledger and says
// what happened. Entries that joined a feed are queued for the hooks.
func (s *Service) accept(e *consent.Entry) result {
	h := e.Hash()
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	var head consent.Head
	var known bool
	s.l.View(func(v *consent.View) {
		head = v.Head(e.Author)
		_, known = v.Entry(h)
	})
	switch {
	case known && e.Seq <= head.Seq:
		s.n.duplicates.Add(1)
		return result{out: outDuplicate}
	case known:
		s.n.pending.Add(1)
		return result{out: outPending}
	case e.Seq == head.Seq+1 && e.Prev != head.Hash:
		s.n.rejected.Add(1)
		return result{out: outBadChain, err: &consent.ChainError{Author: e.Author, Seq: e.Seq, Want: head.Hash, Got: e.Prev}}
	case e.Seq == head.Seq+1 && e.Time < head.Time:
		s.n.rejected.Add(1)
		return result{out: outBadChain, err: &consent.EntryError{Author: e.Author, Seq: e.Seq, Err: consent.ErrTimeBackwards}}
	}
	acc, err := s.l.Ingest(e)
	s.queueEvents(acc)
	s.n.accepted.Add(uint64(len(acc)))
	var eq *consent.EquivocationError
	switch {
	case errors.As(err, &eq):
		s.n.conflicts.Add(1)
		s.log.Warn("equivocation", "author", e.Author.Short(), "seq", e.Seq)
		return result{out: outConflict, err: err}
	case err != nil && len(acc) > 0:
		s.log.Error("ledger store failed", "entry", entryName(e), "err", err)
		return result{out: outInternal, acc: acc, err: errors.New("internal error: store failed")}
	case err != nil:
		s.n.rejected.Add(1)
		return result{out: outInvalid, err: err}
	case len(acc) > 0:
		return result{out: outAccepted, acc: acc}
	}
	// Nothing joined: e waits for its predecessor (or raced with another
	// ingest of the same entry).
	var now consent.Head
	s.l.View(func(v *consent.View) { now = v.Head(e.Author) })
	if now.Seq >= e.Seq {
		s.n.duplicates.Add(1)
		return result{out: outDuplicate}
	}
	s.n.pending.Add(1)
	return result{out: outPending}
}

// decode checks a received encoding: size, strict decoding (unknown kinds
// and malformed bodies fail here) and the author's signature.
func (s *Service) decode(b []byte) (*consent.Entry, error) {
	if len(b) > s.cfg.maxMsgSize {
		return nil, fmt.Errorf("ledger entry: %w (%d bytes)", consent.ErrTooLarge, len(b))
	}
	e, err := consent.DecodeEntry(b)
	if err != nil {
		return nil, err
	}
	if err := consent.VerifyEntry(e); err != nil {
		return nil, err
	}
	return e, nil
}
