// Package peer is the medwallet peer daemon: a long-running libp2p host
// that stores encrypted shares and manifests in bbolt, keeps a verified copy
// of the consent ledger, gossips and syncs it, decides every share request
// with consent.Decide and logs each decision on its own feed.
//
// Discovery: a bootstrap list (re-dialled when connections drop), mDNS on
// the local network, and a Kademlia DHT under the /medwallet prefix where
// peers advertise themselves and find one another.
package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	dutil "github.com/libp2p/go-libp2p/p2p/discovery/util"

	"github.com/medwallet/medwallet/consent"
	ledgerstore "github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/locate"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/metrics"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/serving"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/p2p/shlserve"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
	"github.com/medwallet/medwallet/p2p/witness"
)

// Files under a peer's data directory.
const (
	KeyFile    = "peer.key"
	SharesFile = "shares.db"
	LedgerFile = "ledger.db"
)

// rendezvous is the DHT namespace peers advertise under. It names the
// software, never a patient or a record.
const rendezvous = "/medwallet/peers/1"

// Config configures a peer.
type Config struct {
	// DataDir holds the key and the databases.
	DataDir string
	// Listen are multiaddrs to listen on (node.DefaultListen if empty).
	Listen []string
	// Bootstrap are full multiaddrs (with /p2p/ID) of peers to stay
	// connected to. They are the peer's known peers: it serves grantees
	// only once it has synced the ledger with one of them after it
	// started, however long that takes (owners may read their own records
	// before). A peer without bootstrap peers is the first or only peer of
	// its network and serves at once. See docs/network.md.
	Bootstrap []string
	// Known are full multiaddrs (with /p2p/ID) of other peers the operator
	// knows, such as those of the network's network file; they are not
	// dialled. Bootstrap and Known peers are this peer's known peers
	// (node.Options.Known): never trimmed, and with stream limits of their
	// own, so strangers cannot starve sync and push between them.
	Known []string
	// Limits are the connection and memory limits for strangers (node's
	// defaults, scaled to the machine, where zero).
	Limits node.Limits
	// Reach is how the peer is reached from outside its network: relays,
	// the relay service, announced addresses, port mapping (node.Reach).
	// Its relays are known peers too (their connections carry everyone
	// who reaches this peer through them).
	Reach node.Reach
	// MDNS enables discovery on the local network.
	MDNS bool
	// DHT enables the Kademlia DHT.
	DHT bool
	// SyncInterval is the anti-entropy period (ledgersync's default if zero).
	SyncInterval time.Duration
	// MaxClockSkew is how far ahead of this peer's clock a received
	// ledger entry may be dated (ledgersync's default, 5 min, if zero).
	MaxClockSkew time.Duration
	// GapBytes bounds the bytes of received ledger entries held, across
	// all authors, while they wait for a missing predecessor
	// (ledgersync's default, 64 MiB, if zero).
	GapBytes int
	// Storage are the storage admission limits: policy, per-owner quota
	// and put rate, free-space watermark (store.DefaultLimits if nil). The
	// peer keeps a usage snapshot in DATA/usage.json (boltstore.UsageFile).
	Storage *store.Limits
	// Budget and ConsentBudget are every author's budgets for new ledger
	// entries from strangers (ledgersync's defaults if zero).
	Budget, ConsentBudget ledgersync.Budget
	// Logger receives structured logs; it never sees PHI. Nil discards.
	Logger *slog.Logger
	// NoWitness turns off witnessing feed checkpoints; WitnessMaxLogs
	// bounds the feeds witnessed (witness.DefaultMaxLogs if zero).
	NoWitness      bool
	WitnessMaxLogs int
	// Metrics, if not nil, gets the peer's figures (p2p/metrics).
	Metrics *metrics.Metrics
	// GC is the lease length, grace period and collection interval (gc.go).
	GC GCConfig
	// SHL, if not nil, serves SMART Health Links over HTTPS (p2p/shlserve).
	SHL *shlserve.Config
	// Domain is the site and operator the peer announces (gc.go).
	Domain netfile.Domain
}

