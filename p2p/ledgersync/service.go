package ledgersync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

// ErrClosed is returned by a service that was closed.
var ErrClosed = errors.New("ledgersync: service closed")

// ErrNotAuthorised is what an Authoriser's refusal wraps, and what a
// client's error wraps when a peer refused it with code CodeNotAuthorised.
var ErrNotAuthorised = errors.New("not authorised")

// CodeNotAuthorised is the refusal code of a request or entry the peer's
// Authoriser refused: heads of a remote that may read no feed here, a fetch
// of a feed it may not read, a pushed entry this peer does not store.
const CodeNotAuthorised = "not-authorised"

// CodeRecoveryCap is the refusal code of a recovery request the peer does
// not keep because the identity it names has as many pending requests
// from new keys as a peer keeps (p2p/peer: docs/network.md "Recovery
// requests from strangers").
const CodeRecoveryCap = "recovery-cap"

// ErrRecoveryCap is what an Authoriser's refusal of a recovery request
// over the cap wraps, and what a client's error wraps when a peer refused
// an entry with code CodeRecoveryCap. It wraps ErrNotAuthorised.
var ErrRecoveryCap = fmt.Errorf("%w: the identity has too many pending recovery requests", ErrNotAuthorised)

// Authoriser says who may read and who may write which feeds. It is
// called for every heads page, fetch and received entry, so it must be
// cheap; it must not call back into the services.
type Authoriser interface {
	// MayRead reports whether remote may learn of and fetch author's feed.
	MayRead(remote peer.ID, author consent.ID) bool
	// MayWrite returns nil if this peer should store e, received from
	// remote; else an error wrapping ErrNotAuthorised.
	MayWrite(remote peer.ID, e *consent.Entry) error
}

// Defaults of the options.
const (
	DefaultSyncInterval  = 30 * time.Second
	DefaultStreamTimeout = 20 * time.Second
	// outboundQueue is gossipsub's per-peer queue: the default (32) drops
	// messages in bursts (see DEPENDENCIES.md).
	outboundQueue = 4096
	syncWorkers   = 2
	// DefaultMaxEntrySize is the largest entry encoding a peer admits on
	// gossip, push and sync. The largest entry a wallet writes is a grant
	// of consent.MaxGrantRecords records with their wrapped keys, about
	// 350 KiB; the longest record IDs consent allows bring it to about
	// 580 KiB (TestLargestEntry). See docs/format.md.
	DefaultMaxEntrySize = 640 << 10
	// DefaultMaxClockSkew is how far ahead of the peer's clock an entry
	// may be dated.
	DefaultMaxClockSkew = 5 * time.Minute
	// DefaultMaxGapEntries and DefaultMaxGapBytes bound the entries held,
	// across all authors, while they wait for a missing predecessor.
	DefaultMaxGapEntries = 4096
	DefaultMaxGapBytes   = 64 << 20
	syncQueue            = 64
	pubQueue             = 1024
)

type config struct {
	parent       context.Context // bounds every service's life (New's ctx)
	syncInterval time.Duration
	maxMsgSize   int
	timeout      time.Duration
	now          func() time.Time
	maxSkew      time.Duration
	gapEntries   int
	gapBytes     int
	logger       *slog.Logger
	known        map[string]bool // IDs of known peers (WithKnownPeers)
	bulk, cons   Budget          // per-author budgets (WithAuthorBudget)
	related      func(consent.ID) bool
	auth         Authoriser                // nil: everyone reads and writes everything
	onSync       func(peer.ID, SyncResult) // WithSyncObserver
}

// isKnown reports whether p is a known peer.
func (c *config) isKnown(p peer.ID) bool { return c.known[p.String()] }

// Option configures the services; each takes the options that apply to it.
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

