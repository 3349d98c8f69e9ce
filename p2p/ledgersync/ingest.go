package ledgersync

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/medwallet/medwallet/consent"
)

// Ingest is what the gossip, sync and push services of one ledger share:
// the ledger, the checks every received entry passes before it joins a
// feed, the counters, and the OnAccepted hooks. Ingestion is serialised, so
// hooks see entries in feed order.
type Ingest struct {
	l    *consent.Ledger
	cfg  config
	log  *slog.Logger
	life *life

	ingestMu sync.Mutex // serialises ingest and event queueing, so hooks see feed order

	hookMu     sync.Mutex
	hooks      map[uint64]func(*consent.Entry)
	nextHook   uint64
	events     []*consent.Entry
	eventSig   chan struct{}
	proofHooks map[uint64]func(*consent.EquivocationProof)
	proofs     []*consent.EquivocationProof // detected, not yet handed to proofHooks

	gap     *gap     // guarded by ingestMu
	budget  *budgets // per-author budgets of new entries (budget.go)
	refused refusals // when the last refusal of each remote was logged

	n counters
}

// NewIngest returns the Ingest of l; WithMaxMessageSize, WithClock,
// WithMaxClockSkew, WithGapLimit and WithLogger apply. Close stops the delivery of OnAccepted calls.
func NewIngest(l *consent.Ledger, opts ...Option) (*Ingest, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	in := &Ingest{
		l: l, cfg: cfg, log: cfg.logger.With("svc", "ledgersync"), life: newLife(cfg.parent),
		hooks:      make(map[uint64]func(*consent.Entry)),
		eventSig:   make(chan struct{}, 1),
		gap:        newGap(cfg.gapEntries, cfg.gapBytes),
		proofHooks: make(map[uint64]func(*consent.EquivocationProof)),
		budget:     newBudgets(cfg.bulk, cfg.cons, cfg.now),
	}
	in.life.goroutine(in.dispatchEvents)
	return in, nil
}

// Close stops the delivery of OnAccepted calls and waits for the one
// running; it is safe to call twice.
func (in *Ingest) Close() error {
	if in.life.close() {
		in.life.end()
	}
	return nil
}

// Stats counts what the services did with the entries they received.
type Stats struct {
	Accepted   uint64 // entries that joined a feed through this service
	Duplicates uint64 // entries already held
	Pending    uint64 // entries held waiting for a missing predecessor
	Rejected   uint64 // malformed, unknown kind, bad signature, bad chain, oversized, by an equivocating author
	Conflicts  uint64 // equivocations: recorded as evidence, not forwarded
	Synced     uint64 // of Accepted, those that came by pull sync
	Syncs      uint64 // completed pull syncs
	SyncErrors uint64 // failed pull syncs
	// NotAuthorised counts the requests and entries the Authoriser
	// refused: heads pages, fetches, pushed, synced and gossiped entries.
	NotAuthorised uint64
	PushBatches   uint64 // entry frames received by push
	PushEntries   uint64 // entries received by push
	Fetches       uint64 // fetch requests served
	Served        uint64 // entries sent in answer to fetches
}

type counters struct {
	accepted, duplicates, pending, rejected, conflicts, synced, syncs, syncErrors atomic.Uint64
	notAuthorised, pushBatches, pushEntries, fetches, served                      atomic.Uint64
}

// Stats returns the counters of every service on this Ingest.
func (in *Ingest) Stats() Stats {
	return Stats{
		Accepted:   in.n.accepted.Load(),
		Duplicates: in.n.duplicates.Load(),
		Pending:    in.n.pending.Load(),
		Rejected:   in.n.rejected.Load(),
		Conflicts:  in.n.conflicts.Load(),
		Synced:     in.n.synced.Load(),
		Syncs:      in.n.syncs.Load(),
		SyncErrors: in.n.syncErrors.Load(),

		NotAuthorised: in.n.notAuthorised.Load(),
		PushBatches:   in.n.pushBatches.Load(),
		PushEntries:   in.n.pushEntries.Load(),
		Fetches:       in.n.fetches.Load(),
		Served:        in.n.served.Load(),
	}
}

// OnAccepted registers fn to be called with every entry that joins a feed
// through a service on this Ingest (gossip, sync, push, or Publish of an entry the
// ledger did not hold), once, in the order the ledger accepted them. Calls
// come from one goroutine; a slow fn delays the next calls, not ingestion.
// Entries appended with Ledger.Append are not reported. cancel removes fn.
func (in *Ingest) OnAccepted(fn func(e *consent.Entry)) (cancel func()) {
	in.hookMu.Lock()
	id := in.nextHook
	in.nextHook++
	in.hooks[id] = fn
	in.hookMu.Unlock()
	return func() {
		in.hookMu.Lock()
		delete(in.hooks, id)
		in.hookMu.Unlock()
	}
}

