package node

import (
	"math"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Limits are the resource limits an operator tunes. The zero value picks
// the defaults below; everything else (per peer, per protocol, per stream)
// is fixed in this file, in one resource-manager configuration.
//
// Every remote identity that is not known (see Options.Known) is a
// stranger. Each stranger gets the same small per-peer and per-protocol
// allowance (for example 4 inbound share streams, 2 ledger-sync and 2
// ledger-push streams, 64 MiB of memory), so one identity cannot take a
// protocol's capacity; many identities are bounded by the strangers'
// system-wide limits, and by the per-IP limits below when they come from
// few addresses. Known peers draw their streams and stream memory from a
// pool of their own that strangers cannot touch.
type Limits struct {
	// MaxConns bounds the inbound connections of strangers, all together.
	// Past three quarters of it, the connection manager closes strangers'
	// least useful connections (none younger than 20 s) down to half of
	// it, so that new ones find room. Zero scales it to the memory budget:
	// 128, plus 128 per GiB.
	MaxConns int
	// MaxConnsPerIP bounds the connections from one IPv4 address or one
	// IPv6 /56 (a /48 gets four times as many). Zero is
	// DefaultMaxConnsPerIP. 127.0.0.1 and ::1 (this machine) are not
	// counted; a known peer's address gets four times as many.
	MaxConnsPerIP int
	// Memory is the budget, in bytes, that strangers together may make
	// this host reserve (frames being read, stream windows); stream and
	// connection limits scale with it. Zero is an eighth of the machine's
	// memory; it is at least 256 MiB. Known peers' streams have a budget
	// of their own, half as large.
	Memory int64
}

// DefaultMaxConnsPerIP is the default of Limits.MaxConnsPerIP.
const DefaultMaxConnsPerIP = 16

// clientConnsPerIP is a light client's per-IP limit.
const clientConnsPerIP = 256

// Protocol IDs medwallet's limits name. They are those of p2p/shares,
// p2p/manifests, p2p/ledgersync, go-libp2p-pubsub and the DHT under the
// /medwallet prefix (a test checks that they match); node cannot import
// the protocol packages, whose tests build their hosts here.
const (
	sharesID    protocol.ID = "/medwallet/shares/1.0.0"
	manifestsID protocol.ID = "/medwallet/manifests/1.0.0"
	pushID      protocol.ID = "/medwallet/ledger-push/2.0.0"
	syncID      protocol.ID = "/medwallet/ledger-sync/1.0.0"
	kadID       protocol.ID = "/medwallet/kad/1.0.0"
	locateID    protocol.ID = "/medwallet/locate/1.0.0"
)

// gossipIDs are the pubsub protocols a gossipsub router speaks.
var gossipIDs = []protocol.ID{"/meshsub/1.0.0", "/meshsub/1.1.0", "/meshsub/1.2.0", "/meshsub/1.3.0", "/floodsub/1.0.0"}

// streams is a stream allowance: inbound, outbound, memory.
type streams struct {
	in, out int
	mem     int64
}

func (s streams) base() rcmgr.BaseLimit {
	return rcmgr.BaseLimit{StreamsInbound: s.in, StreamsOutbound: s.out, Streams: s.in + s.out, Memory: s.mem}
}

func (s streams) inc() rcmgr.BaseLimitIncrease {
	return rcmgr.BaseLimitIncrease{StreamsInbound: s.in, StreamsOutbound: s.out, Streams: s.in + s.out, Memory: s.mem}
}

// protoLimit is one protocol's allowance: per remote peer (stranger or
// known) and for all strangers together (base, plus as much again per GiB
// of the memory budget).
type protoLimit struct {
	id       protocol.ID
	stranger streams // one stranger
	all      streams // all strangers together, base and per GiB
	known    streams // one known peer
}

// peerProtocols are a listening peer's allowances. A share transfer reads
// 64 KiB frames; a manifest request is up to 16 MiB + 4 KiB; a sync batch
// frame is about 3 MiB; a push frame at most one entry (1 MiB); pubsub
// keeps one stream each way per peer.
var peerProtocols = []protoLimit{
	{sharesID, streams{4, 4, 8 << 20}, streams{256, 256, 256 << 20}, streams{16, 16, 32 << 20}},
	{manifestsID, streams{2, 2, 20 << 20}, streams{32, 32, 256 << 20}, streams{4, 4, 80 << 20}},
	// Push carries revocations: its strangers' total is set so that only
	// the per-remote allowance and the connection limits bind, never a
	// pool a few dozen identities could fill (memory stays within B).
	{pushID, streams{2, 2, 8 << 20}, streams{512, 512, 256 << 20}, streams{8, 8, 32 << 20}},
	{syncID, streams{2, 4, 16 << 20}, streams{64, 128, 128 << 20}, streams{8, 8, 64 << 20}},
	{kadID, streams{8, 8, 8 << 20}, streams{256, 256, 64 << 20}, streams{16, 16, 16 << 20}},
	// A locate request is 64 bytes, its answer at most 64 KiB.
	{locateID, streams{2, 2, 1 << 20}, streams{64, 64, 16 << 20}, streams{4, 4, 1 << 20}},
}

// clientProtocols are a light client's: it serves none of them and dials
// only the peers of its network file.
var clientProtocols = []protoLimit{
	{sharesID, streams{2, 16, 16 << 20}, streams{16, 256, 256 << 20}, streams{}},
	{manifestsID, streams{2, 4, 140 << 20}, streams{16, 64, 256 << 20}, streams{}},
	{pushID, streams{2, 4, 8 << 20}, streams{16, 64, 64 << 20}, streams{}},
	{syncID, streams{2, 4, 16 << 20}, streams{16, 64, 128 << 20}, streams{}},
	{locateID, streams{0, 4, 1 << 20}, streams{0, 16, 4 << 20}, streams{}},
}

// gossipLimit is the allowance of each pubsub protocol.
var gossipLimit = protoLimit{"", streams{2, 2, 8 << 20}, streams{256, 256, 64 << 20}, streams{4, 4, 16 << 20}}

// Stream memory: the largest frame a peer reads is a manifest request
// (16 MiB + 4 KiB); a client also reads manifest lists (64 MiB).
const (
	peerStreamMemory   = 20 << 20
	clientStreamMemory = 68 << 20
)

// gracePeriod: the connection manager never trims a connection younger
// than this (a var for tests).
var gracePeriod = 20 * time.Second

// knownPeerScope is a known peer's own scope in the strangers' manager,
// which holds its connections (and their stream windows); its streams are
// in the known peers' pool.
var knownPeerScope = rcmgr.BaseLimit{
	ConnsInbound: 16, ConnsOutbound: 16, Conns: 32, FD: 32,
	StreamsInbound: 256, StreamsOutbound: 256, Streams: 512,
	Memory: 256 << 20,
}

// config is a host's complete limit configuration.
type config struct {
	strangers  rcmgr.ConcreteLimitConfig
	known      rcmgr.ConcreteLimitConfig // zero for a client
	client     bool
	maxConns   int // strangers' inbound connections; the connection manager's high water mark
	perIP      int
	knownAddrs []ma.Multiaddr // IP addresses of known peers, with /p2p/ID
	knownIPs   []netip.Addr
}

// machine returns what go-libp2p's AutoScale scales by: an eighth of the
// machine's memory (0 if that is 128 MiB or less) and half the process's
// file descriptor limit.
func machine() (memory int64, fds int) {
	probe := rcmgr.ScalingLimitConfig{
		SystemBaseLimit:     rcmgr.BaseLimit{Memory: 1, FD: 1},
		SystemLimitIncrease: rcmgr.BaseLimitIncrease{Memory: 1 << 30, FDFraction: 1},
	}
	sys := probe.AutoScale().ToPartialLimitConfig().System
	return int64(sys.Memory) - 1, int(sys.FD)
}

// newConfig builds the limits of a peer (client false) or a light client.
func newConfig(l Limits, client bool, known []peer.AddrInfo) config {
	mem, fds := machine()
	if l.Memory > 0 {
		mem = l.Memory
	}
	mem = max(mem, 256<<20)
	c := config{client: client, perIP: l.MaxConnsPerIP}
	if c.perIP <= 0 {
		c.perIP = DefaultMaxConnsPerIP
	}
	if client {
		// A client only dials the peers of its network file, which may
		// share an address; the per-IP limits count outbound connections
		// too.
		c.perIP = clientConnsPerIP
	}
	if client {
		sc := clientScaling()
		c.strangers = sc.Scale(mem, fds)
	} else {
		sc, kc := strangerScaling(), knownScaling()
		for _, ai := range known {
			sc.AddPeerLimit(ai.ID, knownPeerScope, rcmgr.BaseLimitIncrease{})
		}
		c.strangers, c.known = sc.Scale(mem, fds), kc.Scale(mem, fds)
	}
	sys := c.strangers.ToPartialLimitConfig().System
	c.maxConns = int(sys.ConnsInbound)
	if client {
		c.maxConns = int(sys.Conns) // a client's connections are its own dials
	}
	if l.MaxConns > 0 {
		c.maxConns = l.MaxConns
		out := int(sys.ConnsOutbound)
		c.strangers = rcmgr.PartialLimitConfig{System: rcmgr.ResourceLimits{
			ConnsInbound: rcmgr.LimitVal(l.MaxConns),
			Conns:        rcmgr.LimitVal(l.MaxConns + out),
		}}.Build(c.strangers)
	}
	if client {
		return c
	}
	for _, ai := range known {
		for _, a := range ai.Addrs {
			ip, err := manet.ToIP(a)
			if err != nil {
				continue // a DNS name: the peer is still known by its ID
			}
			addr, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			c.knownIPs = append(c.knownIPs, addr.Unmap())
			c.knownAddrs = append(c.knownAddrs, a.Encapsulate(ma.StringCast("/p2p/"+ai.ID.String())))
		}
	}
	return c
}

// strangerScaling is a peer's configuration for strangers.
func strangerScaling() rcmgr.ScalingLimitConfig {
	c := rcmgr.ScalingLimitConfig{
		SystemBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 128, ConnsOutbound: 128, Conns: 256,
			StreamsInbound: 2048, StreamsOutbound: 2048, Streams: 4096,
			FD: 256, // no Memory: all of it is the increase, so the system limit is the budget
		},
		SystemLimitIncrease: rcmgr.BaseLimitIncrease{
			ConnsInbound: 128, ConnsOutbound: 64, Conns: 192,
			StreamsInbound: 2048, StreamsOutbound: 1024, Streams: 3072,
			Memory: 1 << 30, FDFraction: 1,
		},
		TransientBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 64, ConnsOutbound: 64, Conns: 128,
			StreamsInbound: 256, StreamsOutbound: 256, Streams: 512,
			Memory: 32 << 20, FD: 64,
		},
		TransientLimitIncrease: rcmgr.BaseLimitIncrease{
			ConnsInbound: 32, ConnsOutbound: 32, Conns: 64,
			StreamsInbound: 256, StreamsOutbound: 256, Streams: 512,
			Memory: 64 << 20, FDFraction: 0.25,
		},
		// The allowlisted scopes hold the connections (not the streams)
		// of known peers that come from the addresses they are known at.
		AllowlistedSystemBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 64, ConnsOutbound: 64, Conns: 128,
			StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048,
			Memory: 256 << 20, FD: 128,
		},
		AllowlistedSystemLimitIncrease: rcmgr.BaseLimitIncrease{Memory: 256 << 20},
		AllowlistedTransientBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 32, ConnsOutbound: 32, Conns: 64,
			StreamsInbound: 256, StreamsOutbound: 256, Streams: 512,
			Memory: 64 << 20, FD: 64,
		},
		ServiceBaseLimit:      streams{1024, 1024, 256 << 20}.base(),
		ServiceLimitIncrease:  streams{1024, 1024, 256 << 20}.inc(),
		ServicePeerBaseLimit:  streams{16, 16, 32 << 20}.base(),
		ProtocolBaseLimit:     streams{256, 512, 64 << 20}.base(),
		ProtocolLimitIncrease: streams{256, 512, 64 << 20}.inc(),
		ProtocolPeerBaseLimit: streams{8, 8, 8 << 20}.base(),
		ConnBaseLimit:         rcmgr.BaseLimit{ConnsInbound: 1, ConnsOutbound: 1, Conns: 1, FD: 1, Memory: 32 << 20},
		StreamBaseLimit:       rcmgr.BaseLimit{StreamsInbound: 1, StreamsOutbound: 1, Streams: 1, Memory: peerStreamMemory},
		PeerBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 4, ConnsOutbound: 4, Conns: 8,
			StreamsInbound: 32, StreamsOutbound: 32, Streams: 64,
			Memory: 64 << 20, FD: 4,
		},
	}
	libp2p.SetDefaultServiceLimits(&c)
	addReachServices(&c)
	addProtocols(&c, peerProtocols, false)
	return c
}

