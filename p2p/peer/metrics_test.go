package peer

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/p2p/metrics"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

// scrape fetches url and returns the metric families.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mf
}

// value is the value of the series of family name whose labels include
// labels (name=value pairs), summed over the series that match; found is
// false when none does.
func value(mf map[string]*dto.MetricFamily, name string, labels ...string) (v float64, found bool) {
	f := mf[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			match := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					match = true
				}
			}
			ok = ok && match
		}
		if !ok {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		}
	}
	return v, found
}

// A running peer serves /metrics: after an owner's get (allowed), a
// stranger's get (denied) and a get of a share it does not hold (refused),
// the get counters, the store's figures and the ledger's entries moved,
// and no label value names a record, a share or a party.
func TestMetricsAfterGets(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := metrics.New()
	p, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr, err := m.Serve(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.String() + "/metrics"

	before := scrape(t, url)
	if v, _ := value(before, "medwallet_share_gets_total"); v != 0 {
		t.Fatalf("share gets before any get: %v", v)
	}
	if v, ok := value(before, "medwallet_peer_ready"); !ok || v != 1 {
		t.Fatalf("a peer without bootstrap peers is ready at once; medwallet_peer_ready %v (found %v)", v, ok)
	}

	owner, stranger := newActor(t), newActor(t)
	owner.dial(t, p)
	stranger.dial(t, p)
	rec := "00112233445566778899aabbccddeeff"
	rid, _ := vault.ParseRecordID(rec)
	data := make([]byte, vault.ShareHeaderSize)
	copy(data, "MWSH")
	data[4] = 1
	copy(data[12:28], rid[:])
	data = append(data, bytes.Repeat([]byte("ciphertext"), 1000)...)
	id, err := shares.Put(ctx, owner.h, p.Host.ID(), rec, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	nonce := 0
	get := func(a actor, share vault.ShareID) error {
		nonce++
		req, err := consent.SignRequest(a.s, consent.Request{Owner: owner.s.ID(), Record: rec,
			Scope: "patient/*.rs", Purpose: "TREAT", Time: time.Now().Unix(), Nonce: fmt.Appendf(nil, "nonce-%012d", nonce)})
		if err != nil {
			return err
		}
		rc, err := shares.Get(ctx, a.h, p.Host.ID(), share, req)
		if err == nil {
			rc.Close()
		}
		return err
	}
	if err := get(owner, id); err != nil {
		t.Fatalf("the owner's get: %v", err)
	}
	if err := get(stranger, id); err == nil {
		t.Fatal("a stranger's get was allowed")
	}
	if err := get(owner, vault.ShareID{1}); err == nil {
		t.Fatal("a get of a share the peer does not hold succeeded")
	}

	after := scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"medwallet_share_gets_total", []string{"outcome", "allow", "reason", "owner"}, 1},
		{"medwallet_share_gets_total", []string{"outcome", "deny", "reason", "no-grant"}, 1},
		{"medwallet_share_gets_total", []string{"outcome", "refused", "reason", "not-found"}, 1},
		{"medwallet_share_gets_total", nil, 3},
		{"medwallet_store_shares", nil, 1},
		{"medwallet_store_share_bytes", nil, float64(len(data))},
		{"medwallet_store_owners", nil, 1},
		{"medwallet_connected_peers", nil, 2},
		{"medwallet_connections", []string{"path", "relayed"}, 0},
		{"medwallet_relay_circuits", nil, 0},
	} {
		if got, ok := value(after, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// go-libp2p's own metrics share the peer's registry.
	if _, ok := after["libp2p_swarm_connections_opened_total"]; !ok {
		t.Error("no libp2p_swarm_connections_opened_total: go-libp2p's metrics are not on the peer's registry")
	}
	// Two clients dialled in (over TCP or QUIC, sometimes both at once).
	if got, _ := value(after, "medwallet_connections", "path", "direct", "direction", "inbound"); got < 2 {
		t.Errorf("direct inbound connections: %v, want 2 or more", got)
	}
	// Each decision is an access entry on the peer's own feed (with the
	// link that opens its sub-feed about the owner).
	if got, _ := value(after, "medwallet_ledger_entries_total", "source", "own", "kind", "access"); got != 2 {
		t.Errorf("own access entries: %v, want 2", got)
	}
	for _, name := range []string{"medwallet_rcmgr_refusals_total", "go_goroutines", "process_resident_memory_bytes", "medwallet_ledger_received_entries_total"} {
		if _, ok := value(after, name); !ok {
			t.Errorf("%s is missing", name)
		}
	}

	// No label value names a record, a share or a party.
	secrets := []string{rec, id.String(), string(owner.s.ID()), string(stranger.s.ID()), string(p.ID())}
	for name, f := range after {
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				for _, s := range secrets {
					if strings.Contains(lp.GetValue(), s) || strings.Contains(s, lp.GetValue()) && len(lp.GetValue()) > 8 {
						t.Errorf("%s has label %s=%q, which names a record, share or party", name, lp.GetName(), lp.GetValue())
					}
				}
			}
		}
	}
}

// gather reads m's metrics without HTTP.
func gather(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fs {
		out[f.GetName()] = f
	}
	return out
}

// A peer that bootstraps from another syncs the ledger with it: its sync
// metrics carry the known peer's ID and say how far behind it was.
func TestMetricsSyncWithKnownPeer(t *testing.T) {
	ctx := context.Background()
	a, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m := metrics.New()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen, Bootstrap: []string{a.TCPAddr()}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	aID := a.Host.ID().String()
	testutil.Eventually(t, 10*time.Second, "b syncs with its bootstrap peer and says so", func() bool {
		mf := gather(t, m)
		ok, _ := value(mf, "medwallet_ledger_syncs_total", "peer", aID, "result", "ok")
		ready, _ := value(mf, "medwallet_peer_ready")
		_, behind := value(mf, "medwallet_ledger_sync_behind_feeds", "peer", aID)
		_, at := value(mf, "medwallet_ledger_sync_last_success_timestamp_seconds", "peer", aID)
		return ok >= 1 && ready == 1 && behind && at
	})
}
