package wallet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/p2p/store"
)

// TestAddRecordAroundRefusingPeer: a peer that does not store for the
// patient is passed over; with no spare peer, a record that can be read
// again is sealed into one share fewer (never below k+1), and one that
// cannot fails with the refusal in its chain.
func TestAddRecordAroundRefusingPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 4, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	dn.Peers[0].Store.SetLimits(store.Limits{Allowlist: map[consent.ID]bool{}})
	cfg := memConfig(t)
	cfg.Network = dn.NetworkPath()
	w, err := Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 300<<10)
	rand.Read(data)

	var shown countProgress
	info, err := w.AddRecord(ctx, bytes.NewReader(data), AddRecordOptions{K: 2, N: 4, RecordOptions: RecordOptions{Progress: &shown}})
	if err != nil {
		t.Fatal(err)
	}
	if info.N != 3 {
		t.Fatalf("n = %d, want 3 (one share fewer than the 4 peers)", info.N)
	}
	if shown != countProgress(len(data)) {
		t.Fatalf("progress showed %d bytes of %d", shown, len(data))
	}
	var out bytes.Buffer
	if _, err := w.GetRecord(ctx, info.ID, &out, RecordOptions{}); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get: %v (same bytes: %v)", err, bytes.Equal(out.Bytes(), data))
	}
	if u := dn.Peers[0].Store.Usage(); u.Total.Objects() != 0 {
		t.Fatalf("the refusing peer stores %+v", u.Total)
	}

	// Not seekable: nothing to seal again.
	_, err = w.AddRecord(ctx, io.MultiReader(bytes.NewReader(data)), AddRecordOptions{K: 2, N: 4})
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.Op != OpStoreShares || !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("got %v, want a NetworkError storing shares carrying store.ErrNotAllowed", err)
	}
}

type countProgress int64

func (c *countProgress) Add(n int64) { *c += countProgress(n) }
