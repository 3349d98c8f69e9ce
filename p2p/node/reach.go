package node

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reach configures how a peer is reached from outside its own network,
// with go-libp2p's own machinery (docs/network.md, "Peers behind NAT"):
//
//   - AutoNAT (v1 for the host's reachability, v2 for each address) tells
//     a peer whether it is publicly reachable;
//   - a peer that is not (or not yet known to be) reserves a slot on the
//     static relays (AutoRelay, circuit relay v2) and announces its
//     /p2p-circuit addresses through them;
//   - DCUtR hole punching turns a relayed connection into a direct one
//     where the NATs allow it;
//   - UPnP or NAT-PMP maps a port on the router where it offers that
//     (PortMap);
//   - a public peer may run the relay service for others (RelayService),
//     within a budget per relayed connection.
//
// The relay transport is always on: every host can dial a /p2p-circuit
// address and accept a relayed connection. The zero value turns on hole
// punching and AutoNAT, and nothing that opens a port or serves others.
type Reach struct {
	// RelayService runs the circuit relay v2 service: peers behind NAT
	// reserve a slot here and others reach them through this peer. Run it
	// on a publicly reachable peer only. It starts with the host,
	// whatever AutoNAT says (the operator knows the peer is public).
	RelayService bool
	// RelayBudget is what one relayed connection through this peer's
	// relay service may use; the zero value is DefaultRelayBudget.
	RelayBudget RelayBudget
	// Relays are static relays: while this host is not known to be
	// publicly reachable, AutoRelay keeps a reservation on them (up to
	// all of them) and the host announces its /p2p-circuit address
	// through each one it holds a reservation with.
	Relays []peer.AddrInfo
	// Announce are addresses announced besides the listen addresses
	// (a public address forwarded to this host, say). An address that
	// ends with /p2p/ID is taken without it.
	Announce []ma.Multiaddr
	// NoAnnounce are addresses never announced: an address is dropped if
	// it starts with one of them (so /ip4/192.168.1.5 drops every address
	// on that IP), or if its IP is inside one given as /ipcidr
	// (/ip4/10.0.0.0/ipcidr/8).
	NoAnnounce []ma.Multiaddr
	// PortMap asks the router for a port mapping (UPnP, NAT-PMP).
	PortMap bool
	// Reachability, if not network.ReachabilityUnknown, overrides what
	// AutoNAT finds: a peer that knows it is behind NAT starts looking
	// for relays at once (tests force this), a public one never does.
	Reachability network.Reachability
}

// RelayBudget bounds each relayed connection through the relay service:
// the bytes it may carry in each direction and how long it may last. The
// relay resets a connection that crosses either; the two ends may open a
// new one, with a new budget.
type RelayBudget struct {
	Bytes    int64
	Duration time.Duration
}

// DefaultRelayBudget is enough for medwallet's control traffic (ledger
// push and sync batches, manifests, share `has`, serve, witness), not for
// moving shares: those go over the direct connection that hole punching
// gives, or fail with a clear error when the budget runs out.
var DefaultRelayBudget = RelayBudget{Bytes: 8 << 20, Duration: 10 * time.Minute}

// Relay service capacity (per relay; see relayResources).
const (
	relayMaxReservations = 512
	relayMaxCircuits     = 32 // per peer, each way
	relayMaxPerIP        = 16 // reservations from one IP (a NAT with several homes behind it)
)

// autorelayTag is the connection manager tag AutoRelay protects the
// connection to a relay it holds a reservation with by (go-libp2p's
// p2p/host/autorelay); a test checks that it still is.
const autorelayTag = "autorelay"

// relayResources are the relay service's resources for budget b.
func relayResources(b RelayBudget) relayv2.Resources {
	rc := relayv2.DefaultResources()
	if b.Bytes <= 0 {
		b.Bytes = DefaultRelayBudget.Bytes
	}
	if b.Duration <= 0 {
		b.Duration = DefaultRelayBudget.Duration
	}
	rc.Limit = &relayv2.RelayLimit{Data: b.Bytes, Duration: b.Duration}
	rc.MaxReservations = relayMaxReservations
	rc.MaxCircuits = relayMaxCircuits
	rc.MaxReservationsPerIP = relayMaxPerIP
	rc.MaxReservationsPerASN = relayMaxReservations
	return rc
}

// otherRelays are relays without self: a network file shared by every
// peer lists the relays, the reader among them perhaps, and a host is
// never its own relay.
func otherRelays(self peer.ID, relays []peer.AddrInfo) []peer.AddrInfo {
	return slices.DeleteFunc(slices.Clone(relays), func(ai peer.AddrInfo) bool { return ai.ID == self })
}

