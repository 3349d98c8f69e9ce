// Package metrics is a medwallet peer's Prometheus metrics: what it
// stores, the share gets it allowed, denied and refused, the ledger
// entries it took in, how far behind its known peers it was at each sync,
// its connections (direct or through a relay), the circuits it relays and
// what its resource manager refused.
//
// Every Metrics has a registry of its own (nothing is registered
// globally), so that several peers in one process (tests, a devnet) keep
// their figures apart. The peer calls small hooks (ShareGet, Entry,
// Synced); the rest is read when Prometheus scrapes (Watch). Every hook
// is a no-op on a nil *Metrics, so a peer without --metrics pays nothing.
//
// No label value carries PHI: no record, share, patient or requester ID.
// Labels are consent reasons, response codes, entry kinds, directions and
// the IDs of the operator's own known peers (the --bootstrap and
// --known-peers lists, at most MaxPeerLabels; every other peer is
// "other"). Every label's values are a fixed set, so the series stay few.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/store"
)

// Namespace prefixes every metric of this package.
const Namespace = "medwallet"

// MaxPeerLabels bounds the known peers that get a label value of their own.
const MaxPeerLabels = 64

// OtherPeer is the peer label of every peer that is not a known peer.
const OtherPeer = "other"

// relayHop is the circuit relay v2 hop protocol: an inbound stream of it
// that stays open is a circuit this peer relays.
const relayHop = "/libp2p/circuit/relay/0.2.0/hop"

// Metrics is one peer's metrics.
type Metrics struct {
	reg *prometheus.Registry

	gets     *prometheus.CounterVec
	entries  *prometheus.CounterVec
	syncs    *prometheus.CounterVec
	behind   *prometheus.GaugeVec
	accepted *prometheus.GaugeVec
	syncedAt *prometheus.GaugeVec

	mu    sync.RWMutex
	known map[lpeer.ID]bool
}

// New returns a Metrics with its own registry, holding the Go runtime's
// and the process's collectors and the peer's hook metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		gets: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "share_gets_total",
			Help: "Share gets answered, by outcome (allow, deny: consent decided and logged; refused: before any decision) and reason (the consent reason, or the response code of a refusal)."},
			[]string{"outcome", "reason"}),
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "ledger_entries_total",
			Help: "Ledger entries that joined this peer's ledger since it started, by source (received: gossip, sync or push; own: written by this peer) and kind."},
			[]string{"source", "kind"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "ledger_syncs_total",
			Help: "Pull syncs of the ledger made by this peer, by remote (a known peer's ID, or other) and result (ok, error)."},
			[]string{"peer", "result"}),
		behind: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "ledger_sync_behind_feeds",
			Help: "Feeds on which the remote was ahead of this peer when the last completed sync with it began (0: caught up with it)."},
			[]string{"peer"}),
		accepted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "ledger_sync_accepted_entries",
			Help: "Entries the last completed sync with the remote brought in (how many this peer lacked)."},
			[]string{"peer"}),
		syncedAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "ledger_sync_last_success_timestamp_seconds",
			Help: "Unix time of the last completed sync with the remote."},
			[]string{"peer"}),
		known: map[lpeer.ID]bool{},
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.gets, m.entries, m.syncs, m.behind, m.accepted, m.syncedAt)
	return m
}

// Registerer is the registry the metrics are in, for more collectors
// (go-libp2p's own, through libp2p.PrometheusRegisterer); nil for a nil
// *Metrics.
func (m *Metrics) Registerer() prometheus.Registerer {
	if m == nil {
		return nil
	}
	return m.reg
}

// Gatherer is the registry, to read the metrics (tests, the handler).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the metrics in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// KnownPeers sets the peers whose ID labels their sync metrics (the first
// MaxPeerLabels); syncs with any other peer are counted under "other".
func (m *Metrics) KnownPeers(ids []lpeer.ID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if len(m.known) >= MaxPeerLabels {
			break
		}
		m.known[id] = true
	}
}