// knownScaling is a peer's configuration for the streams of known peers.
// It holds no connections.
func knownScaling() rcmgr.ScalingLimitConfig {
	c := rcmgr.ScalingLimitConfig{
		SystemBaseLimit:               streams{1024, 1024, 0}.base(),
		SystemLimitIncrease:           rcmgr.BaseLimitIncrease{Memory: 512 << 20}, // half the strangers' budget
		TransientBaseLimit:            streams{256, 256, 64 << 20}.base(),
		ServiceBaseLimit:              streams{1024, 1024, 256 << 20}.base(),
		ServicePeerBaseLimit:          streams{64, 64, 64 << 20}.base(),
		ProtocolBaseLimit:             streams{512, 512, 256 << 20}.base(),
		ProtocolPeerBaseLimit:         streams{32, 32, 64 << 20}.base(),
		StreamBaseLimit:               rcmgr.BaseLimit{StreamsInbound: 1, StreamsOutbound: 1, Streams: 1, Memory: clientStreamMemory},
		PeerBaseLimit:                 rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 256 << 20},
		AllowlistedSystemBaseLimit:    rcmgr.BaseLimit{},
		AllowlistedTransientBaseLimit: rcmgr.BaseLimit{},
	}
	libp2p.SetDefaultServiceLimits(&c)
	addReachServices(&c)
	addProtocols(&c, peerProtocols, true)
	return c
}