// reachOptions are the libp2p options of r for a host that listens
// (client false) or a light client (which only dials, but may listen on
// ephemeral ports for hole punching: punch).
func reachOptions(r Reach, client, punch bool, cm *connmgr.BasicConnMgr) []libp2p.Option {
	var opts []libp2p.Option
	if !client || punch {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if client {
		return opts
	}
	opts = append(opts, libp2p.EnableAutoNATv2())
	if r.PortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	switch r.Reachability {
	case network.ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	case network.ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	if len(r.Relays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(r.Relays,
			// A relay that is down when the peer starts is not waited
			// for past this, and one that refused is tried again soon.
			autorelay.WithBootDelay(10*time.Second),
			autorelay.WithBackoff(time.Minute),
			autorelay.WithMinInterval(10*time.Second)))
	}
	opts = append(opts, libp2p.AddrsFactory(addrsFactory(r, cm)))
	return opts
}

// addrsFactory returns the host's announced addresses: its own, those of
// r.Announce, and a /p2p-circuit address through every static relay it
// holds a reservation with (go-libp2p's AutoRelay announces those only
// for relays at public IP addresses), less those r.NoAnnounce names.
func addrsFactory(r Reach, cm *connmgr.BasicConnMgr) func([]ma.Multiaddr) []ma.Multiaddr {
	var announce []ma.Multiaddr
	for _, a := range r.Announce {
		if rest, last := ma.SplitLast(a); last != nil && last.Code() == ma.P_P2P {
			a = rest
		}
		announce = append(announce, a)
	}
	return func(addrs []ma.Multiaddr) []ma.Multiaddr {
		out := slices.Clone(addrs)
		out = append(out, announce...)
		for _, relay := range r.Relays {
			if !cm.IsProtected(relay.ID, autorelayTag) {
				continue
			}
			circuit := ma.StringCast("/p2p/" + relay.ID.String() + "/p2p-circuit")
			for _, a := range relay.Addrs {
				if IsRelayed(a) {
					continue
				}
				out = append(out, a.Encapsulate(circuit))
			}
		}
		out = slices.DeleteFunc(out, func(a ma.Multiaddr) bool { return noAnnounce(a, r.NoAnnounce) })
		return ma.Unique(out)
	}
}

// noAnnounce reports whether a is one of the addresses never to announce.
func noAnnounce(a ma.Multiaddr, never []ma.Multiaddr) bool {
	for _, n := range never {
		if ipnet, ok := cidr(n); ok {
			if ip, err := manet.ToIP(a); err == nil && ipnet.Contains(ip) {
				return true
			}
			continue
		}
		if len(a) >= len(n) && a[:len(n)].Equal(n) {
			return true
		}
	}
	return false
}

// cidr returns the network of an /ip4/A/ipcidr/N or /ip6/A/ipcidr/N address.
func cidr(m ma.Multiaddr) (*net.IPNet, bool) {
	if len(m) != 2 || m[1].Code() != ma.P_IPCIDR {
		return nil, false
	}
	_, n, err := net.ParseCIDR(fmt.Sprintf("%s/%s", m[0].Value(), m[1].Value()))
	return n, err == nil
}

// IsRelayed reports whether a is a relay (/p2p-circuit) address.
func IsRelayed(a ma.Multiaddr) bool {
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// ConnKind describes a connection: "relayed" for one through a relay (a
// limited connection), else "direct"; and its transport ("tcp",
// "quic-v1", ...; for a relayed connection, that of the hop to the relay).
func ConnKind(c network.Conn) (kind, transport string) {
	kind = "direct"
	if c.Stat().Limited || IsRelayed(c.RemoteMultiaddr()) {
		kind = "relayed"
	}
	transport = c.ConnState().Transport
	if transport == "" || transport == "p2p-circuit" {
		transport = transportOf(c.RemoteMultiaddr())
	}
	return kind, transport
}

// transportOf names the transport of a's first hop.
func transportOf(a ma.Multiaddr) string {
	name := ""
	for _, c := range a {
		switch c.Code() {
		case ma.P_TCP:
			name = "tcp"
		case ma.P_UDP:
			name = "udp"
		case ma.P_QUIC_V1:
			return "quic-v1"
		case ma.P_WS, ma.P_WSS, ma.P_WEBTRANSPORT, ma.P_WEBRTC_DIRECT:
			return c.Protocol().Name
		case ma.P_P2P, ma.P_CIRCUIT:
			return name
		}
	}
	return name
}

// AwaitDirect waits until h has a direct (not relayed) connection to p,
// for at most d: hole punching gives one shortly after a relayed
// connection came up, where the NATs allow it. It reports whether there
// is one. A peer h is not connected to at all is not waited for.
func AwaitDirect(ctx context.Context, h host.Host, p peer.ID, d time.Duration) bool {
	if h.Network().Connectedness(p) == network.Connected {
		return true // the common case, without a subscription
	}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return false
	}
	defer sub.Close()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		// Checked after subscribing, so that no change is missed.
		switch h.Network().Connectedness(p) {
		case network.Connected:
			return true
		case network.Limited:
		default:
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return false
		case <-sub.Out():
		}
	}
}
