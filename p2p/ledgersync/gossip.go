package ledgersync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

// GossipTopic is the one gossipsub topic every peer joins. It carries no
// ID of any kind: which feeds a peer follows is itself health information.
const GossipTopic = "/medwallet/ledger/1"

// Syncer is asked for a pull sync with a peer that gossip shows this peer
// is behind: *SyncService is one.
type Syncer interface {
	RequestSync(p peer.ID)
}

// GossipService runs gossipsub on GossipTopic for a ledger: the topic
// validator ingests what peers gossip, and Publish and Republish gossip
// this peer's entries and those it took in by push or released from
// pending.
type GossipService struct {
	h    host.Host
	in   *Ingest
	cfg  config
	log  *slog.Logger
	life *life
	sync Syncer // may be nil

	psCancel context.CancelFunc // gossipsub's context; cancelled last by Close
	ps       *pubsub.PubSub
	topic    *pubsub.Topic
	relay    pubsub.RelayCancelFunc
	pubQ     chan *consent.Entry

	meshMu sync.Mutex
	mesh   map[peer.ID]bool // the topic's mesh, as meshTracer sees it
}

// NewGossipService starts gossipsub on h and joins GossipTopic with the
// entry validator, which ingests into in's ledger; sync, if not nil, is
// asked to sync with a peer whose gossip shows a gap and with every new
// mesh peer. WithMaxMessageSize and WithLogger apply. The service owns its
// gossipsub instance, so h must not run another one.
func NewGossipService(h host.Host, in *Ingest, sync Syncer, opts ...Option) (_ *GossipService, err error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &GossipService{
		h: h, in: in, cfg: cfg, log: in.log, life: newLife(cfg.parent), sync: sync,
		psCancel: func() {},
		pubQ:     make(chan *consent.Entry, pubQueue),
		mesh:     make(map[peer.ID]bool),
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// gossipsub gets a context of its own, ended after the topic is left.
	psCtx, psCancel := context.WithCancel(cfg.parent)
	s.psCancel = psCancel
	s.ps, err = pubsub.NewGossipSub(psCtx, s.h,
		// Entries carry their author's signature; the envelope carries none
		// and names no originating peer (see doc.go).
		pubsub.WithNoAuthor(),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithMessageIdFn(msgID),
		pubsub.WithPeerOutboundQueueSize(outboundQueue),
		pubsub.WithMaxMessageSize(s.cfg.maxMsgSize+frameOverhead),
		pubsub.WithLogger(s.cfg.logger.With("svc", "pubsub")),
		pubsub.WithRawTracer(meshTracer{s}),
	)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: start gossipsub: %w", err)
	}
	if err := s.ps.RegisterTopicValidator(GossipTopic, s.validate); err != nil {
		return nil, fmt.Errorf("ledgersync: register validator: %w", err)
	}
	s.topic, err = s.ps.Join(GossipTopic)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: join %s: %w", GossipTopic, err)
	}
	// Relay joins the mesh without a subscription: the validator ingests.
	s.relay, err = s.topic.Relay()
	if err != nil {
		return nil, fmt.Errorf("ledgersync: relay %s: %w", GossipTopic, err)
	}
	s.life.goroutine(s.publishLoop)
	return s, nil
}

// Close leaves the topic and stops gossipsub, once what the service was
// publishing ended; it is safe to call twice.
func (s *GossipService) Close() error {
	if !s.life.close() {
		return nil
	}
	// Our work first: a publish waiting for readiness holds the topic.
	s.life.end()
	if s.relay != nil {
		s.relay()
	}
	if s.topic != nil {
		_ = s.topic.Close()
	}
	if s.ps != nil {
		_ = s.ps.UnregisterTopicValidator(GossipTopic)
	}
	// Cancelling its context stops gossipsub's goroutines.
	s.psCancel()
	return nil
}