// clientScaling is a light client's configuration: it dials the peers of
// its network file and listens on nothing.
func clientScaling() rcmgr.ScalingLimitConfig {
	c := rcmgr.ScalingLimitConfig{
		SystemBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 16, ConnsOutbound: 256, Conns: 256,
			StreamsInbound: 256, StreamsOutbound: 2048, Streams: 2048,
			Memory: 256 << 20, FD: 256,
		},
		SystemLimitIncrease: rcmgr.BaseLimitIncrease{Memory: 256 << 20, FDFraction: 0.5},
		TransientBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 16, ConnsOutbound: 64, Conns: 64,
			StreamsInbound: 64, StreamsOutbound: 256, Streams: 256,
			Memory: 32 << 20, FD: 64,
		},
		ServiceBaseLimit:      streams{256, 1024, 128 << 20}.base(),
		ServicePeerBaseLimit:  streams{16, 64, 64 << 20}.base(),
		ProtocolBaseLimit:     streams{64, 512, 64 << 20}.base(),
		ProtocolPeerBaseLimit: streams{8, 16, 8 << 20}.base(),
		ConnBaseLimit:         rcmgr.BaseLimit{ConnsInbound: 1, ConnsOutbound: 1, Conns: 1, FD: 1, Memory: 32 << 20},
		StreamBaseLimit:       rcmgr.BaseLimit{StreamsInbound: 1, StreamsOutbound: 1, Streams: 1, Memory: clientStreamMemory},
		PeerBaseLimit: rcmgr.BaseLimit{
			ConnsInbound: 2, ConnsOutbound: 4, Conns: 4,
			StreamsInbound: 32, StreamsOutbound: 128, Streams: 128,
			Memory: 160 << 20, FD: 4,
		},
	}
	libp2p.SetDefaultServiceLimits(&c)
	addReachServices(&c)
	addProtocols(&c, clientProtocols, false)
	return c
}

