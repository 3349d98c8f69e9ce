package vault_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/dirstore"
	"github.com/medwallet/medwallet/vault/memstore"
)

// TestStripeBoundaries round-trips records whose ciphertext ends exactly
// on, just before and just after a stripe boundary, and an empty record.
func TestStripeBoundaries(t *testing.T) {
	p := vault.Params{K: 3, N: 5, StripeSize: 1026}
	_, m, _ := sealMem(t, nil, p)
	overhead := int(m.CipherSize) // ciphertext of an empty record: age header and one empty chunk
	sizes := []int{0, 1}
	for j := 1; j <= 3; j++ {
		for d := -1; d <= 1; d++ {
			if n := j*1026 - overhead + d; n >= 0 {
				sizes = append(sizes, n)
			}
		}
	}
	for _, n := range sizes {
		plain := randomData(t, n)
		store, m, _ := sealMem(t, plain, p)
		got, err := open(t, m, store)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d (ciphertext %d): err=%v", n, m.CipherSize, err)
		}
		// And with the first data share lost, so the short last stripe is decoded.
		view := damage(t, store, m, map[int]func([]byte) []byte{0: func([]byte) []byte { return nil }})
		got, err = open(t, m, view)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d decoded: err=%v", n, err)
		}
	}
}

// failingStore fails the Put of every share after the first few.
type failingStore struct {
	*memstore.Store
	puts, failAfter atomic.Int32
}

func (f *failingStore) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	if f.puts.Add(1) > f.failAfter.Load() {
		io.Copy(io.Discard, io.LimitReader(r, 100))
		return vault.ShareID{}, errors.New("disk full")
	}
	return f.Store.Put(ctx, r)
}

type brokenReader struct{ left int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("device error")
	}
	n := min(len(p), b.left)
	b.left -= n
	return n, nil
}

// TestSealFailuresStoreNothing checks that a failed seal leaves no share.
func TestSealFailuresStoreNothing(t *testing.T) {
	o := newOwner(t)
	p := vault.Params{StripeSize: 4096}
	t.Run("store fails", func(t *testing.T) {
		s := &failingStore{Store: memstore.New()}
		s.failAfter.Store(2)
		_, err := vault.Seal(context.Background(), bytes.NewReader(randomData(t, 100_000)), s, vault.SealOptions{Params: p, Owner: o.pub})
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
			t.Fatalf("got %v", err)
		}
		if s.Len() != 0 {
			t.Fatalf("%d shares left behind", s.Len())
		}
	})
	t.Run("reader fails", func(t *testing.T) {
		s := memstore.New()
		_, err := vault.Seal(context.Background(), &brokenReader{left: 50_000}, s, vault.SealOptions{Params: p, Owner: o.pub})
		if err == nil {
			t.Fatal("seal of a failing reader succeeded")
		}
		if s.Len() != 0 {
			t.Fatalf("%d shares left behind", s.Len())
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		s := memstore.New()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := vault.Seal(ctx, bytes.NewReader(randomData(t, 100_000)), s, vault.SealOptions{Params: p, Owner: o.pub})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		if s.Len() != 0 {
			t.Fatalf("%d shares left behind", s.Len())
		}
	})
	t.Run("bad label", func(t *testing.T) {
		_, err := vault.Seal(context.Background(), bytes.NewReader(nil), memstore.New(), vault.SealOptions{Owner: o.pub, Label: "\xff"})
		if err == nil {
			t.Fatal("invalid UTF-8 label accepted")
		}
	})
}

type counter struct{ n atomic.Int64 }

func (c *counter) Add(n int64) { c.n.Add(n) }

func TestProgressAndCancelOpen(t *testing.T) {
	plain := randomData(t, 300_000)
	o := newOwner(t)
	store := memstore.New()
	var sealed counter
	m, err := vault.Seal(context.Background(), bytes.NewReader(plain), store, vault.SealOptions{Params: vault.Params{StripeSize: 4096}, Owner: o.pub, Progress: &sealed})
	if err != nil {
		t.Fatal(err)
	}
	var opened counter
	if err := vault.Open(context.Background(), m, store, io.Discard, vault.OpenOptions{Progress: &opened}); err != nil {
		t.Fatal(err)
	}
	if sealed.n.Load() != int64(len(plain)) || opened.n.Load() != int64(len(plain)) {
		t.Fatalf("progress %d / %d, want %d", sealed.n.Load(), opened.n.Load(), len(plain))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := vault.Open(ctx, m, store, io.Discard, vault.OpenOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("open with a cancelled context: %v", err)
	}
	// A failing writer stops Open with the writer's error.
	werr := errors.New("pipe closed")
	err = vault.Open(context.Background(), m, store, errWriter{werr}, vault.OpenOptions{})
	if !errors.Is(err, werr) || errors.Is(err, vault.ErrCiphertext) {
		t.Fatalf("open into a failing writer: %v", err)
	}
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

// TestLateShareSeek damages data shares mid-record in a directory store,
// whose files can seek: Open must bring in the parity shares at that
// stripe, skipping their earlier blocks.
func TestLateShareSeek(t *testing.T) {
	store, err := dirstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := newOwner(t)
	plain := randomData(t, 20*4096)
	m := seal(t, o, store, plain, vault.Params{K: 3, N: 5, StripeSize: 4096})
	block := m.StripeSize / 3
	for _, tc := range []struct {
		name  string
		share int
		edit  func(b []byte) []byte
	}{
		{"flip in stripe 10", 1, func(b []byte) []byte { b[vault.ShareHeaderSize+10*int(block)+5] ^= 1; return b }},
		{"cut in stripe 12", 2, func(b []byte) []byte { return b[:vault.ShareHeaderSize+12*int(block)+7] }},
	} {
		path := store.Path(m.Shares[tc.share].ID)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, tc.edit(b), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := open(t, m, store)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: err=%v", tc.name, err)
		}
	}
	// Parity share 3 cut short too: three damaged shares, one left over.
	path := store.Path(m.Shares[3].ID)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:vault.ShareHeaderSize+15*int(block)], 0o600)
	if _, err := open(t, m, store); !errors.Is(err, vault.ErrNotEnoughShares) {
		t.Fatalf("three damaged shares: %v", err)
	}
}
