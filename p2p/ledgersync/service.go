package ledgersync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
)

// GossipTopic is the one gossipsub topic every peer joins. It carries no
// ID of any kind: which feeds a peer follows is itself health information.
const GossipTopic = "/medwallet/ledger/1"

// SyncID is the anti-entropy protocol: heads, then missing entries.
const SyncID protocol.ID = "/medwallet/ledger-sync/1.0.0"

// PushID is the light-client protocol: entries in, one ack per entry out.
const PushID protocol.ID = "/medwallet/ledger-push/1.0.0"

// ErrClosed is returned by a Service that was closed.
var ErrClosed = errors.New("ledgersync: service closed")

// Defaults of the options.
const (
	DefaultSyncInterval  = 30 * time.Second
	DefaultStreamTimeout = 20 * time.Second
	// outboundQueue is gossipsub's per-peer queue: the default (32) drops
	// messages in bursts (see DEPENDENCIES.md).
	outboundQueue = 4096
	// maxInbound and maxInboundPerPeer bound concurrent inbound streams
	// of each protocol.
	maxInbound        = 16
	maxInboundPerPeer = 2
	syncWorkers       = 2
	syncQueue         = 64
	pubQueue          = 1024
)

type config struct {
	syncInterval time.Duration
	maxMsgSize   int
	timeout      time.Duration
	logger       *slog.Logger
}

// Option configures a Service.
type Option func(*config) error

// WithSyncInterval sets the mean interval between pull syncs with a random
// connected peer (each wait is jittered by ±25%). Zero disables periodic
// sync; syncs on connect and on gaps still run. The default is 30 s.
func WithSyncInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("ledgersync: negative sync interval %v", d)
		}
		c.syncInterval = d
		return nil
	}
}

// WithMaxMessageSize bounds one entry's encoding on gossip and in a push.
// It cannot exceed consent.MaxEntrySize, which is the default.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 1024 || n > consent.MaxEntrySize {
			return fmt.Errorf("ledgersync: max message size %d is outside 1024..%d", n, consent.MaxEntrySize)
		}
		c.maxMsgSize = n
		return nil
	}
}

// WithLogger sets the logger. The service logs kinds, seqs, short IDs and
// short hashes, never entry bodies. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("ledgersync: nil logger")
		}
		c.logger = l
		return nil
	}
}

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

// Service spreads a Ledger's entries: gossip, pull sync, push.
type Service struct {
	h   host.Host
	l   *consent.Ledger
	cfg config
	log *slog.Logger

	parent   context.Context // given to New
	ctx      context.Context // the service's work; cancelled first by Close
	cancel   context.CancelFunc
	psCancel context.CancelFunc // gossipsub's context; cancelled last by Close
	ps       *pubsub.PubSub
	topic    *pubsub.Topic
	relay    pubsub.RelayCancelFunc
	evsub    event.Subscription

	life   sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup

	ingestMu sync.Mutex // serialises ingest and event queueing, so hooks see feed order

	hookMu   sync.Mutex
	hooks    map[uint64]func(*consent.Entry)
	nextHook uint64
	events   []*consent.Entry
	eventSig chan struct{}

	syncQ    chan peer.ID
	syncBusy atomic.Int64 // syncs queued or running
	queuedMu sync.Mutex
	queued   map[peer.ID]bool

	pubQ chan *consent.Entry

	meshMu sync.Mutex
	mesh   map[peer.ID]bool // the topic's mesh, as meshTracer sees it

	syncLim, pushLim limiter
	n                counters
}

// New starts a Service on h for l: it starts gossipsub, joins GossipTopic
// with the entry validator, registers the SyncID and PushID handlers, and
// syncs with every peer that speaks SyncID as it is identified. ctx bounds
// the service's life; Close ends it too.
//
// The Service owns its gossipsub instance, so h must not run another one.
func New(ctx context.Context, h host.Host, l *consent.Ledger, opts ...Option) (*Service, error) {
	cfg := config{
		syncInterval: DefaultSyncInterval,
		maxMsgSize:   consent.MaxEntrySize,
		timeout:      DefaultStreamTimeout,
		logger:       slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &Service{
		h: h, l: l, cfg: cfg, log: cfg.logger.With("svc", "ledgersync"),
		parent: ctx, ctx: sctx, cancel: cancel, psCancel: func() {},
		hooks:    make(map[uint64]func(*consent.Entry)),
		eventSig: make(chan struct{}, 1),
		syncQ:    make(chan peer.ID, syncQueue),
		queued:   make(map[peer.ID]bool),
		mesh:     make(map[peer.ID]bool),
		pubQ:     make(chan *consent.Entry, pubQueue),
	}
	if err := s.start(); err != nil {
		s.closed = true
		s.shutdown()
		return nil, err
	}
	return s, nil
}

func (s *Service) start() error {
	var err error
	// gossipsub gets a context of its own, ended after the topic is left.
	psCtx, psCancel := context.WithCancel(s.parent)
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
		return fmt.Errorf("ledgersync: start gossipsub: %w", err)
	}
	if err := s.ps.RegisterTopicValidator(GossipTopic, s.validate); err != nil {
		return fmt.Errorf("ledgersync: register validator: %w", err)
	}
	s.topic, err = s.ps.Join(GossipTopic)
	if err != nil {
		return fmt.Errorf("ledgersync: join %s: %w", GossipTopic, err)
	}
	// Relay joins the mesh without a subscription: the validator ingests.
	s.relay, err = s.topic.Relay()
	if err != nil {
		return fmt.Errorf("ledgersync: relay %s: %w", GossipTopic, err)
	}
	s.evsub, err = s.h.EventBus().Subscribe([]any{
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerProtocolsUpdated),
	})
	if err != nil {
		return fmt.Errorf("ledgersync: subscribe to peer events: %w", err)
	}
	s.h.SetStreamHandler(SyncID, s.handleSync)
	s.h.SetStreamHandler(PushID, s.handlePush)

	s.goroutine(s.dispatchEvents)
	s.goroutine(s.watchPeers)
	s.goroutine(s.publishLoop)
	for range syncWorkers {
		s.goroutine(s.syncWorker)
	}
	if s.cfg.syncInterval > 0 {
		s.goroutine(s.periodicSync)
	}
	// Peers connected before the service started.
	for _, p := range s.h.Network().Peers() {
		if s.speaksSync(p) {
			s.requestSync(p)
		}
	}
	return nil
}