// addReachServices sets the service scopes of the reachability services
// beyond go-libp2p's defaults (SetDefaultServiceLimits, which covers hole
// punching, AutoNAT v1 and identify): the relay service carries up to
// relayMaxCircuits relayed connections per peer each way, two streams
// each on the relay, each with two small buffers; AutoNAT v2 asks a
// handful of dial-backs per peer.
func addReachServices(c *rcmgr.ScalingLimitConfig) {
	relay := streams{4 * relayMaxCircuits * 8, 4 * relayMaxCircuits * 8, 64 << 20}
	c.AddServiceLimit(relayv2.ServiceName, relay.base(), relay.inc())
	c.AddServicePeerLimit(relayv2.ServiceName, streams{2*relayMaxCircuits + 8, 2*relayMaxCircuits + 8, 4 << 20}.base(), rcmgr.BaseLimitIncrease{})
	an := streams{64, 64, 4 << 20}
	c.AddServiceLimit(autonatv2.ServiceName, an.base(), an.inc())
	c.AddServicePeerLimit(autonatv2.ServiceName, streams{2, 2, 1 << 20}.base(), rcmgr.BaseLimitIncrease{})
	for _, id := range []protocol.ID{autonatv2.DialProtocol, autonatv2.DialBackProtocol} {
		c.AddProtocolLimit(id, an.base(), an.inc())
		c.AddProtocolPeerLimit(id, streams{2, 2, 1 << 20}.base(), rcmgr.BaseLimitIncrease{})
	}
}