func (in *Ingest) dispatchEvents() {
	for {
		select {
		case <-in.life.ctx.Done():
			return
		case <-in.eventSig:
		}
		for {
			in.hookMu.Lock()
			evs, proofs := in.events, in.proofs
			in.events, in.proofs = nil, nil
			hooks, proofHooks := sortedHooks(in.hooks), sortedHooks(in.proofHooks)
			in.hookMu.Unlock()
			if len(evs) == 0 && len(proofs) == 0 {
				break
			}
			for _, e := range evs {
				for _, fn := range hooks {
					fn(e)
				}
			}
			for _, p := range proofs {
				for _, fn := range proofHooks {
					fn(p)
				}
			}
		}
	}
}

// queueEvents is called with ingestMu held.
func (in *Ingest) queueEvents(acc []*consent.Entry) {
	if len(acc) == 0 {
		return
	}
	in.hookMu.Lock()
	in.events = append(in.events, acc...)
	in.hookMu.Unlock()
	select {
	case in.eventSig <- struct{}{}:
	default:
	}
}

// holds reports whether e is an accepted entry of the ledger.
func (in *Ingest) holds(e *consent.Entry) bool {
	h := e.Hash()
	var ok bool
	in.l.View(func(v *consent.View) {
		got, held := v.HashAt(e.Author, e.Seq)
		ok = held && got == h
	})
	return ok
}

// outcome is what ingesting one received entry did.
type outcome uint8

const (
	outAccepted  outcome = iota // joined its feed (maybe releasing pending ones)
	outDuplicate                // already in its feed
	outPending                  // predecessor missing: held in the gap until it comes
	outConflict                 // a different entry holds its place: equivocation, recorded
	outBadChain                 // comes next but does not link to the head held here
	outInvalid                  // malformed, unknown kind, bad signature, too large
	outRefused                  // over an admission limit (ErrEntryTooLarge, ErrFutureEntry)
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
		if errors.Is(r.err, ErrEquivocatingAuthor) {
			return r.err.Error()
		}
		return "equivocation: another entry holds this author and seq"
	}
	if r.err != nil {
		return r.err.Error()
	}
	return "refused"
}

// accept ingests e, a decoded and verified entry, into the ledger and says
// what happened. Entries that joined a feed are queued for the hooks. An
// entry over an admission limit is refused; one whose predecessor is
// missing is held in the gap, and joins when the predecessor does.
func (in *Ingest) accept(e *consent.Entry) result {
	enc := e.Encode()
	if err := in.admit(e, len(enc)); err != nil {
		in.n.rejected.Add(1)
		return result{out: outRefused, err: err}
	}
	in.ingestMu.Lock()
	defer in.ingestMu.Unlock()
	return in.acceptLocked(e, consent.HashBytes(enc), len(enc))
}

// acceptBatch is accept of each entry of es, in order, with the same
// outcomes, but the runs of entries that extend their feeds (the usual
// case: a feed pushed or fetched in order) join the ledger together, in
// one store transaction (consent.Ledger.IngestBatch). The entries are
// decoded and verified; verifying them with consent.VerifyBatch first
// spares the ledger a second check.
//
// With stop set, it stops after the first entry whose outcome stop
// reports true: n is how many entries it took (the rest have no result).
func (in *Ingest) acceptBatch(es []*consent.Entry, stop func(outcome) bool) (res []result, n int) {
	res = make([]result, len(es))
	sizes := make([]int, len(es))
	hashes := make([]consent.Hash, len(es))
	for i, e := range es {
		enc := e.Encode()
		sizes[i], hashes[i] = len(enc), consent.HashBytes(enc)
	}
	in.ingestMu.Lock()
	defer in.ingestMu.Unlock()
	var run []int                          // indexes of the entries of the current run
	heads := map[consent.ID]consent.Head{} // each author's head once the run joins
	// flush commits the run and returns 1 + the index of the first entry
	// of it whose outcome stops the batch, or 0.
	flush := func() int {
		if len(run) == 0 {
			return 0
		}
		in.commitRun(es, run, res)
		at := 0
		for _, i := range run {
			if stop != nil && stop(res[i].out) {
				at = i + 1
				break
			}
		}
		run = run[:0]
		clear(heads)
		return at
	}
	for i, e := range es {
		if in.extends(e, hashes[i], heads) && in.admit(e, sizes[i]) == nil {
			run = append(run, i)
			heads[e.Author] = consent.Head{Seq: e.Seq, Hash: hashes[i], Time: e.Time}
			continue
		}
		// Anything else depends on what the run does: commit it first,
		// then take e alone.
		if at := flush(); at > 0 {
			return res, at
		}
		if err := in.admit(e, sizes[i]); err != nil {
			in.n.rejected.Add(1)
			res[i] = result{out: outRefused, err: err}
		} else {
			res[i] = in.acceptLocked(e, hashes[i], sizes[i])
		}
		if stop != nil && stop(res[i].out) {
			return res, i + 1
		}
	}
	if at := flush(); at > 0 {
		return res, at
	}
	return res, len(es)
}

