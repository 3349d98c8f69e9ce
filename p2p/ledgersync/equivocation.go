package ledgersync

import (
	"errors"
	"fmt"
	"slices"

	"github.com/medwallet/medwallet/consent"
)

// ErrEquivocatingAuthor refuses an entry whose author the ledger holds an
// equivocation proof against: a proof it found itself, or one logged in
// an equivocation entry by any author. Such an entry is neither ingested
// nor forwarded; a push gets it back as the ack's reason.
var ErrEquivocatingAuthor = errors.New("ledgersync: refused: the ledger holds a proof that this author equivocated")

// OnEquivocation registers fn to be called with the proof of every
// equivocation a service on this Ingest detects (two entries with one
// author and seq, received by gossip, push or sync), once per detection,
// from the goroutine that calls the OnAccepted hooks. Proofs received in
// equivocation entries are entries like any other (OnAccepted). The peer
// daemon logs each proof on its own feed with LogEquivocation, so that
// the refusal survives a restart. cancel removes fn.
func (in *Ingest) OnEquivocation(fn func(p *consent.EquivocationProof)) (cancel func()) {
	in.hookMu.Lock()
	id := in.nextHook
	in.nextHook++
	in.proofHooks[id] = fn
	in.hookMu.Unlock()
	return func() {
		in.hookMu.Lock()
		delete(in.proofHooks, id)
		in.hookMu.Unlock()
	}
}

// noteEquivocation counts and logs a detected equivocation and queues its
// proof for the OnEquivocation hooks. Called with ingestMu held.
func (in *Ingest) noteEquivocation(p *consent.EquivocationProof) {
	in.n.conflicts.Add(1)
	in.log.Warn("equivocation", "author", p.Author().Short(), "seq", p.Seq())
	in.hookMu.Lock()
	in.proofs = append(in.proofs, p)
	in.hookMu.Unlock()
	select {
	case in.eventSig <- struct{}{}:
	default:
	}
}

func sortedHooks[F any](m map[uint64]F) []F {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]F, 0, len(ids))
	for _, id := range ids {
		out = append(out, m[id])
	}
	return out
}

// ErrProofTooLarge reports a proof whose equivocation entry would be over
// the max entry size: peers would refuse it, and every later entry of the
// feed it joined with it.
var ErrProofTooLarge = errors.New("ledgersync: equivocation entry over the max entry size")

// LogEquivocation appends to s's feed an equivocation entry carrying p,
// dated by the Ingest's clock, and returns it for the caller to gossip
// (Publish). It appends nothing and returns nil when the ledger already
// holds an equivocation entry against p's author, by any author: one proof
// on the ledger is enough for every peer that holds it to refuse the
// author, after a restart too. A proof whose entry would be over the max
// entry size is not logged (ErrProofTooLarge): the author stays refused
// here until a restart, and by every peer that detects it too.
func (in *Ingest) LogEquivocation(s consent.Signer, p *consent.EquivocationProof) (*consent.Entry, error) {
	var logged bool
	var head consent.Head
	in.l.View(func(v *consent.View) {
		logged = len(v.ProofLogs(p.Author())) > 0
		head = v.Head(s.ID())
	})
	if logged {
		return nil, nil
	}
	now := in.cfg.now()
	probe, err := consent.NewEntry(s, head, now, consent.KindEquivocation, p)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: log equivocation of %s: %w", p.Author().Short(), err)
	}
	if n := len(probe.Encode()); n > in.cfg.maxMsgSize {
		return nil, fmt.Errorf("%w (%d bytes, limit %d)", ErrProofTooLarge, n, in.cfg.maxMsgSize)
	}
	e, err := in.l.Append(s, now, consent.KindEquivocation, p)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: log equivocation of %s: %w", p.Author().Short(), err)
	}
	in.log.Info("equivocation proof logged", "author", p.Author().Short(), "seq", p.Seq(), "entry", entryName(e))
	return e, nil
}