// WithMaxMessageSize bounds one entry's encoding on gossip, in a push and
// in a sync: a larger entry is refused with ErrEntryTooLarge. It cannot
// exceed consent.MaxEntrySize; the default is DefaultMaxEntrySize.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 1024 || n > consent.MaxEntrySize {
			return fmt.Errorf("ledgersync: max message size %d is outside 1024..%d", n, consent.MaxEntrySize)
		}
		c.maxMsgSize = n
		return nil
	}
}

// WithClock sets the clock entry times are checked against; the default
// is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("ledgersync: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithMaxClockSkew sets how far ahead of the clock an entry may be dated:
// a later one is refused with ErrFutureEntry. The default is
// DefaultMaxClockSkew.
func WithMaxClockSkew(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("ledgersync: negative clock skew %v", d)
		}
		c.maxSkew = d
		return nil
	}
}

// WithGapLimit bounds the entries held while they wait for a missing
// predecessor, across all authors: at most entries of them and bytes of
// encodings. Past either, the oldest held is dropped (sync fetches it
// again). bytes must hold at least one entry of the maximum size. The
// defaults are DefaultMaxGapEntries and DefaultMaxGapBytes.
func WithGapLimit(entries, bytes int) Option {
	return func(c *config) error {
		if entries < 1 || bytes < consent.MaxEntrySize {
			return fmt.Errorf("ledgersync: gap limit of %d entries, %d bytes: want at least 1 entry and %d bytes", entries, bytes, consent.MaxEntrySize)
		}
		c.gapEntries, c.gapBytes = entries, bytes
		return nil
	}
}

// WithKnownPeers names the peers this one knows (the peer daemon's
// bootstrap list): each may hold KnownStreamsPerPeer push and sync streams
// instead of StreamsPerPeer, outside the cap on strangers' streams; what
// this peer pulls from them, or they gossip, is never refused for an
// author's budget (it is still charged, so it cannot be multiplied by
// sending through several known peers); and their own entries are not
// charged at all.
func WithKnownPeers(ps []peer.ID) Option {
	return func(c *config) error {
		c.known = make(map[string]bool, len(ps))
		for _, p := range ps {
			c.known[p.String()] = true
		}
		return nil
	}
}

// WithAuthorBudget sets the budget every author has on this peer for new
// entries received by push, by gossip and by syncs with peers that are not
// known: bulk for every entry, consent for small consent entries (identity
// cards, grants, revocations, credentials, break-glass declarations,
// reviews), which fall back to bulk when it is spent. The defaults are
// DefaultBulkBudget and DefaultConsentBudget.
func WithAuthorBudget(bulk, consent Budget) Option {
	return func(c *config) error {
		if err := bulk.valid(); err != nil {
			return err
		}
		if err := consent.valid(); err != nil {
			return err
		}
		c.bulk, c.cons = bulk, consent
		return nil
	}
}

// WithRelatedAuthors exempts from the author budget the authors for which
// related returns true (the peer has a relationship with them, for example
// it stores their shares); known peers are exempt already.
func WithRelatedAuthors(related func(consent.ID) bool) Option {
	return func(c *config) error {
		c.related = related
		return nil
	}
}