// extends reports whether e, whose hash is h, is the next entry of its
// feed after heads[e.Author] (or, for an author not in heads, the head
// the ledger holds) and nothing about its slot waits in the gap, so that
// ingesting it can do nothing but join its feed. Called with ingestMu held.
func (in *Ingest) extends(e *consent.Entry, h consent.Hash, heads map[consent.ID]consent.Head) bool {
	if in.gap.get(authorSeq{e.Author, e.Seq}) != nil || in.gap.get(authorSeq{e.Author, e.Seq + 1}) != nil {
		return false
	}
	head, inRun := heads[e.Author]
	ok := true
	in.l.View(func(v *consent.View) {
		if !inRun {
			head = v.Head(e.Author)
		}
		known := v.Has(h)
		ok = !known && !v.Equivocating(e.Author)
	})
	return ok && e.Seq == head.Seq+1 && e.Prev == head.Hash && e.Time >= head.Time
}

// commitRun ingests the entries es[i] for i in run, which extend their
// feeds in order, in one IngestBatch, and sets their results. Called with
// ingestMu held.
func (in *Ingest) commitRun(es []*consent.Entry, run []int, res []result) {
	batch := make([]*consent.Entry, len(run))
	for j, i := range run {
		batch[j] = es[i]
	}
	acc, err := in.l.IngestBatch(batch)
	in.queueEvents(acc)
	in.n.accepted.Add(uint64(len(acc)))
	joined := make(map[*consent.Entry]bool, len(acc))
	for _, a := range acc {
		joined[a] = true
	}
	var berr *consent.BatchError
	errors.As(err, &berr)
	for j, i := range run {
		var eerr error
		if berr != nil && berr.Errs != nil {
			eerr = berr.Errs[j]
		}
		switch {
		case berr != nil && berr.Store != nil:
			in.log.Error("ledger store failed", "entry", entryName(es[i]), "err", berr.Store)
			var a []*consent.Entry
			if joined[es[i]] {
				a = []*consent.Entry{es[i]}
			}
			res[i] = result{out: outInternal, acc: a, err: errors.New("internal error: store failed")}
		case eerr != nil:
			var eq *consent.EquivocationError
			if errors.As(eerr, &eq) {
				in.noteEquivocation(eq.Proof)
				res[i] = result{out: outConflict, err: eerr}
				continue
			}
			in.n.rejected.Add(1)
			res[i] = result{out: outInvalid, err: eerr}
		case joined[es[i]]:
			res[i] = result{out: outAccepted, acc: []*consent.Entry{es[i]}}
		case err != nil && berr == nil:
			// Not a BatchError: treat as the store's.
			in.log.Error("ledger store failed", "entry", entryName(es[i]), "err", err)
			res[i] = result{out: outInternal, err: errors.New("internal error: store failed")}
		default:
			in.n.pending.Add(1)
			res[i] = result{out: outPending}
		}
	}
}