func (m *Metrics) peerLabel(p lpeer.ID) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.known[p] {
		return p.String()
	}
	return OtherPeer
}

// getReasons are the label values a get's reason may take; anything else
// is "other".
var getReasons = map[string]bool{
	// consent reasons (consent/decide.go)
	string(consent.ReasonGranted): true, string(consent.ReasonEmergency): true, string(consent.ReasonOwner): true,
	string(consent.ReasonNoGrant): true, string(consent.ReasonWrongGrantee): true, string(consent.ReasonRecord): true,
	string(consent.ReasonRevoked): true, string(consent.ReasonNotYetValid): true, string(consent.ReasonExpired): true,
	string(consent.ReasonScope): true, string(consent.ReasonPurpose): true, string(consent.ReasonBadSignature): true,
	string(consent.ReasonEquivocating): true, string(consent.ReasonReplay): true, string(consent.ReasonNoCredential): true,
	string(consent.ReasonCredentialRevoked): true, string(consent.ReasonCredentialExpired): true,
	string(consent.ReasonNoBreakGlass): true, string(consent.ReasonTimeBox): true, string(consent.ReasonDeviceRevoked): true,
	// response codes of refusals before a decision (p2p/shares)
	"rate-limited": true, "busy": true, "not-found": true, "bad-request": true, "internal": true,
}

// ShareGet counts one answered get: outcome is shares.GetAllowed,
// GetDenied or GetRefused, reason a consent reason or a response code
// (others are counted as "other").
func (m *Metrics) ShareGet(outcome, reason string) {
	if m == nil {
		return
	}
	switch outcome {
	case "allow", "deny", "refused":
	default:
		outcome = "other"
	}
	if !getReasons[reason] {
		reason = "other"
	}
	m.gets.WithLabelValues(outcome, reason).Inc()
}

// Entry counts one entry that joined the ledger: source is "received" or
// "own".
func (m *Metrics) Entry(source string, k consent.Kind) {
	if m == nil {
		return
	}
	if source != "own" {
		source = "received"
	}
	kind := k.String()
	if strings.HasPrefix(kind, "kind(") { // not a kind this version knows
		kind = "other"
	}
	m.entries.WithLabelValues(source, kind).Inc()
}

// Synced records one pull sync with p (ledgersync.WithSyncObserver).
func (m *Metrics) Synced(p lpeer.ID, r ledgersync.SyncResult) {
	if m == nil {
		return
	}
	label := m.peerLabel(p)
	if r.Err != nil {
		m.syncs.WithLabelValues(label, "error").Inc()
		return
	}
	m.syncs.WithLabelValues(label, "ok").Inc()
	if label == OtherPeer {
		return // one gauge for every stranger would say nothing
	}
	m.behind.WithLabelValues(label).Set(float64(r.Behind))
	m.accepted.WithLabelValues(label).Set(float64(r.Accepted))
	m.syncedAt.WithLabelValues(label).SetToCurrentTime()
}

// Sources are what Watch reads at each scrape; nil fields are skipped.
type Sources struct {
	// Host gives the connections, relayed circuits and resource-manager
	// refusals (node.RefusalsOf).
	Host host.Host
	// Usage is the store's usage (boltstore.Store.Usage).
	Usage func() store.Usage
	// Ledger are the ledger services' counters.
	Ledger func() ledgersync.Stats
	// Ready reports whether the peer serves grantees (it caught up with
	// the ledger after it started).
	Ready func() bool
}

// Watch registers a collector that reads src at every scrape.
func (m *Metrics) Watch(src Sources) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(&scrape{src: src})
}

// Serve serves the metrics over HTTP at /metrics on addr (host:port) until
// ctx ends, and returns the address it listens on. It listens before it
// returns, so a bad or busy address is an error here.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { srv.Close() })
	return ln.Addr(), nil
}

