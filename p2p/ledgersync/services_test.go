package ledgersync

import (
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// TestServicesStandAlone runs the push and sync services without gossip,
// as a peer that only takes pushes and serves pulls would: a client pushes
// a feed, another pulls it back, and closing leaves no handler behind.
func TestServicesStandAlone(t *testing.T) {
	h, l := newHost(t), newLedger(t)
	in, err := NewIngest(l)
	if err != nil {
		t.Fatal(err)
	}
	syncSvc, err := NewSyncService(h, in, WithSyncInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	push, err := NewPushService(h, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed := makeFeed(t, testSigner(t, "alice"), 7)
	client := newHost(t)
	connect(t, client, h)
	acks, err := Push(ctxT(t, 10*time.Second), client, h.ID(), feed)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		if a.Status != AckAccepted {
			t.Fatalf("entry %d: %v %s", i+1, a.Status, a.Reason)
		}
	}
	if got := in.Stats().Accepted; got != uint64(len(feed)) {
		t.Fatalf("accepted %d, want %d", got, len(feed))
	}
	reader := newHost(t)
	connect(t, reader, h)
	got, err := Pull(ctxT(t, 10*time.Second), reader, h.ID(), map[consent.ID]uint64{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(feed) || got[6].Hash() != feed[6].Hash() {
		t.Fatalf("pulled %d entries, want the %d pushed", len(got), len(feed))
	}
	for _, c := range []interface{ Close() error }{push, syncSvc, in} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range h.Mux().Protocols() {
		if p == SyncID || p == PushID {
			t.Fatalf("%s is still served after Close", p)
		}
	}
}