// addProtocols sets medwallet's protocol allowances: the known peers'
// (known true) or the strangers'.
func addProtocols(c *rcmgr.ScalingLimitConfig, ps []protoLimit, known bool) {
	add := func(p protoLimit) {
		if known {
			c.AddProtocolLimit(p.id, c.ProtocolBaseLimit, rcmgr.BaseLimitIncrease{})
			c.AddProtocolPeerLimit(p.id, p.known.base(), rcmgr.BaseLimitIncrease{})
			return
		}
		c.AddProtocolLimit(p.id, p.all.base(), p.all.inc())
		c.AddProtocolPeerLimit(p.id, p.stranger.base(), rcmgr.BaseLimitIncrease{})
	}
	for _, p := range ps {
		add(p)
	}
	for _, id := range gossipIDs {
		g := gossipLimit
		g.id = id
		add(g)
	}
}

// subnetLimits are the per-IP connection limits.
func (c config) subnetLimits() (v4, v6 []rcmgr.ConnLimitPerSubnet) {
	return []rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: c.perIP}},
		[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: c.perIP}, {PrefixLength: 48, ConnCount: 4 * c.perIP}}
}

// prefixLimits exempt this machine and raise the allowance of known
// peers' addresses.
func (c config) prefixLimits() (v4, v6 []rcmgr.NetworkPrefixLimit) {
	v4 = []rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.1/32"), ConnCount: math.MaxInt32}}
	v6 = []rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: math.MaxInt32}}
	seen := map[netip.Addr]bool{netip.MustParseAddr("127.0.0.1"): true, netip.IPv6Loopback(): true}
	for _, ip := range c.knownIPs {
		if seen[ip] {
			continue
		}
		seen[ip] = true
		l := rcmgr.NetworkPrefixLimit{Network: netip.PrefixFrom(ip, ip.BitLen()), ConnCount: 4 * c.perIP}
		if ip.Is4() {
			v4 = append(v4, l)
		} else {
			v6 = append(v6, l)
		}
	}
	return v4, v6
}

// rateLimiter bounds how fast one IP may open connections: a burst of
// twice its connection allowance, then one a second. This machine and
// known peers' addresses are not rate limited.
func (c config) rateLimiter() *rate.Limiter {
	if c.client {
		return &rate.Limiter{} // no limit: the client dials whom it chose
	}
	burst := 2 * c.perIP
	l := &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: netip.MustParsePrefix("127.0.0.1/32")},
			{Prefix: netip.MustParsePrefix("::1/128")},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: 1, Burst: burst}}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: 1, Burst: burst}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 4, Burst: 4 * burst}},
			},
			GracePeriod: time.Minute,
		},
	}
	for _, ip := range c.knownIPs {
		l.NetworkPrefixLimits = append(l.NetworkPrefixLimits, rate.PrefixLimit{Prefix: netip.PrefixFrom(ip, ip.BitLen())})
	}
	return l
}