// scrape is the collector of what is read at scrape time.
type scrape struct{ src Sources }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	dShares        = desc("store_shares", "Shares stored.")
	dShareBytes    = desc("store_share_bytes", "Bytes of shares stored.")
	dManifests     = desc("store_manifests", "Manifest copies stored.")
	dManifestBytes = desc("store_manifest_bytes", "Bytes of manifest copies stored.")
	dOwners        = desc("store_owners", "Owners with something stored.")
	dFree          = desc("store_free_bytes", "Free bytes on the data directory's filesystem (-1: unknown).")
	dReceived      = desc("ledger_received_entries_total", "Ledger entries received by gossip, sync or push, by outcome.", "outcome")
	dNotAuth       = desc("ledger_not_authorised_total", "Ledger requests and entries refused because the remote may not read or write them here (need to know).")
	dReady         = desc("peer_ready", "1 once the peer caught up with the ledger after it started and serves grantees, 0 before.")
	dConns         = desc("connections", "Open connections, by path (direct, or relayed through a circuit relay) and direction.", "path", "direction")
	dPeers         = desc("connected_peers", "Peers with at least one open connection.")
	dCircuits      = desc("relay_circuits", "Circuits this peer relays now (the relay service; 0 when it does not run).")
	dRefusals      = desc("rcmgr_refusals_total", "What the resource manager refused, by pool (strangers, known) and kind (connection, stream, memory).", "pool", "kind")
)

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dShares, dShareBytes, dManifests, dManifestBytes, dOwners, dFree,
		dReceived, dNotAuth, dReady, dConns, dPeers, dCircuits, dRefusals} {
		ch <- d
	}
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if s.src.Usage != nil {
		u := s.src.Usage()
		gauge(dShares, float64(u.Total.Shares))
		gauge(dShareBytes, float64(u.Total.ShareBytes))
		gauge(dManifests, float64(u.Total.Manifests))
		gauge(dManifestBytes, float64(u.Total.ManifestBytes))
		gauge(dOwners, float64(len(u.Owners)))
		gauge(dFree, float64(u.Free))
	}
	if s.src.Ledger != nil {
		st := s.src.Ledger()
		counter(dReceived, st.Accepted, "accepted")
		counter(dReceived, st.Duplicates, "duplicate")
		counter(dReceived, st.Pending, "pending")
		counter(dReceived, st.Rejected, "rejected")
		counter(dReceived, st.Conflicts, "conflict")
		counter(dNotAuth, st.NotAuthorised)
	}
	if s.src.Ready != nil {
		ready := 0.0
		if s.src.Ready() {
			ready = 1
		}
		gauge(dReady, ready)
	}
	if h := s.src.Host; h != nil {
		s.collectHost(h, gauge, counter)
	}
}

func (s *scrape) collectHost(h host.Host, gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	type key struct{ path, dir string }
	conns := map[key]int{}
	for _, path := range []string{"direct", "relayed"} {
		for _, dir := range []string{"inbound", "outbound"} {
			conns[key{path, dir}] = 0
		}
	}
	circuits := 0
	for _, c := range h.Network().Conns() {
		st := c.Stat()
		path := "direct"
		if st.Limited || isRelayed(c.RemoteMultiaddr()) {
			path = "relayed"
		}
		dir := "inbound"
		if st.Direction == network.DirOutbound {
			dir = "outbound"
		}
		conns[key{path, dir}]++
		for _, str := range c.GetStreams() {
			if str.Protocol() == relayHop && str.Stat().Direction == network.DirInbound {
				circuits++
			}
		}
	}
	for k, n := range conns {
		gauge(dConns, float64(n), k.path, k.dir)
	}
	gauge(dPeers, float64(len(h.Network().Peers())))
	gauge(dCircuits, float64(circuits))
	strangers, known := node.RefusalsOf(h)
	for _, p := range []struct {
		pool string
		r    node.Refusals
	}{{"strangers", strangers}, {"known", known}} {
		counter(dRefusals, p.r.Conns, p.pool, "connection")
		counter(dRefusals, p.r.Streams, p.pool, "stream")
		counter(dRefusals, p.r.Memory, p.pool, "memory")
	}
}

// isRelayed reports whether a is a relayed (/p2p-circuit) address.
func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
