package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/storetest"
)

const (
	alice = consent.ID("12D3KooWFuPHHvpowyVT5GASzZdv3zGLdSut6RU9HKdZryRTKzoj")
	bob   = consent.ID("12D3KooWLHNLxMgY3SEvQZQqS8oBJ9Bt88T1Bg6h9CUUXTEUMeNq")
	rec   = "00112233445566778899aabbccddeeff"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peer.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vault.ShareStore {
		s, _ := openTemp(t)
		return s.OwnerStore(alice, rec)
	})
}

func TestSurvivesRestart(t *testing.T) {
	s, path := openTemp(t)
	data := make([]byte, 3*ChunkSize+17)
	rand.Read(data)
	id, err := s.PutShare(context.Background(), alice, rec, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(alice, rec, alice, []byte("envelope")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	r, err := s2.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, data) {
		t.Fatal("share changed across a restart")
	}
	m, err := s2.Meta(id)
	if err != nil || m.Owner != alice || m.Record != rec || m.Size != int64(len(data)) {
		t.Fatalf("meta = %+v, %v", m, err)
	}
	ms, err := s2.Manifests(alice, "", alice)
	if err != nil || len(ms) != 1 || string(ms[0].Envelope) != "envelope" || ms[0].Record != rec {
		t.Fatalf("manifests = %+v, %v", ms, err)
	}
}

type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection lost")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func countChunks(t *testing.T, s *Store) int {
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketChunks).Stats().KeyN
		return nil
	})
	return n
}

// An upload cut short leaves nothing behind, even when the peer crashes
// in the middle (simulated by an in-flight mark left at close).
func TestInterruptedUpload(t *testing.T) {
	s, path := openTemp(t)
	data := make([]byte, 20*ChunkSize)
	_, err := s.PutShare(context.Background(), alice, rec, &failAfter{bytes.NewReader(data), 17 * ChunkSize})
	if err == nil {
		t.Fatal("a failed upload succeeded")
	}
	if n := countChunks(t, s); n != 0 {
		t.Fatalf("%d chunks left after a failed upload", n)
	}
	// Simulate a crash: chunks and an in-flight mark, no share.
	s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bucketUploads).Put(u64(42), nil)
		return tx.Bucket(bucketChunks).Put(chunkKey(42, 0), []byte("partial"))
	})
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := countChunks(t, s2); n != 0 {
		t.Fatalf("%d chunks of a crashed upload survived a restart", n)
	}
}

func TestOwnerConflictAndDelete(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	id, err := s.PutShare(ctx, alice, rec, bytes.NewReader([]byte("ciphertext")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutShare(ctx, bob, rec, bytes.NewReader([]byte("ciphertext"))); !errors.Is(err, store.ErrOwner) {
		t.Fatalf("another owner re-putting a share: got %v, want store.ErrOwner", err)
	}
	if m, _ := s.Meta(id); m.Owner != alice {
		t.Fatal("owner changed")
	}
	if _, err := s.PutShare(ctx, alice, rec, bytes.NewReader([]byte("ciphertext"))); err != nil {
		t.Fatalf("idempotent put: %v", err)
	}
	if n := countChunks(t, s); n != 1 {
		t.Fatalf("%d chunks after a duplicate put, want 1", n)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := countChunks(t, s); n != 0 {
		t.Fatalf("%d chunks after delete", n)
	}
}

func TestShareLimit(t *testing.T) {
	s, _ := openTemp(t)
	s.MaxShare = ChunkSize
	_, err := s.PutShare(context.Background(), alice, rec, bytes.NewReader(make([]byte, ChunkSize+1)))
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("got %v, want store.ErrTooLarge", err)
	}
	if n := countChunks(t, s); n != 0 {
		t.Fatalf("%d chunks left", n)
	}
}

func TestManifests(t *testing.T) {
	s, _ := openTemp(t)
	rec2 := "ffeeddccbbaa99887766554433221100"
	for _, m := range []store.ManifestCopy{
		{Owner: alice, Record: rec, Recipient: alice, Envelope: []byte("a-own")},
		{Owner: alice, Record: rec, Recipient: bob, Envelope: []byte("a-for-bob")},
		{Owner: alice, Record: rec2, Recipient: alice, Envelope: []byte("a2-own")},
		{Owner: bob, Record: rec, Recipient: bob, Envelope: []byte("b-own")},
	} {
		if err := s.PutManifest(m.Owner, m.Record, m.Recipient, m.Envelope); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		owner     consent.ID
		record    string
		recipient consent.ID
		want      []string
	}{
		{alice, "", alice, []string{"a-own", "a2-own"}},
		{alice, "", bob, []string{"a-for-bob"}},
		{alice, rec, "", []string{"a-own", "a-for-bob"}},
		{bob, "", "", []string{"b-own"}},
		{bob, "", alice, nil},
	}
	for _, tc := range tests {
		got, err := s.Manifests(tc.owner, tc.record, tc.recipient)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range got {
			names = append(names, string(g.Envelope))
		}
		if len(names) != len(tc.want) {
			t.Fatalf("Manifests(%s, %q, %s) = %v, want %v", tc.owner.Short(), tc.record, tc.recipient.Short(), names, tc.want)
		}
		for _, w := range tc.want {
			found := false
			for _, n := range names {
				found = found || n == w
			}
			if !found {
				t.Fatalf("Manifests(%s, %q, %s) = %v, want %v", tc.owner.Short(), tc.record, tc.recipient.Short(), names, tc.want)
			}
		}
	}
	if err := s.DeleteManifests(alice, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Manifests(alice, "", ""); len(got) != 1 {
		t.Fatalf("after delete: %d manifests, want 1", len(got))
	}
	if err := s.PutManifest(alice, rec, alice, make([]byte, store.MaxManifest+1)); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("oversized manifest: %v", err)
	}
}
