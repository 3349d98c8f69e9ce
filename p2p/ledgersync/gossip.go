package ledgersync

import (
	"context"
	"errors"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

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

// validate is the topic validator. Every message is one canonical entry.
//
//	reject: oversized, malformed, unknown kind, bad signature, or a chain
//	        that does not link to the head held here
//	ignore: already held (not forwarded again, so replays do not flood),
//	        predecessor missing (held pending; a pull sync from the sender
//	        follows), equivocation (recorded as evidence; not forwarded)
//	accept: joined its feed here, or published by this peer
func (s *Service) validate(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	e, err := s.decode(m.GetData())
	if err != nil {
		s.n.rejected.Add(1)
		s.log.Debug("gossip rejected", "from", shortPeer(from), "err", err)
		return pubsub.ValidationReject
	}
	if from == s.h.ID() {
		// Publish and republish only send entries the ledger holds.
		return pubsub.ValidationAccept
	}
	res := s.accept(e)
	switch res.out {
	case outAccepted:
		// Entries released from pending by e were ignored when they came:
		// gossip them now so peers downstream get them without a sync.
		s.republish(res.acc[1:])
		s.log.Debug("gossip accepted", "entry", entryName(e), "released", len(res.acc)-1)
		return pubsub.ValidationAccept
	case outPending:
		s.log.Debug("gossip gap; syncing", "entry", entryName(e), "from", shortPeer(from))
		s.requestSync(from)
		return pubsub.ValidationIgnore
	case outDuplicate, outConflict, outInternal:
		return pubsub.ValidationIgnore
	default:
		s.log.Debug("gossip rejected", "entry", entryName(e), "from", shortPeer(from), "err", res.err)
		return pubsub.ValidationReject
	}
}