// msgID is the gossip message ID: the SHA-256 of the data, which for a
// valid message is the entry hash. The same entry published by two peers
// is one message.
func msgID(m *pb.Message) string {
	h := consent.HashBytes(m.GetData())
	return string(h[:])
}

// goroutine runs fn tracked by the service's WaitGroup.
func (s *Service) goroutine(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// enter registers a unit of work (a stream handler, a sync) that Close
// waits for; it reports false once the service is closed.
func (s *Service) enter() bool {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close stops gossip, removes the handlers, resets open streams and waits
// for every goroutine the service started. It does not close the host or
// the ledger.
func (s *Service) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return nil
	}
	s.closed = true
	s.life.Unlock()
	s.shutdown()
	return nil
}

func (s *Service) shutdown() {
	s.h.RemoveStreamHandler(SyncID)
	s.h.RemoveStreamHandler(PushID)
	// Our work first: a publish waiting for readiness holds the topic.
	s.cancel()
	s.wg.Wait()
	if s.relay != nil {
		s.relay()
	}
	if s.topic != nil {
		_ = s.topic.Close()
	}
	if s.ps != nil {
		_ = s.ps.UnregisterTopicValidator(GossipTopic)
	}
	if s.evsub != nil {
		_ = s.evsub.Close()
	}
	// Cancelling its context stops gossipsub's goroutines.
	s.psCancel()
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

// watchPeers starts a sync with every peer identified as speaking SyncID.
func (s *Service) watchPeers() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-s.evsub.Out():
			if !ok {
				return
			}
			switch ev := ev.(type) {
			case event.EvtPeerIdentificationCompleted:
				if slices.Contains(ev.Protocols, SyncID) {
					s.requestSync(ev.Peer)
				}
			case event.EvtPeerProtocolsUpdated:
				if slices.Contains(ev.Added, SyncID) {
					s.requestSync(ev.Peer)
				}
			}
		}
	}
}

func (s *Service) speaksSync(p peer.ID) bool {
	ok, err := s.h.Peerstore().SupportsProtocols(p, SyncID)
	return err == nil && len(ok) > 0
}

// requestSync queues a pull sync with p unless one is already queued. A
// full queue drops the request: periodic sync catches up.
func (s *Service) requestSync(p peer.ID) {
	if p == s.h.ID() {
		return
	}
	s.queuedMu.Lock()
	defer s.queuedMu.Unlock()
	if s.queued[p] {
		return
	}
	select {
	case s.syncQ <- p:
		s.queued[p] = true
		s.syncBusy.Add(1)
	default:
	}
}

func (s *Service) syncWorker() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.syncQ:
			s.queuedMu.Lock()
			delete(s.queued, p)
			s.queuedMu.Unlock()
			n, err := s.syncWith(s.ctx, p)
			s.syncBusy.Add(-1)
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Debug("sync failed", "peer", shortPeer(p), "err", err)
				}
				continue
			}
			if n > 0 {
				s.log.Debug("synced", "peer", shortPeer(p), "accepted", n)
			}
		}
	}
}

func (s *Service) periodicSync() {
	t := time.NewTimer(jitter(s.cfg.syncInterval))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		var cands []peer.ID
		for _, p := range s.h.Network().Peers() {
			if s.speaksSync(p) {
				cands = append(cands, p)
			}
		}
		if len(cands) > 0 {
			s.requestSync(cands[rand.IntN(len(cands))])
		}
		t.Reset(jitter(s.cfg.syncInterval))
	}
}

// jitter returns d ± 25%.
func jitter(d time.Duration) time.Duration {
	q := int64(d / 4)
	if q <= 0 {
		return d
	}
	return d - time.Duration(q) + time.Duration(rand.Int64N(2*q+1))
}

func entryName(e *consent.Entry) string {
	return fmt.Sprintf("%s#%d(%v)", e.Author.Short(), e.Seq, e.Kind)
}

func shortPeer(p peer.ID) string { return consent.ID(p.String()).Short() }
