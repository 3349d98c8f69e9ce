// Package storetest is the conformance suite every vault.ShareStore must
// pass: the local directory store, the in-memory store, and the network
// store.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/medwallet/medwallet/vault"
)

// Run runs the conformance suite. newStore must return a fresh, empty store
// for each call (use t.TempDir and t.Cleanup as needed).
func Run(t *testing.T, newStore func(t *testing.T) vault.ShareStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s vault.ShareStore)
	}{
		{"PutGetRoundTrip", testPutGet},
		{"AddressIsContentHash", testAddress},
		{"EmptyShare", testEmpty},
		{"LargeStreamed", testLarge},
		{"PutTwiceIsIdempotent", testPutTwice},
		{"HasAndDelete", testHasDelete},
		{"GetMissing", testGetMissing},
		{"DeleteMissing", testDeleteMissing},
		{"FailedPutStoresNothing", testFailedPut},
		{"CancelledContext", testCancelled},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, s vault.ShareStore, b []byte) vault.ShareID {
	t.Helper()
	id, err := s.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id
}

func get(t *testing.T, s vault.ShareStore, id vault.ShareID) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading share: %v", err)
	}
	return b
}

func testPutGet(t *testing.T, s vault.ShareStore) {
	for _, n := range []int{1, 31, 4096, 100_000} {
		b := randomBytes(t, n)
		id := put(t, s, b)
		if got := get(t, s, id); !bytes.Equal(got, b) {
			t.Fatalf("Get after Put of %d bytes returned %d different bytes", n, len(got))
		}
	}
}

func testAddress(t *testing.T, s vault.ShareStore) {
	b := randomBytes(t, 1000)
	if got, want := put(t, s, b), vault.ComputeShareID(b); got != want {
		t.Fatalf("Put returned %s, want content address %s", got, want)
	}
}

func testEmpty(t *testing.T, s vault.ShareStore) {
	id := put(t, s, nil)
	if id != vault.ComputeShareID(nil) {
		t.Fatalf("empty share address %s", id)
	}
	if got := get(t, s, id); len(got) != 0 {
		t.Fatalf("empty share read back as %d bytes", len(got))
	}
}

// slowReader returns small reads, as a network stream would.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 7000)]) }

func testLarge(t *testing.T, s vault.ShareStore) {
	b := randomBytes(t, 9<<20+17)
	id, err := s.Put(context.Background(), slowReader{bytes.NewReader(b)})
	if err != nil {
		t.Fatal(err)
	}
	if id != vault.ComputeShareID(b) {
		t.Fatal("wrong address for a streamed share")
	}
	if got := get(t, s, id); !bytes.Equal(got, b) {
		t.Fatal("large share did not round-trip")
	}
}

func testPutTwice(t *testing.T, s vault.ShareStore) {
	b := randomBytes(t, 5000)
	id1, id2 := put(t, s, b), put(t, s, b)
	if id1 != id2 {
		t.Fatal("same bytes, different IDs")
	}
	if got := get(t, s, id1); !bytes.Equal(got, b) {
		t.Fatal("share changed by a second Put")
	}
}

func testHasDelete(t *testing.T, s vault.ShareStore) {
	ctx := context.Background()
	a, b := randomBytes(t, 100), randomBytes(t, 100)
	ida, idb := put(t, s, a), put(t, s, b)
	for _, id := range []vault.ShareID{ida, idb} {
		if ok, err := s.Has(ctx, id); err != nil || !ok {
			t.Fatalf("Has after Put = %v, %v", ok, err)
		}
	}
	if err := s.Delete(ctx, ida); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Has(ctx, ida); err != nil || ok {
		t.Fatalf("Has after Delete = %v, %v", ok, err)
	}
	if _, err := s.Get(ctx, ida); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if got := get(t, s, idb); !bytes.Equal(got, b) {
		t.Fatal("Delete of one share damaged another")
	}
}

func testGetMissing(t *testing.T, s vault.ShareStore) {
	ctx := context.Background()
	id := vault.ComputeShareID([]byte("never stored"))
	if _, err := s.Get(ctx, id); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Get of a missing share: %v, want ErrNotFound", err)
	}
	if ok, err := s.Has(ctx, id); err != nil || ok {
		t.Fatalf("Has of a missing share = %v, %v", ok, err)
	}
}

func testDeleteMissing(t *testing.T, s vault.ShareStore) {
	if err := s.Delete(context.Background(), vault.ComputeShareID([]byte("absent"))); err != nil {
		t.Fatalf("Delete of a missing share: %v", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func testFailedPut(t *testing.T, s vault.ShareStore) {
	ctx := context.Background()
	partial := randomBytes(t, 64<<10)
	boom := errors.New("boom")
	if _, err := s.Put(ctx, &failingReader{data: bytes.Clone(partial), err: boom}); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	if ok, err := s.Has(ctx, vault.ComputeShareID(partial)); err != nil || ok {
		t.Fatalf("partial share stored under its address: Has = %v, %v", ok, err)
	}
}

func testCancelled(t *testing.T, s vault.ShareStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := randomBytes(t, 1000)
	if _, err := s.Put(ctx, bytes.NewReader(b)); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if ok, _ := s.Has(context.Background(), vault.ComputeShareID(b)); ok {
		t.Fatal("Put with a cancelled context stored the share")
	}
}

func testConcurrent(t *testing.T, s vault.ShareStore) {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 20_000)
			rand.Read(b)
			ctx := context.Background()
			id, err := s.Put(ctx, bytes.NewReader(b))
			if err != nil {
				errs <- err
				return
			}
			rc, err := s.Get(ctx, id)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, b) {
				errs <- errors.New("concurrent round trip failed")
				return
			}
			errs <- s.Delete(ctx, id)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
