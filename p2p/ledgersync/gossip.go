package ledgersync

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

// GossipTopic is the one gossipsub topic every peer joins. It carries no
// ID of any kind: which feeds a peer follows is itself health information.
const GossipTopic = "/medwallet/ledger/1"

// msgID is the gossip message ID: the SHA-256 of the data, which for a
// valid message is the entry hash. The same entry published by two peers
// is one message.
func msgID(m *pb.Message) string {
	h := consent.HashBytes(m.GetData())
	return string(h[:])
}

// Publish gossips e, an entry of the local ledger (typically just made with
// Ledger.Append). An entry the ledger does not hold yet is ingested first
// and must join its feed. Publish waits until the topic's mesh has a peer,
// or ctx ends; either way the entry stays in the ledger and reaches other
// peers by sync.
func (s *Service) Publish(ctx context.Context, e *consent.Entry) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.wg.Done()
	b := e.Encode()
	if len(b) > s.cfg.maxMsgSize {
		return fmt.Errorf("ledgersync: publish %s: %w (%d bytes)", entryName(e), consent.ErrTooLarge, len(b))
	}
	if !s.holds(e) {
		if err := consent.VerifyEntry(e); err != nil {
			return fmt.Errorf("ledgersync: publish: %w", err)
		}
		res := s.accept(e)
		if res.out != outAccepted && res.out != outDuplicate {
			return fmt.Errorf("ledgersync: publish %s: %s", entryName(e), res.reason())
		}
		s.republish(res.acc[min(1, len(res.acc)):])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if err := s.topic.Publish(ctx, b, pubsub.WithReadiness(pubsub.MinTopicSize(1))); err != nil {
		if s.ctx.Err() != nil {
			return ErrClosed
		}
		return fmt.Errorf("ledgersync: publish %s: %w", entryName(e), err)
	}
	return nil
}

// republish queues entries for gossip from this peer (pushed entries,
// entries released from pending): dropped if the queue is full, since sync
// delivers them anyway.
func (s *Service) republish(es []*consent.Entry) {
	for _, e := range es {
		select {
		case s.pubQ <- e:
		default:
			s.log.Warn("gossip queue full; entry left to sync", "entry", entryName(e))
		}
	}
}

func (s *Service) publishLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case e := <-s.pubQ:
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout)
			err := s.topic.Publish(ctx, e.Encode(), pubsub.WithReadiness(pubsub.MinTopicSize(1)))
			cancel()
			if err != nil && s.ctx.Err() == nil {
				s.log.Debug("gossip failed; entry left to sync", "entry", entryName(e), "err", err)
			}
		}
	}
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