// WithAuthoriser makes the services ask a who may read and write which
// feeds: sync heads list only the feeds the remote may read (a remote that
// may read none is refused with code CodeNotAuthorised), a fetch of a feed
// it may not read is refused, and an entry a refuses (received by push,
// sync or gossip) is not stored and not gossiped; a push acks it
// AckRefused with code CodeNotAuthorised. Each refusal is counted in
// Stats.NotAuthorised and logged at info, at most one line per remote a
// minute, naming feeds by a short hash only. Without it (or with nil),
// every remote reads and writes every feed.
func WithAuthoriser(a Authoriser) Option {
	return func(c *config) error {
		c.auth = a
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

// newConfig applies opts to the defaults.
func newConfig(opts []Option) (config, error) {
	cfg := config{
		parent:       context.Background(),
		syncInterval: DefaultSyncInterval,
		maxMsgSize:   DefaultMaxEntrySize,
		timeout:      DefaultStreamTimeout,
		now:          time.Now,
		maxSkew:      DefaultMaxClockSkew,
		gapEntries:   DefaultMaxGapEntries,
		gapBytes:     DefaultMaxGapBytes,
		logger:       slog.New(slog.DiscardHandler),
		bulk:         DefaultBulkBudget,
		cons:         DefaultConsentBudget,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return config{}, err
		}
	}
	return cfg, nil
}

// withParent makes ctx bound the service's life, as Close does.
func withParent(ctx context.Context) Option {
	return func(c *config) error {
		c.parent = ctx
		return nil
	}
}

// Service runs the three parts for the peer daemon on one ledger: an
// Ingest, and the gossip, sync and push services over it. ctx bounds its
// life; Close ends it too. Its methods are those of the parts (OnAccepted,
// Stats, Publish, SyncWith).
//
// The Service owns its gossipsub instance, so h must not run another one.
type Service struct {
	*Ingest
	*SyncService
	*GossipService
	*PushService
}

// New starts a Service on h for l: it starts gossipsub, joins GossipTopic
// with the entry validator, registers the SyncID and PushID handlers, and
// syncs with every peer that speaks SyncID as it is identified.
func New(ctx context.Context, h host.Host, l *consent.Ledger, opts ...Option) (_ *Service, err error) {
	opts = append(slices.Clip(opts), withParent(ctx))
	s := &Service{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Ingest, err = NewIngest(l, opts...); err != nil {
		return nil, err
	}
	if s.SyncService, err = NewSyncService(h, s.Ingest, opts...); err != nil {
		return nil, err
	}
	if s.GossipService, err = NewGossipService(h, s.Ingest, s.SyncService, opts...); err != nil {
		return nil, err
	}
	s.SyncService.GossipOn(s.GossipService)
	if s.PushService, err = NewPushService(h, s.Ingest, s.GossipService, opts...); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops every part, the one that feeds the others first. It does
// not close the host or the ledger; it is safe to call twice.
func (s *Service) Close() error {
	if s.PushService != nil {
		s.PushService.Close()
	}
	if s.GossipService != nil {
		s.GossipService.Close()
	}
	if s.SyncService != nil {
		s.SyncService.Close()
	}
	if s.Ingest != nil {
		s.Ingest.Close()
	}
	return nil
}

// life is the lifetime of one service: a context its work runs under,
// cancelled by Close, and the goroutines and streams Close waits for.
type life struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup
}

func newLife(parent context.Context) *life {
	ctx, cancel := context.WithCancel(parent)
	return &life{ctx: ctx, cancel: cancel}
}

// goroutine runs fn tracked by the WaitGroup.
func (l *life) goroutine(fn func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn()
	}()
}

// enter registers a unit of work (a stream handler, a sync) that end
// waits for; it reports false once the service is closed.
func (l *life) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

// close marks the service closed; it reports false if it already was.
func (l *life) close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	return true
}

// end cancels the work and waits for it.
func (l *life) end() {
	l.cancel()
	l.wg.Wait()
}

// guard runs serve on an inbound stream within the service's lifetime and
// the per-remote stream limit lim, accounted to the service's resource
// scope, and resets the stream when the service closes. A stream over the
// limit, or arriving after Close, is reset at once.
func (l *life) guard(str network.Stream, lim *limiter, serve func(network.Stream)) {
	if !l.enter() {
		str.Reset()
		return
	}
	defer l.wg.Done()
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
	stop := context.AfterFunc(l.ctx, func() { str.Reset() })
	defer stop()
	serve(str)
}

func entryName(e *consent.Entry) string {
	return fmt.Sprintf("%s#%d(%v)", e.Author.Short(), e.Seq, e.Kind)
}

func shortPeer(p peer.ID) string { return consent.ID(p.String()).Short() }
