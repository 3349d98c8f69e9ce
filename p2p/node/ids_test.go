package node

import (
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"

	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/locate"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/shares"
)

// The limits name the protocols by ID; node cannot import the protocol
// packages (their tests build hosts here), so this checks the copies.
func TestProtocolIDsMatch(t *testing.T) {
	for _, c := range []struct{ here, there protocol.ID }{
		{sharesID, shares.ID},
		{manifestsID, manifests.ID},
		{pushID, ledgersync.PushID},
		{syncID, ledgersync.SyncID},
		{"/medwallet/kad/1.0.0", kadID},
		{locateID, locate.ID},
	} {
		if c.here != c.there {
			t.Errorf("node limits %q, the protocol is %q", c.here, c.there)
		}
	}
	want := map[protocol.ID]bool{}
	for _, id := range gossipIDs {
		want[id] = true
	}
	for _, id := range []protocol.ID{pubsub.GossipSubID_v10, pubsub.GossipSubID_v11, pubsub.GossipSubID_v12, pubsub.GossipSubID_v13, pubsub.FloodSubID} {
		if !want[id] {
			t.Errorf("pubsub protocol %q has no limit", id)
		}
	}
}

// Every medwallet protocol has a per-peer limit for strangers and known
// peers, and a stranger's shares allowance is the 4 streams
// docs/network.md states.
func TestProtocolLimitsSet(t *testing.T) {
	c := newConfig(Limits{}, false, nil)
	strangers := c.strangers.ToPartialLimitConfig()
	known := c.known.ToPartialLimitConfig()
	for _, p := range peerProtocols {
		if _, ok := strangers.ProtocolPeer[p.id]; !ok {
			t.Errorf("%s: no per-peer limit for strangers", p.id)
		}
		if _, ok := known.ProtocolPeer[p.id]; !ok {
			t.Errorf("%s: no per-peer limit for known peers", p.id)
		}
	}
	if got := strangers.ProtocolPeer[sharesID].StreamsInbound; got != 4 {
		t.Errorf("a stranger's inbound share streams: %v, want 4", got)
	}
	if got := int64(strangers.Stream.Memory); got < 16<<20+4096 {
		t.Errorf("stream memory %d is below a manifest request", got)
	}
	cl := newConfig(Limits{}, true, nil).strangers.ToPartialLimitConfig()
	if got := int64(cl.Stream.Memory); got < 64<<20 {
		t.Errorf("a client's stream memory %d is below a manifest list", got)
	}
	if got := newConfig(Limits{Memory: 512 << 20}, false, nil).strangers.ToPartialLimitConfig().System.Memory; got != 512<<20 {
		t.Errorf("Memory 512 MiB: strangers' system memory %v", got)
	}
	if got := newConfig(Limits{MaxConns: 77}, false, nil); got.maxConns != 77 || got.strangers.ToPartialLimitConfig().System.ConnsInbound != 77 {
		t.Errorf("MaxConns 77: maxConns %d, system %v", got.maxConns, got.strangers.ToPartialLimitConfig().System.ConnsInbound)
	}
}

// The reachability services have service scopes in every pool: the relay
// service room for relayMaxCircuits relayed connections per peer each
// way, hole punching and AutoNAT theirs.
func TestReachServiceLimitsSet(t *testing.T) {
	for name, c := range map[string]rcmgr.ConcreteLimitConfig{
		"strangers": newConfig(Limits{}, false, nil).strangers,
		"known":     newConfig(Limits{}, false, nil).known,
		"client":    newConfig(Limits{}, true, nil).strangers,
	} {
		pl := c.ToPartialLimitConfig()
		for _, svc := range []string{relayv2.ServiceName, holepunch.ServiceName, autonatv2.ServiceName, autonat.ServiceName} {
			if _, ok := pl.Service[svc]; !ok {
				t.Errorf("%s: no service limit for %s", name, svc)
			}
			if _, ok := pl.ServicePeer[svc]; !ok {
				t.Errorf("%s: no per-peer service limit for %s", name, svc)
			}
		}
		if got := int(pl.ServicePeer[relayv2.ServiceName].Streams); got < 2*relayMaxCircuits {
			t.Errorf("%s: the relay service's streams per peer %d, below %d circuits each way", name, got, relayMaxCircuits)
		}
	}
	rc := relayResources(RelayBudget{Bytes: 3 << 20, Duration: 7 * time.Minute})
	if rc.Limit.Data != 3<<20 || rc.Limit.Duration != 7*time.Minute || rc.MaxCircuits != relayMaxCircuits {
		t.Errorf("relay resources %+v, limit %+v", rc, rc.Limit)
	}
	if def := relayResources(RelayBudget{}).Limit; *def != (relayv2.RelayLimit{Data: DefaultRelayBudget.Bytes, Duration: DefaultRelayBudget.Duration}) {
		t.Errorf("default relay limit %+v", def)
	}
}

// A host reading a network file that lists it among the relays does not
// take itself for one.
func TestOtherRelays(t *testing.T) {
	a, b := peer.ID("a"), peer.ID("b")
	in := []peer.AddrInfo{{ID: a}, {ID: b}}
	if got := otherRelays(a, in); len(got) != 1 || got[0].ID != b || len(in) != 2 {
		t.Fatalf("otherRelays(a, [a b]) = %v (input now %v)", got, in)
	}
}
