package ledgersync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

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

func entryName(e *consent.Entry) string {
	return fmt.Sprintf("%s#%d(%v)", e.Author.Short(), e.Seq, e.Kind)
}

func shortPeer(p peer.ID) string { return consent.ID(p.String()).Short() }

// guard runs serve on an inbound stream within the service's lifetime and
// the per-peer stream limit lim, accounted to the service's resource scope,
// and resets the stream when the service closes. A stream over the limit,
// or arriving after Close, is reset at once.
func (s *Service) guard(str network.Stream, lim *limiter, serve func(network.Stream)) {
	if !s.enter() {
		str.Reset()
		return
	}
	defer s.wg.Done()
	remote := str.Conn().RemotePeer()
	if !lim.acquire(remote) {
		str.Reset()
		return
	}
	defer lim.release(remote)
	if err := str.Scope().SetService(serviceName); err != nil {
		str.Reset()
		return
	}
	stop := context.AfterFunc(s.ctx, func() { str.Reset() })
	defer stop()
	serve(str)
}

// limiter bounds concurrent inbound streams of one protocol, in all and
// per peer, so that one peer cannot take every slot.
type limiter struct {
	mu      sync.Mutex
	total   int
	perPeer map[peer.ID]int
}

func (l *limiter) acquire(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= maxInbound || l.perPeer[p] >= maxInboundPerPeer {
		return false
	}
	if l.perPeer == nil {
		l.perPeer = make(map[peer.ID]int)
	}
	l.total++
	l.perPeer[p]++
	return true
}

func (l *limiter) release(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perPeer[p]--; l.perPeer[p] == 0 {
		delete(l.perPeer, p)
	}
}