// acceptLocked is accept of e, whose hash is h and encoding size bytes,
// past the admission limits; called with ingestMu held.
func (in *Ingest) acceptLocked(e *consent.Entry, h consent.Hash, size int) result {
	var head consent.Head
	var known, equivocated bool
	in.l.View(func(v *consent.View) {
		head = v.Head(e.Author)
		known = v.Has(h)
		equivocated = v.Equivocating(e.Author)
	})
	switch {
	case equivocated:
		// Nothing more of an author proven to equivocate is taken in or
		// forwarded (outConflict: gossip ignores it, sync skips the feed).
		in.n.rejected.Add(1)
		return result{out: outConflict, err: fmt.Errorf("%w (author %s)", ErrEquivocatingAuthor, e.Author.Short())}
	case known && e.Seq <= head.Seq:
		in.n.duplicates.Add(1)
		return result{out: outDuplicate}
	case known:
		in.n.pending.Add(1)
		return result{out: outPending}
	case e.Seq == head.Seq+1 && e.Prev != head.Hash:
		in.n.rejected.Add(1)
		return result{out: outBadChain, err: &consent.ChainError{Author: e.Author, Seq: e.Seq, Want: head.Hash, Got: e.Prev}}
	case e.Seq == head.Seq+1 && e.Time < head.Time:
		in.n.rejected.Add(1)
		return result{out: outBadChain, err: &consent.EntryError{Author: e.Author, Seq: e.Seq, Err: consent.ErrTimeBackwards}}
	case e.Seq > head.Seq+1:
		return in.hold(e, h, size)
	}
	acc, err := in.l.Ingest(e)
	if err == nil {
		acc, err = in.release(acc)
	}
	in.queueEvents(acc)
	in.n.accepted.Add(uint64(len(acc)))
	var eq *consent.EquivocationError
	switch {
	case errors.As(err, &eq):
		in.noteEquivocation(eq.Proof)
		return result{out: outConflict, err: err}
	case err != nil && len(acc) > 0:
		in.log.Error("ledger store failed", "entry", entryName(e), "err", err)
		return result{out: outInternal, acc: acc, err: errors.New("internal error: store failed")}
	case err != nil:
		in.n.rejected.Add(1)
		return result{out: outInvalid, err: err}
	case len(acc) > 0:
		return result{out: outAccepted, acc: acc}
	}
	// Nothing joined: e raced with another ingest of the same entry.
	var now consent.Head
	in.l.View(func(v *consent.View) { now = v.Head(e.Author) })
	if now.Seq >= e.Seq {
		in.n.duplicates.Add(1)
		return result{out: outDuplicate}
	}
	in.n.pending.Add(1)
	return result{out: outPending}
}

// hold puts e, whose predecessor is missing, in the gap. Called with
// ingestMu held.
func (in *Ingest) hold(e *consent.Entry, h consent.Hash, size int) result {
	slot := authorSeq{e.Author, e.Seq}
	ge := in.gap.get(slot)
	switch {
	case ge == nil:
		in.gap.add(e, h, size)
		in.n.pending.Add(1)
		return result{out: outPending}
	case ge.h == h:
		in.n.pending.Add(1)
		return result{out: outPending}
	}
	// Two signed entries for one slot: the author equivocated. The ledger
	// records the proof when it is handed both (it keeps the first, in its
	// own pending set, as evidence).
	in.gap.remove(ge)
	_, _ = in.l.Ingest(ge.e)
	_, err := in.l.Ingest(e)
	if eq := (*consent.EquivocationError)(nil); errors.As(err, &eq) {
		in.noteEquivocation(eq.Proof)
		return result{out: outConflict, err: err}
	}
	in.n.pending.Add(1)
	return result{out: outPending}
}

// release moves out of the gap the entries that follow acc, the entries
// of one author that just joined their feed, and ingests them in order. A
// held entry for a slot that was filled by another entry goes to the
// ledger, which records the equivocation. Called with ingestMu held.
func (in *Ingest) release(acc []*consent.Entry) ([]*consent.Entry, error) {
	for i := 0; i < len(acc); i++ {
		a := acc[i]
		if ge := in.gap.get(authorSeq{a.Author, a.Seq}); ge != nil {
			in.gap.remove(ge)
			if ge.h != a.Hash() {
				if _, err := in.l.Ingest(ge.e); err != nil {
					if eq := (*consent.EquivocationError)(nil); errors.As(err, &eq) {
						in.noteEquivocation(eq.Proof)
					}
				}
			}
		}
		if i < len(acc)-1 {
			continue
		}
		ge := in.gap.get(authorSeq{a.Author, a.Seq + 1})
		if ge == nil {
			break
		}
		in.gap.remove(ge)
		if ge.e.Prev != a.Hash() || ge.e.Time < a.Time {
			// It can never join: drop it.
			in.n.rejected.Add(1)
			in.log.Debug("gap entry does not chain", "entry", entryName(ge.e))
			break
		}
		more, err := in.l.Ingest(ge.e)
		acc = append(acc, more...)
		if err != nil {
			return acc, err
		}
	}
	return acc, nil
}

// decode checks a received encoding: size, strict decoding (unknown kinds
// and malformed bodies fail here) and the author's signature.
func (in *Ingest) decode(b []byte) (*consent.Entry, error) {
	if len(b) > in.cfg.maxMsgSize {
		return nil, fmt.Errorf("%w: %w (%d bytes, limit %d)", ErrEntryTooLarge, consent.ErrTooLarge, len(b), in.cfg.maxMsgSize)
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