// Peer is a running peer.
type Peer struct {
	Host   host.Host
	Store  *boltstore.Store
	Ledger *consent.Ledger
	Sync   *ledgersync.Service

	signer     *consent.KeySigner
	served     *serving.Set
	auth       *authoriser
	serve      *serving.Service
	shares     *shares.Service
	manifests  *manifests.Service
	shl        *shlserve.Service
	witness    *witness.Service
	witnessDB  *witness.BoltStore
	dht        *dht.IpfsDHT
	locate     *locate.Service
	announce   *locate.Announcer
	topicPeers *servingPeers
	mdns       interface{ Close() error }
	outbox     chan *consent.Entry
	ready      atomic.Bool
	log        *slog.Logger
	metrics    *metrics.Metrics
	gc         *collector
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// Start opens the stores, starts the host and every service.
func Start(ctx context.Context, cfg Config) (_ *Peer, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	boot, err := netfile.ParseAddrs(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	known, err := netfile.ParseAddrs(cfg.Known)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	key, err := node.LoadOrCreateKey(filepath.Join(cfg.DataDir, KeyFile))
	if err != nil {
		return nil, err
	}
	signer, err := consent.NewKeySigner(key)
	if err != nil {
		return nil, err
	}
	p := &Peer{signer: signer, log: log, metrics: cfg.Metrics}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.Store, err = boltstore.Open(filepath.Join(cfg.DataDir, SharesFile)); err != nil {
		return nil, err
	}
	limits := store.DefaultLimits()
	if cfg.Storage != nil {
		limits = *cfg.Storage
	}
	p.Store.SetLimits(limits)
	ls, err := ledgerstore.Open(filepath.Join(cfg.DataDir, LedgerFile))
	if err != nil {
		return nil, err
	}
	if p.Ledger, err = consent.OpenLedger(ls); err != nil {
		ls.Close()
		return nil, err
	}
	listen := cfg.Listen
	if len(listen) == 0 {
		listen = node.DefaultListen
	}
	if p.Host, err = node.New(key, node.Options{
		Listen: listen, UserAgent: netfile.AgentWithDomain("medwallet-peer", cfg.Domain),
		Limits: cfg.Limits, Known: append(append(append([]lpeer.AddrInfo(nil), boot...), known...), cfg.Reach.Relays...), Logger: log,
		Reach: cfg.Reach, Metrics: p.metrics.Registerer(),
	}); err != nil {
		return nil, err
	}
	var sctx context.Context
	sctx, p.cancel = context.WithCancel(context.Background())
	var opts []ledgersync.Option
	opts = append(opts, ledgersync.WithLogger(log))
	if cfg.SyncInterval > 0 {
		opts = append(opts, ledgersync.WithSyncInterval(cfg.SyncInterval))
	}
	if cfg.MaxClockSkew > 0 {
		opts = append(opts, ledgersync.WithMaxClockSkew(cfg.MaxClockSkew))
	}
	if cfg.GapBytes > 0 {
		opts = append(opts, ledgersync.WithGapLimit(ledgersync.DefaultMaxGapEntries, cfg.GapBytes))
	}
	if cfg.Budget != (ledgersync.Budget{}) || cfg.ConsentBudget != (ledgersync.Budget{}) {
		bulk, cons := ledgersync.DefaultBulkBudget, ledgersync.DefaultConsentBudget
		if cfg.Budget != (ledgersync.Budget{}) {
			bulk = cfg.Budget
		}
		if cfg.ConsentBudget != (ledgersync.Budget{}) {
			cons = cfg.ConsentBudget
		}
		opts = append(opts, ledgersync.WithAuthorBudget(bulk, cons))
	}
	// Bootstrap and Known peers are known to ledgersync too: they get
	// streams of their own, and their entries and what this peer pulls
	// from them are never throttled.
	knownIDs := make([]lpeer.ID, 0, len(boot)+len(known))
	for _, ai := range append(append([]lpeer.AddrInfo(nil), boot...), known...) {
		knownIDs = append(knownIDs, ai.ID)
	}
	opts = append(opts, ledgersync.WithKnownPeers(knownIDs), ledgersync.WithSyncObserver(p.metrics.Synced))
	p.metrics.KnownPeers(knownIDs)
	// Need to know: this peer keeps and serves the feeds of the patients it
	// serves and of the parties they name (authorise.go).
	if p.served, err = serving.Open(filepath.Join(cfg.DataDir, serving.File)); err != nil {
		return nil, err
	}
	p.auth = newAuthoriser(signer.ID(), p.Ledger, p.served, p.Store.Holds, knownIDs)
	opts = append(opts, ledgersync.WithAuthoriser(p.auth),
		// A patient this peer serves publishes a feed of any length here:
		// its entries are not charged to the per-author budget.
		ledgersync.WithRelatedAuthors(func(id consent.ID) bool { return p.served.Has(id) || p.Store.Holds(id) }))
	if p.Sync, err = ledgersync.New(sctx, p.Host, p.Ledger, opts...); err != nil {
		return nil, err
	}
	if err := p.follow(); err != nil {
		return nil, err
	}
	p.Sync.OnAccepted(func(e *consent.Entry) { p.metrics.Entry("received", e.Kind) })
	// Access entries are on this peer's ledger before any byte is served;
	// gossiping them happens in the background so that a slow mesh never
	// holds up a transfer (anti-entropy sync carries what gossip drops).
	p.outbox = make(chan *consent.Entry, 4096)
	p.wg.Add(2)
	go p.gossipOut(sctx)
	go func() {
		defer p.wg.Done()
		if err := p.Store.SnapshotUsage(sctx, filepath.Join(cfg.DataDir, boltstore.UsageFile), 5*time.Second); err != nil {
			log.Warn("usage snapshot stopped", "err", err)
		}
	}()
	p.logEquivocations()
	p.shares = shares.NewService(p.Host, p.Store, p.Ledger, signer, shares.WithLogger(log),
		shares.WithGate(p.gate), shares.WithGetObserver(p.metrics.ShareGet), shares.WithOwnerActivity(p.Store.RenewActivity),
		shares.WithPublish(func(e *consent.Entry) {
			p.metrics.Entry("own", e.Kind)
			select {
			case p.outbox <- e:
			default:
				log.Warn("gossip queue full; sync will carry the access entry")
			}
		}))
	p.manifests = manifests.NewService(p.Host, p.Store, log)
	p.startGC(sctx, cfg.GC, cfg.DataDir)
	if cfg.SHL != nil {
		if p.shl, err = shlserve.Start(*cfg.SHL, shlserve.Deps{Host: p.Host, Ledger: p.Ledger, Signer: signer,
			DataDir: cfg.DataDir, Allowed: limits.Allowed, Ready: p.ready.Load, Publish: p.publishOwn, Logger: log}); err != nil {
			return nil, err
		}
	}
	if err := p.startWitness(cfg); err != nil {
		return nil, err
	}
	p.serve = serving.NewService(p.Host, p.served, func(id consent.ID) error {
		if !limits.Allowed(id) {
			return store.ErrNotAllowed
		}
		return nil
	}, log)

	if cfg.DHT {
		if p.dht, err = dht.New(p.Host, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/medwallet"), dht.BootstrapPeers(boot...)); err != nil {
			return nil, err
		}
		// Light clients locate serving peers through this peer's DHT,
		// where this peer provides the serve key of every enrolled patient.
		p.locate = locate.NewService(p.Host, p.dht, log)
		p.announce = locate.Announce(sctx, p.dht, p.served, 0, log)
	}
	if cfg.MDNS {
		m := mdns.NewMdnsService(p.Host, "medwallet", notifee{p})
		if err := m.Start(); err != nil {
			log.Warn("mDNS discovery is off", "err", err)
		} else {
			p.mdns = m
		}
	}
	if len(boot) == 0 {
		log.Info("no bootstrap peers: this is the first or only peer of its network; serving on the ledger as stored")
		p.ready.Store(true)
	}
	if err := p.metrics.Watch(metrics.Sources{Host: p.Host, Usage: p.Store.Usage, Ledger: p.Sync.Stats, Ready: p.ready.Load}); err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go p.maintain(sctx, boot, known)
	log.Info("peer started", "id", p.Host.ID().String(), "addrs", fmt.Sprint(p.Addrs()))
	return p, nil
}

func (p *Peer) gossipOut(ctx context.Context) {
	defer p.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-p.outbox:
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := p.Sync.Publish(pctx, e); err != nil {
				p.log.Debug("gossip of an access entry failed; sync will carry it", "err", err)
			}
			cancel()
		}
	}
}

