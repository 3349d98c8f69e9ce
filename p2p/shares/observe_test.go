package shares

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

// WithGetObserver hears every answered get: allowed and denied with the
// consent reason, refused with the response code, the "busy" of a remote
// over its get slots included.
func TestGetObserver(t *testing.T) {
	ctx := context.Background()
	p, owner, stranger := newActor(t, "peer", true), newActor(t, "patient", false), newActor(t, "stranger", false)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "peer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, _ := consent.OpenLedger(consent.NewMemStore())
	var mu sync.Mutex
	var seen []string
	lim := DefaultLimits()
	lim.Get = wire.Limit{PerRemote: 1, Total: 8}
	svc := NewService(p.h, st, l, p.signer, WithLimits(lim), WithGetObserver(func(outcome, reason string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, outcome+" "+reason)
	}))
	t.Cleanup(svc.Close)
	for _, a := range []*actor{owner, stranger} {
		if err := a.h.Connect(ctx, peer.AddrInfo{ID: p.h.ID(), Addrs: p.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{patient: owner, record: "00112233445566778899aabbccddeeff"}
	// Larger than a stream's window: a get not read holds its slot.
	id, err := Put(ctx, owner.h, p.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, bytes.Repeat([]byte("c"), 4<<20))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Get(ctx, stranger.h, p.h.ID(), id, f.request(t, stranger, "patient/*.rs", "TREAT")); !errors.Is(err, ErrDenied) {
		t.Fatalf("the stranger's get: %v", err)
	}
	if _, err := Get(ctx, owner.h, p.h.ID(), vault.ShareID{1}, f.request(t, owner, "patient/*.rs", "TREAT")); err == nil {
		t.Fatal("a get of a share the peer does not hold succeeded")
	}
	held, err := Get(ctx, owner.h, p.h.ID(), id, f.request(t, owner, "patient/*.rs", "TREAT"))
	if err != nil {
		t.Fatalf("the owner's get: %v", err)
	}
	defer held.Close()
	if _, err := Get(ctx, owner.h, p.h.ID(), id, f.request(t, owner, "patient/*.rs", "TREAT")); err == nil {
		t.Fatal("a get over the owner's one get slot was served")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"deny no-grant", "refused not-found", "allow owner", "refused busy"}
	if !slices.Equal(seen, want) {
		t.Fatalf("observed %q, want %q", seen, want)
	}
}
