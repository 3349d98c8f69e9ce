package boltstore

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	bolt "go.etcd.io/bbolt"
)

func anchorEntries(t *testing.T, s consent.Signer, n int) []*consent.Entry {
	t.Helper()
	var (
		out  []*consent.Entry
		head consent.Head
	)
	for i := range n {
		e, err := consent.NewEntry(s, head, time.Unix(1767225600+int64(i), 0), consent.KindAnchor,
			&consent.AnchorBody{Record: "rec-1", Manifest: consent.HashBytes([]byte{byte(i)})})
		if err != nil {
			t.Fatal(err)
		}
		head = e.Head()
		out = append(out, e)
	}
	return out
}

func generation(t *testing.T, s *Store) uint64 {
	t.Helper()
	g, err := s.Generation()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The generation counts the entries added: Put and PutBatch raise it by
// what they add, not by what they were handed.
func TestGeneration(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	signer, err := consent.NewKeySigner(ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	es := anchorEntries(t, signer, 6)
	if g := generation(t, s); g != 0 {
		t.Fatalf("new store: generation %d", g)
	}
	if err := s.Put(es[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(es[0]); err != nil { // held already: no change
		t.Fatal(err)
	}
	if g := generation(t, s); g != 1 {
		t.Fatalf("after one entry: generation %d", g)
	}
	if err := s.PutBatch([]*consent.Entry{es[0], es[1], es[2], es[2]}); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, s); g != 3 {
		t.Fatalf("after three entries: generation %d", g)
	}
	// A refused batch adds nothing.
	other, err := consent.NewEntry(signer, es[2].Head(), time.Unix(1767225700, 0), consent.KindAnchor,
		&consent.AnchorBody{Record: "rec-2", Manifest: consent.HashBytes([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatch([]*consent.Entry{es[3], other}); err == nil {
		t.Fatal("conflicting batch stored")
	}
	if g := generation(t, s); g != 3 {
		t.Fatalf("after a refused batch: generation %d, want 3", g)
	}
	if err := s.PutBatch([]*consent.Entry{es[3], es[4]}); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, s); g != 5 {
		t.Fatalf("after five entries: generation %d, want 5", g)
	}
}

// A store written before the generation existed starts from the number of
// entries it holds.
func TestGenerationOfOldStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := consent.NewKeySigner(ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatch(anchorEntries(t, signer, 7)); err != nil {
		t.Fatal(err)
	}
	// What an older binary leaves: no generation.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(metaBucket).Delete(genKey) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if g := generation(t, s); g != 7 {
		t.Fatalf("generation %d, want 7", g)
	}
}

func TestSaveLoadState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	signer, err := consent.NewKeySigner(ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	es := anchorEntries(t, signer, 200) // enough for the entries bucket to have a page of its own
	if err := s.PutBatch(es[:100]); err != nil {
		t.Fatal(err)
	}
	if g, b, err := s.LoadState(); err != nil || b != nil || g != 0 {
		t.Fatalf("no state saved: LoadState = %d, %q, %v", g, b, err)
	}
	want := []byte("state of 100")
	if err := s.SaveState(100, want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	g, b, err := s.LoadState()
	if err != nil || g != 100 || !bytes.Equal(b, want) {
		t.Fatalf("LoadState = %d, %q, %v", g, b, err)
	}
	// An entry added by a binary that does not count: the generation
	// stays, the entries bucket's root moves, and the state is not
	// offered.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(entriesBucket).Put(key(es[100].Author, es[100].Seq), es[100].Encode())
	}); err != nil {
		t.Fatal(err)
	}
	if g, b, err := s.LoadState(); err != nil || b != nil {
		t.Fatalf("after an uncounted write: LoadState = %d, %q, %v", g, b, err)
	}
	if err := s.SaveState(generation(t, s), want); err != nil {
		t.Fatal(err)
	}
	if err := s.DropState(); err != nil {
		t.Fatal(err)
	}
	if g, b, err := s.LoadState(); err != nil || b != nil {
		t.Fatalf("after DropState: LoadState = %d, %q, %v", g, b, err)
	}
}
