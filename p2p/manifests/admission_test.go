package manifests

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
)

// A refused put comes back as the store's typed admission error.
func TestPutRefusalsAreTyped(t *testing.T) {
	ctx := context.Background()
	ph, _ := newHost(t, "peer", true)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := NewService(ph, st, nil)
	defer svc.Close()
	alice, aliceID := newHost(t, "alice", false)
	eve, eveID := newHost(t, "eve", false)
	for _, h := range []interface {
		Connect(context.Context, peer.AddrInfo) error
	}{alice, eve} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: ph.ID(), Addrs: ph.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	rec := "00112233445566778899aabbccddeeff"
	st.SetLimits(store.Limits{Allowlist: map[consent.ID]bool{aliceID: true}, OwnerBytes: 100})
	if err := Put(ctx, eve, ph.ID(), rec, eveID, []byte("x")); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("a stranger's put: %v, want store.ErrNotAllowed", err)
	}
	if err := Put(ctx, alice, ph.ID(), rec, aliceID, make([]byte, 101)); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("over the quota: %v, want store.ErrQuota", err)
	}
	if err := Put(ctx, alice, ph.ID(), rec, aliceID, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	st.SetLimits(store.Limits{MinFree: 1 << 30, FreeSpace: func() (int64, error) { return 1 << 20, nil }})
	if err := Put(ctx, alice, ph.ID(), rec, aliceID, []byte("y")); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("below the watermark: %v, want store.ErrStorageFull", err)
	}
}