// askSync asks the Syncer, if any, for a pull sync with p.
func (s *GossipService) askSync(p peer.ID) {
	if s.sync != nil {
		s.sync.RequestSync(p)
	}
}

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
func (s *GossipService) Publish(ctx context.Context, e *consent.Entry) error {
	if !s.life.enter() {
		return ErrClosed
	}
	defer s.life.wg.Done()
	b := e.Encode()
	if len(b) > s.cfg.maxMsgSize {
		return fmt.Errorf("ledgersync: publish %s: %w (%d bytes)", entryName(e), consent.ErrTooLarge, len(b))
	}
	if !s.in.holds(e) {
		if err := consent.VerifyEntry(e); err != nil {
			return fmt.Errorf("ledgersync: publish: %w", err)
		}
		res := s.in.accept(e)
		if res.out != outAccepted && res.out != outDuplicate {
			return fmt.Errorf("ledgersync: publish %s: %s", entryName(e), res.reason())
		}
		s.Republish(res.acc[min(1, len(res.acc)):])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.life.ctx, cancel)
	defer stop()
	if err := s.topic.Publish(ctx, b, pubsub.WithReadiness(pubsub.MinTopicSize(1))); err != nil {
		if s.life.ctx.Err() != nil {
			return ErrClosed
		}
		return fmt.Errorf("ledgersync: publish %s: %w", entryName(e), err)
	}
	return nil
}

// Republish queues entries for gossip from this peer (pushed entries,
// entries released from pending, entries a sync brought in): dropped if
// the queue is full, since sync delivers them anyway, with one warning per
// call.
func (s *GossipService) Republish(es []*consent.Entry) {
	dropped := 0
	for _, e := range es {
		select {
		case s.pubQ <- e:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		s.log.Warn("gossip queue full; entries left to sync", "dropped", dropped, "of", len(es))
	}
}

func (s *GossipService) publishLoop() {
	for {
		select {
		case <-s.life.ctx.Done():
			return
		case e := <-s.pubQ:
			ctx, cancel := context.WithTimeout(s.life.ctx, s.cfg.timeout)
			err := s.topic.Publish(ctx, e.Encode(), pubsub.WithReadiness(pubsub.MinTopicSize(1)))
			cancel()
			if err != nil && s.life.ctx.Err() == nil {
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
func (s *GossipService) validate(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == s.h.ID() {
		// Publish and republish only send entries the ledger holds.
		return pubsub.ValidationAccept
	}
	e, err := s.in.decodeCharged(m.GetData(), from)
	if errors.Is(err, ErrOverBudget) {
		// The author is over its budget here, whoever forwarded it:
		// ignored, so that honest forwarders are not penalised.
		s.in.n.rejected.Add(1)
		s.log.Debug("gossip over budget", "from", shortPeer(from), "err", err)
		return pubsub.ValidationIgnore
	}
	if err != nil {
		s.in.n.rejected.Add(1)
		s.log.Debug("gossip rejected", "from", shortPeer(from), "err", err)
		return pubsub.ValidationReject
	}
	res := s.in.accept(e)
	switch res.out {
	case outAccepted:
		// Entries released from pending by e were ignored when they came:
		// gossip them now so peers downstream get them without a sync.
		s.Republish(res.acc[1:])
		s.log.Debug("gossip accepted", "entry", entryName(e), "released", len(res.acc)-1)
		return pubsub.ValidationAccept
	case outPending:
		s.log.Debug("gossip gap; syncing", "entry", entryName(e), "from", shortPeer(from))
		s.askSync(from)
		return pubsub.ValidationIgnore
	case outDuplicate, outConflict, outInternal:
		return pubsub.ValidationIgnore
	case outRefused:
		// A future-dated entry may be fine by the sender's clock: ignore
		// it without penalising the peer that forwarded it.
		s.log.Debug("gossip refused", "entry", entryName(e), "from", shortPeer(from), "err", res.err)
		if errors.Is(res.err, ErrFutureEntry) {
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationReject
	default:
		s.log.Debug("gossip rejected", "entry", entryName(e), "from", shortPeer(from), "err", res.err)
		return pubsub.ValidationReject
	}
}
