package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
)

const carol = consent.ID("12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxuhi4brx2wAFD")

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// limited opens a store with limits and a free-space function the test
// controls (plenty of space unless it sets less).
func limited(t *testing.T, l store.Limits) (*Store, *atomic.Int64) {
	t.Helper()
	s, _ := openTemp(t)
	var free atomic.Int64
	free.Store(1 << 40)
	l.FreeSpace = func() (int64, error) { return free.Load(), nil }
	s.SetLimits(l)
	return s, &free
}

func usageOf(s *Store, owner consent.ID) store.OwnerUsage {
	for _, u := range s.Usage().Owners {
		if u.Owner == owner {
			return u
		}
	}
	return store.OwnerUsage{Owner: owner}
}

// A share that takes its owner over the byte quota fails while it streams
// in, at the chunk that crosses the quota, leaves no chunk behind, and
// leaves the owner's earlier shares and usage as they were.
func TestQuotaExceededMidStream(t *testing.T) {
	s, _ := limited(t, store.Limits{OwnerBytes: 5 * ChunkSize})
	ctx := context.Background()
	first := randomBytes(2*ChunkSize + 10)
	id, err := s.PutShare(ctx, alice, rec, bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	chunks := countChunks(t, s)
	before := usageOf(s, alice)

	// 4 MiB more would be 6 MiB and some: over the 5 MiB quota. The
	// reader counts what the store read: it must stop early, not drain.
	cr := &countingReader{r: bytes.NewReader(randomBytes(4 * ChunkSize))}
	_, err = s.PutShare(ctx, alice, rec, cr)
	if !errors.Is(err, store.ErrQuota) {
		t.Fatalf("over-quota put: got %v, want store.ErrQuota", err)
	}
	if cr.n > 4*ChunkSize-1 {
		t.Fatalf("the store read all %d bytes of an over-quota share", cr.n)
	}
	if n := countChunks(t, s); n != chunks {
		t.Fatalf("%d chunks after the refused put, want %d (the earlier share's)", n, chunks)
	}
	if after := usageOf(s, alice); after != before {
		t.Fatalf("usage changed by a refused put: %+v, want %+v", after, before)
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, first) {
		t.Fatal("the earlier share changed")
	}
	// Within what is left, the owner still puts.
	if _, err := s.PutShare(ctx, alice, rec, bytes.NewReader(randomBytes(ChunkSize))); err != nil {
		t.Fatalf("a put within the quota: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A stranger that fills its quota (bytes, then objects) takes nothing from
// an honest owner, and is refused before any byte once it is full.
func TestStrangerQuotaDoesNotStopOthers(t *testing.T) {
	s, _ := limited(t, store.Limits{OwnerBytes: 3 * ChunkSize, OwnerObjects: 4})
	ctx := context.Background()
	for {
		_, err := s.PutShare(ctx, bob, rec, bytes.NewReader(randomBytes(ChunkSize)))
		if errors.Is(err, store.ErrQuota) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AdmitShare(bob); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("admitting a share of a stranger at its quota: %v, want store.ErrQuota", err)
	}
	if err := s.PutManifest(bob, rec, bob, randomBytes(100)); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("a manifest of a stranger at its quota: %v, want store.ErrQuota", err)
	}
	if err := s.AdmitShare(alice); err != nil {
		t.Fatalf("admitting the honest owner: %v", err)
	}
	if _, err := s.PutShare(ctx, alice, rec, bytes.NewReader(randomBytes(2*ChunkSize))); err != nil {
		t.Fatalf("the honest owner's put: %v", err)
	}
	if err := s.PutManifest(alice, rec, alice, randomBytes(1000)); err != nil {
		t.Fatalf("the honest owner's manifest: %v", err)
	}

	// The object quota: carol puts small manifests until it is full.
	for i := range 4 {
		r := []string{"00000000000000000000000000000001", "00000000000000000000000000000002",
			"00000000000000000000000000000003", "00000000000000000000000000000004"}[i]
		if err := s.PutManifest(carol, r, carol, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutManifest(carol, rec, carol, []byte("x")); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("a fifth object: %v, want store.ErrQuota", err)
	}
	// Replacing a copy adds no object.
	if err := s.PutManifest(carol, "00000000000000000000000000000001", carol, []byte("y")); err != nil {
		t.Fatalf("replacing a copy at the object quota: %v", err)
	}
}

// Below the watermark, share and manifest puts are refused, and a put in
// flight stops at the write that would cross it; deletes and reads go on.
func TestFreeSpaceWatermark(t *testing.T) {
	s, free := limited(t, store.Limits{MinFree: 64 << 20})
	ctx := context.Background()
	id, err := s.PutShare(ctx, alice, rec, bytes.NewReader([]byte("ciphertext")))
	if err != nil {
		t.Fatal(err)
	}
	free.Store(64<<20 - 1)
	if err := s.AdmitShare(alice); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("admit below the watermark: %v, want store.ErrStorageFull", err)
	}
	if _, err := s.PutShare(ctx, alice, rec, bytes.NewReader([]byte("more"))); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("put below the watermark: %v, want store.ErrStorageFull", err)
	}
	if err := s.PutManifest(alice, rec, alice, []byte("m")); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("manifest below the watermark: %v, want store.ErrStorageFull", err)
	}
	if _, err := s.Get(ctx, id); err != nil {
		t.Fatalf("a read below the watermark: %v", err)
	}

	// Just above it: a large share is cut at the write that crosses it.
	// Here the free space shrinks as the file grows, as on a disk.
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	base := 64<<20 + 10*ChunkSize + fi.Size()
	s.SetLimits(store.Limits{MinFree: 64 << 20, FreeSpace: func() (int64, error) {
		fi, err := os.Stat(s.db.Path())
		if err != nil {
			return 0, err
		}
		return base - fi.Size(), nil
	}})
	chunks := countChunks(t, s)
	_, err = s.PutShare(ctx, alice, rec, bytes.NewReader(randomBytes(20*ChunkSize)))
	if !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("a put across the watermark: %v, want store.ErrStorageFull", err)
	}
	if n := countChunks(t, s); n != chunks {
		t.Fatalf("%d chunks after a refused put, want %d", n, chunks)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("a delete below the watermark: %v", err)
	}
}

