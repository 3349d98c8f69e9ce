// Package node builds the libp2p hosts medwallet uses: a peer that listens
// on TCP and QUIC, or a light client that only dials. The host's key is the
// actor's Ed25519 identity key, so its peer ID is the actor's medwallet ID
// and every connection's Noise or TLS handshake authenticates it.
//
// Every host has go-libp2p's resource manager and connection manager,
// configured in one place (limits.go): per-peer, per-protocol and
// per-protocol-per-peer stream and memory limits, system-wide limits
// scaled to the machine, per-IP connection limits, and a pool of its own
// for the peers the operator knows (see Options.Known).
package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultListen are a peer's listen addresses when none are given: all
// interfaces, ports chosen by the system, TCP and QUIC.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}

// LoopbackListen listens on loopback only, for tests and devnets.
var LoopbackListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Options configure a host.
type Options struct {
	// Listen are multiaddrs to listen on; none makes a dial-only client.
	Listen []string
	// UserAgent is announced by identify.
	UserAgent string
	// Limits are the operator's tunables; the zero value is the defaults.
	// A host with no Listen addresses gets a light client's limits.
	Limits Limits
	// Known are the peers this host's operator knows: the peer's
	// bootstrap list and the peers of its network file, each a peer ID
	// with the addresses it is known at. "Known" is the operator's word,
	// never something a remote can claim: the ID is authenticated by the
	// connection's handshake, and peers found through mDNS or the DHT,
	// and every client, are strangers. Known peers are never trimmed by
	// the connection manager; their streams and stream memory come from a
	// pool strangers cannot use; their connections from the addresses
	// listed here are allowlisted, so they do not count against the
	// strangers' connection limits, and those addresses get four times
	// the per-IP allowance. A known peer that connects from another
	// address still gets its stream pool. A light client ignores Known.
	Known []peer.AddrInfo
	// Logger receives debug lines when a limit refuses something (peer IDs
	// shortened, no payload). Nil discards.
	Logger *slog.Logger
	// Reach is how a listening host is reached from outside its network:
	// relays, the relay service, announced addresses, port mapping (see
	// Reach). A light client ignores it but for hole punching.
	Reach Reach
	// Punch makes a light client (no Listen addresses) listen on
	// ephemeral ports of every interface so that DCUtR hole punching can
	// turn its relayed connections into direct ones. It keeps a light
	// client's limits. Use it when a peer is reached through a relay.
	Punch bool
	// Metrics, if not nil, gets go-libp2p's own metrics (swarm, identify,
	// hole punching, AutoNAT, the relay service); nil turns them off.
	Metrics prometheus.Registerer
}

// New returns a host with key priv.
func New(priv ed25519.PrivateKey, o Options) (host.Host, error) {
	sk, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "medwallet"
	}
	client := len(o.Listen) == 0
	cfg := newConfig(o.Limits, client, o.Known)
	rm, err := newResourceManager(cfg, o.Known, o.Logger)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.maxConns/2, cfg.maxConns*3/4, connmgr.WithGracePeriod(gracePeriod))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(sk),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		// The relay transport: dial /p2p-circuit addresses, accept
		// relayed connections (a light client too: NoListenAddrs would
		// turn it off).
		libp2p.EnableRelay(),
		libp2p.UserAgent(ua),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
	}
	if self, err := peer.IDFromPrivateKey(sk); err == nil {
		o.Reach.Relays = otherRelays(self, o.Reach.Relays)
	}
	opts = append(opts, reachOptions(o.Reach, client, o.Punch, cm)...)
	switch {
	case !client:
		opts = append(opts, libp2p.ListenAddrStrings(o.Listen...))
	case o.Punch:
		opts = append(opts, libp2p.ListenAddrStrings(DefaultListen...))
	default:
		opts = append(opts, libp2p.NoListenAddrs)
	}
	if o.Metrics != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(o.Metrics))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		// libp2p.New closes them on some errors only; closing twice is safe.
		cm.Close()
		rm.Close()
		return nil, fmt.Errorf("starting libp2p: %w", err)
	}
	if !client && o.Reach.RelayService {
		ropts := []relayv2.Option{relayv2.WithResources(relayResources(o.Reach.RelayBudget))}
		if o.Metrics != nil {
			ropts = append(ropts, relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(o.Metrics))))
		}
		r, err := relayv2.New(h, ropts...)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("starting the relay service: %w", err)
		}
		h = &relayHost{Host: h, relay: r}
		if o.Logger != nil {
			b := relayResources(o.Reach.RelayBudget).Limit
			o.Logger.Info("relay service on", "budget_bytes", b.Data, "budget_duration", b.Duration.String(),
				"max_reservations", relayMaxReservations, "max_circuits_per_peer", relayMaxCircuits)
		}
	}
	if !client {
		for _, ai := range o.Known {
			if ai.ID != h.ID() {
				cm.Protect(ai.ID, knownTag)
			}
		}
		if o.Logger != nil {
			sys := cfg.strangers.ToPartialLimitConfig().System
			o.Logger.Info("connection limits", "max_conns", cfg.maxConns, "max_conns_per_ip", cfg.perIP,
				"memory_mib", int64(sys.Memory)>>20, "streams_in", int(sys.StreamsInbound), "known_peers", len(rm.knownIDs))
		}
	}
	return h, nil
}

// relayHost is a host running the relay service, which it closes first.
type relayHost struct {
	host.Host
	relay *relayv2.Relay
}

func (h *relayHost) Close() error {
	h.relay.Close()
	return h.Host.Close()
}

// knownTag is the connection manager's protection tag of known peers.
const knownTag = "medwallet-known"

// newResourceManager builds a host's resource manager from cfg: for a
// peer, the strangers' and the known peers' pools; for a client, one.
func newResourceManager(cfg config, known []peer.AddrInfo, log *slog.Logger) (*pools, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v4, v6 := cfg.subnetLimits()
	p4, p6 := cfg.prefixLimits()
	p := &pools{knownIDs: map[peer.ID]bool{}, strangerRefusals: newRefusals("strangers", log)}
	strangers, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(cfg.strangers),
		rcmgr.WithLimitPerSubnet(v4, v6),
		rcmgr.WithNetworkPrefixLimit(p4, p6),
		rcmgr.WithConnRateLimiters(cfg.rateLimiter()),
		rcmgr.WithAllowlistedMultiaddrs(cfg.knownAddrs),
		rcmgr.WithMetricsDisabled(),
		rcmgr.WithMetrics(p.strangerRefusals))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	p.ResourceManager = strangers
	if cfg.client {
		return p, nil
	}
	for _, ai := range known {
		p.knownIDs[ai.ID] = true
	}
	p.knownRefusals = newRefusals("known", log)
	if p.known, err = rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(cfg.known),
		rcmgr.WithMetricsDisabled(),
		rcmgr.WithMetrics(p.knownRefusals)); err != nil {
		strangers.Close()
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return p, nil
}

// LoadOrCreateKey reads a peer's Ed25519 key from path (the 32-byte seed),
// creating it with mode 0600 if it does not exist. A key file that others
// can read is refused.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(priv.Seed()); err != nil {
			f.Close()
			os.Remove(path)
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		return priv, f.Close()
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %v: it must not be readable by others (chmod 600)", path, fi.Mode().Perm())
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("key file %s is damaged", path)
	}
	return ed25519.NewKeyFromSeed(b), nil
}
