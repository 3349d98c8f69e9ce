package metrics

import (
	"crypto/ed25519"
	"errors"
	"testing"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
)

func peerID(t *testing.T) lpeer.ID {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := consent.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lpeer.Decode(string(id))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every hook is a no-op on a nil *Metrics (a peer without --metrics).
func TestNil(t *testing.T) {
	var m *Metrics
	m.ShareGet("allow", "owner")
	m.Entry("own", consent.KindAccess)
	m.Synced(peerID(t), ledgersync.SyncResult{Accepted: 3})
	m.KnownPeers([]lpeer.ID{peerID(t)})
	if err := m.Watch(Sources{}); err != nil {
		t.Fatal(err)
	}
	if m.Registerer() != nil {
		t.Fatal("a nil *Metrics has a registerer")
	}
}

// Label values come from fixed sets: anything else is "other", so that a
// remote cannot grow the series (or put an ID in a label).
func TestLabelsAreBounded(t *testing.T) {
	m := New()
	m.ShareGet("allow", "granted")
	m.ShareGet("deny", "revoked")
	m.ShareGet("refused", "rate-limited")
	m.ShareGet("deny", "00112233445566778899aabbccddeeff") // not a reason
	m.ShareGet("whatever", "owner")
	for _, c := range []struct {
		outcome, reason string
		want            float64
	}{{"allow", "granted", 1}, {"deny", "revoked", 1}, {"refused", "rate-limited", 1}, {"deny", "other", 1}, {"other", "owner", 1}} {
		if got := testutil.ToFloat64(m.gets.WithLabelValues(c.outcome, c.reason)); got != c.want {
			t.Errorf("gets{%s,%s} = %v, want %v", c.outcome, c.reason, got, c.want)
		}
	}
	m.Entry("own", consent.KindAccess)
	m.Entry("gossip", consent.KindGrant)
	m.Entry("received", consent.Kind(200))
	if testutil.ToFloat64(m.entries.WithLabelValues("own", "access")) != 1 ||
		testutil.ToFloat64(m.entries.WithLabelValues("received", "grant")) != 1 ||
		testutil.ToFloat64(m.entries.WithLabelValues("received", "other")) != 1 {
		t.Error("entries by source and kind are not what was counted")
	}

	// Known peers get their ID, up to MaxPeerLabels; strangers are
	// "other" and get no gauges.
	var known []lpeer.ID
	for range MaxPeerLabels + 5 {
		known = append(known, peerID(t))
	}
	m.KnownPeers(known)
	for _, p := range known {
		m.Synced(p, ledgersync.SyncResult{Behind: 2, Accepted: 7})
	}
	stranger := peerID(t)
	m.Synced(stranger, ledgersync.SyncResult{Behind: 1})
	m.Synced(stranger, ledgersync.SyncResult{Err: errors.New("reset")})
	if n := testutil.CollectAndCount(m.behind); n != MaxPeerLabels {
		t.Errorf("%d behind gauges, want %d", n, MaxPeerLabels)
	}
	if got := testutil.ToFloat64(m.behind.WithLabelValues(known[0].String())); got != 2 {
		t.Errorf("behind = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.accepted.WithLabelValues(known[0].String())); got != 7 {
		t.Errorf("accepted = %v, want 7", got)
	}
	if got := testutil.ToFloat64(m.syncs.WithLabelValues(OtherPeer, "ok")); got != 6 { // 5 known past the cap, 1 stranger
		t.Errorf("syncs{other,ok} = %v, want 6", got)
	}
	if got := testutil.ToFloat64(m.syncs.WithLabelValues(OtherPeer, "error")); got != 1 {
		t.Errorf("syncs{other,error} = %v, want 1", got)
	}
}

// One Metrics serves one peer: watching twice is an error, not a panic.
func TestWatchTwice(t *testing.T) {
	m := New()
	if err := m.Watch(Sources{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(Sources{}); err == nil {
		t.Fatal("a second Watch on one Metrics was accepted")
	}
}