type notifee struct{ p *Peer }

func (n notifee) HandlePeerFound(ai lpeer.AddrInfo) {
	if ai.ID == n.p.Host.ID() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.p.Host.Connect(ctx, ai); err == nil {
		n.p.log.Debug("found a peer on the LAN", "peer", ai.ID.ShortString())
	}
}

var errCatchingUp = errors.New("the peer is catching up with the ledger; ask another peer")

// gate lets a get through once the peer has caught up with the ledger; before
// that only an owner reading its own record (the shares service then checks
// that the requester is the remote and owns the share): a stale view of
// consent cannot harm the owner, but could serve a revoked grantee.
func (p *Peer) gate(r *consent.Request) error {
	if p.ready.Load() || r.Requester == r.Owner {
		return nil
	}
	return errCatchingUp
}

// catchUpLogEvery spaces the warnings of a peer that cannot catch up.
const catchUpLogEvery = time.Minute

// catchUp syncs the ledger with the connected bootstrap and known peers,
// all at once; the peer serves grantees once one sync succeeded. There is no deadline:
// a peer that cannot reach any bootstrap peer keeps refusing grantees (fail
// closed), and says so in its log now and then. It reports whether the
// peer is ready.
func (p *Peer) catchUp(ctx context.Context, boot []lpeer.AddrInfo) bool {
	if p.ready.Load() {
		return true
	}
	var wg sync.WaitGroup
	for _, ai := range boot {
		// A known peer behind NAT may be connected through a relay only
		// (Limited): sync runs over that too, within the relay's budget.
		if c := p.Host.Network().Connectedness(ai.ID); ai.ID == p.Host.ID() || (c != network.Connected && c != network.Limited) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, ledgersync.SyncStreamLife)
			n, err := p.Sync.SyncWith(sctx, ai.ID)
			cancel()
			if err != nil {
				p.log.Debug("catch-up sync failed", "peer", ai.ID.ShortString(), "err", err)
				return
			}
			if !p.ready.Swap(true) {
				p.log.Info("caught up with the ledger; serving shares", "from", ai.ID.ShortString(), "entries", n)
			}
		}()
	}
	wg.Wait()
	return p.ready.Load()
}

