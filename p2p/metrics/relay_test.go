package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	dto "github.com/prometheus/client_model/go"

	"github.com/medwallet/medwallet/internal/testutil"
)

func newHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// gauge reads the gauge name with labels (name=value pairs) from m.
func gauge(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	fs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.Metric {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(s, labels[i], labels[i+1]) {
					continue series
				}
			}
			return s.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func hasLabel(s *dto.Metric, name, value string) bool {
	for _, lp := range s.Label {
		if lp.GetName() == name && lp.GetValue() == value {
			return true
		}
	}
	return false
}

// A relayed connection is counted as relayed on both its ends, and the
// relay counts the circuit it carries.
func TestRelayedConnectionsAndCircuits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	relay := newHost(t, libp2p.DisableRelay())
	svc, err := relayv2.New(relay)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	private, dialer := newHost(t), newHost(t)
	relayInfo := lpeer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	if err := private.Connect(ctx, relayInfo); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, private, relayInfo); err != nil {
		t.Fatal(err)
	}
	circuit, err := ma.NewMultiaddr("/p2p/" + relay.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	if err := dialer.Connect(ctx, relayInfo); err != nil {
		t.Fatal(err)
	}
	if err := dialer.Connect(ctx, lpeer.AddrInfo{ID: private.ID(), Addrs: []ma.Multiaddr{relay.Addrs()[0].Encapsulate(circuit)}}); err != nil {
		t.Fatal(err)
	}

	mr, md, mp := New(), New(), New()
	for m, h := range map[*Metrics]host.Host{mr: relay, md: dialer, mp: private} {
		if err := m.Watch(Sources{Host: h}); err != nil {
			t.Fatal(err)
		}
	}
	if got := gauge(t, md, "medwallet_connections", "path", "relayed", "direction", "outbound"); got != 1 {
		t.Errorf("the dialer's relayed outbound connections: %v, want 1", got)
	}
	if got := gauge(t, md, "medwallet_connections", "path", "direct", "direction", "outbound"); got != 1 {
		t.Errorf("the dialer's direct outbound connections (to the relay): %v, want 1", got)
	}
	testutil.Eventually(t, 10*time.Second, "the private peer counts the relayed connection", func() bool {
		return gauge(t, mp, "medwallet_connections", "path", "relayed", "direction", "inbound") == 1
	})
	if got := gauge(t, mr, "medwallet_relay_circuits"); got != 1 {
		t.Errorf("the relay's circuits: %v, want 1", got)
	}
	if got := gauge(t, mr, "medwallet_connections", "path", "relayed"); got != 0 {
		t.Errorf("the relay's relayed connections: %v, want 0 (it carries the circuit over direct ones)", got)
	}
}