func TestAllowlistPolicy(t *testing.T) {
	s, _ := limited(t, store.Limits{Allowlist: map[consent.ID]bool{alice: true}})
	ctx := context.Background()
	if err := s.AdmitShare(bob); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("admit a stranger: %v, want store.ErrNotAllowed", err)
	}
	if _, err := s.PutShare(ctx, bob, rec, bytes.NewReader([]byte("c"))); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("a stranger's share: %v, want store.ErrNotAllowed", err)
	}
	if err := s.PutManifest(bob, rec, bob, []byte("m")); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("a stranger's manifest: %v, want store.ErrNotAllowed", err)
	}
	if _, err := s.PutShare(ctx, alice, rec, bytes.NewReader([]byte("c"))); err != nil {
		t.Fatalf("an allowed owner's share: %v", err)
	}
	if n := len(s.Usage().Owners); n != 1 {
		t.Fatalf("%d owners in the usage after refusals, want 1", n)
	}
}

func TestPutRate(t *testing.T) {
	s, _ := limited(t, store.Limits{PutRate: 0.001, PutBurst: 3})
	for range 3 {
		if err := s.AdmitShare(alice); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AdmitShare(alice); !errors.Is(err, store.ErrPutRate) {
		t.Fatalf("a fourth put at once: %v, want store.ErrPutRate", err)
	}
	if err := s.PutManifest(alice, rec, alice, []byte("m")); !errors.Is(err, store.ErrPutRate) {
		t.Fatalf("a manifest past the rate: %v, want store.ErrPutRate", err)
	}
	if err := s.AdmitShare(bob); err != nil {
		t.Fatalf("another owner: %v", err)
	}
}

// The usage survives a restart (it is counted from the file) and follows
// every put, replace and delete.
func TestUsageCounts(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	id, err := s.PutShare(ctx, alice, rec, bytes.NewReader(make([]byte, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutShare(ctx, alice, rec, bytes.NewReader(make([]byte, 1000))); err != nil { // a duplicate
		t.Fatal(err)
	}
	if _, err := s.PutShare(ctx, bob, rec, bytes.NewReader(make([]byte, 10))); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{300, 200} { // the second replaces the first
		if err := s.PutManifest(alice, rec, bob, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	want := store.OwnerUsage{Owner: alice, Shares: 1, ShareBytes: 1000, Manifests: 1, ManifestBytes: 200}
	if got := usageOf(s, alice); got != want {
		t.Fatalf("usage %+v, want %+v", got, want)
	}
	if u := s.Usage(); u.Total.Shares != 2 || u.Total.ShareBytes != 1010 || u.Owners[0].Owner != alice {
		t.Fatalf("usage %+v", u)
	}
	s.Close()
	if _, err := ReadUsage(path); err != nil {
		t.Fatalf("ReadUsage of a closed store: %v", err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := usageOf(s2, alice); got != want {
		t.Fatalf("usage after a restart %+v, want %+v", got, want)
	}
	if _, err := ReadUsage(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("ReadUsage of an open store: %v, want ErrLocked", err)
	}
	if err := s2.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s2.DeleteManifests(alice, rec); err != nil {
		t.Fatal(err)
	}
	if got := usageOf(s2, alice); got != (store.OwnerUsage{Owner: alice}) {
		t.Fatalf("usage after deletes %+v", got)
	}
	snap := filepath.Join(t.TempDir(), UsageFile)
	if err := s2.WriteUsage(snap, false); err != nil {
		t.Fatal(err)
	}
	u, err := ReadUsageSnapshot(snap)
	if err != nil || u.Source != "snapshot" || len(u.Owners) != 1 || u.Owners[0].Owner != bob {
		t.Fatalf("snapshot %+v, %v", u, err)
	}
}