// maintain keeps bootstrap connections up, catches up with the ledger
// after a start and, with the DHT, advertises this peer and connects to
// others found under the rendezvous.
func (p *Peer) maintain(ctx context.Context, boot, known []lpeer.AddrInfo) {
	defer p.wg.Done()
	start := time.Now()
	lastWarn := start
	catchFrom := append(append([]lpeer.AddrInfo(nil), boot...), known...)
	var disc *drouting.RoutingDiscovery
	if p.dht != nil {
		_ = p.dht.Bootstrap(ctx)
		disc = drouting.NewRoutingDiscovery(p.dht)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, ai := range boot {
			if c := p.Host.Network().Connectedness(ai.ID); ai.ID == p.Host.ID() || c == network.Connected || c == network.Limited {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := p.Host.Connect(cctx, ai); err != nil {
				p.log.Debug("bootstrap peer unreachable", "peer", ai.ID.ShortString())
			}
			cancel()
		}
		if !p.catchUp(ctx, catchFrom) && time.Since(lastWarn) >= catchUpLogEvery {
			lastWarn = time.Now()
			p.log.Warn("not caught up with any bootstrap peer; refusing grantees until then",
				"since", time.Since(start).Round(time.Second), "bootstrap", len(boot))
		}
		if disc != nil && len(p.Host.Network().Peers()) > 0 {
			dutil.Advertise(ctx, disc, rendezvous)
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if ch, err := disc.FindPeers(fctx, rendezvous); err == nil {
				for ai := range ch {
					if ai.ID != p.Host.ID() && len(ai.Addrs) > 0 && p.Host.Network().Connectedness(ai.ID) != network.Connected {
						_ = p.Host.Connect(fctx, ai)
					}
				}
			}
			cancel()
		}
		if p.ready.Load() {
			t.Reset(5 * time.Second)
		} else {
			t.Reset(250 * time.Millisecond)
		}
	}
}

// ID is the peer's ID.
func (p *Peer) ID() consent.ID { return p.signer.ID() }

// SHLURL is the base URL of the peer's SMART Health Links endpoint, or ""
// when it serves none.
func (p *Peer) SHLURL() string {
	if p.shl == nil {
		return ""
	}
	return p.shl.URL()
}

// publishOwn queues an entry this peer appended for gossip.
func (p *Peer) publishOwn(e *consent.Entry) {
	p.metrics.Entry("own", e.Kind)
	select {
	case p.outbox <- e:
	default:
		p.log.Warn("gossip queue full; sync will carry the access entry")
	}
}

// Served is the set of patients enrolled on this peer (with their
// rendezvous secrets). The peer also serves the patients whose shares or
// manifests it holds and whose serve entry names it: see Serves.
func (p *Peer) Served() *serving.Set { return p.served }

// Serves reports whether this peer serves subject: enrolled, holding its
// shares or manifests, or named by its latest serve entry.
func (p *Peer) Serves(subject consent.ID) bool {
	var ok bool
	p.Ledger.View(func(v *consent.View) { ok = p.auth.Serves(v, subject) })
	return ok
}

// Addrs returns the peer's full multiaddrs, loopback first.
func (p *Peer) Addrs() []string {
	var out []string
	for _, a := range p.Host.Addrs() {
		out = append(out, a.String()+"/p2p/"+p.Host.ID().String())
	}
	return out
}

// TCPAddr returns the peer's first TCP multiaddr (with /p2p/ID), or its
// first address of any kind.
func (p *Peer) TCPAddr() string {
	all := p.Addrs()
	for _, a := range all {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	if len(all) > 0 {
		return all[0]
	}
	return ""
}

// Close stops every service and closes the stores; it is safe to call twice.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		if p.mdns != nil {
			errs = append(errs, p.mdns.Close())
		}
		if p.cancel != nil {
			p.cancel()
		}
		p.wg.Wait()
		if p.shares != nil {
			p.shares.Close()
		}
		if p.manifests != nil {
			p.manifests.Close()
		}
		p.gc.close()
		if p.shl != nil {
			errs = append(errs, p.shl.Close())
		}
		if p.witness != nil {
			p.witness.Close()
		}
		if p.witnessDB != nil {
			errs = append(errs, p.witnessDB.Close())
		}
		if p.announce != nil {
			p.announce.Close()
		}
		if p.locate != nil {
			p.locate.Close()
		}
		if p.serve != nil {
			p.serve.Close()
		}
		if p.Sync != nil {
			errs = append(errs, p.Sync.Close())
		}
		if p.served != nil {
			errs = append(errs, p.served.Close())
		}
		if p.dht != nil {
			errs = append(errs, p.dht.Close())
		}
		if p.Host != nil {
			errs = append(errs, p.Host.Close())
		}
		if p.Ledger != nil {
			errs = append(errs, p.Ledger.Close())
		}
		if p.Store != nil {
			errs = append(errs, p.Store.Close())
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}
