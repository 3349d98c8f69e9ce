// Package storetest is the conformance suite for consent.Store
// implementations. Every store, the in-memory one included, runs it:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) consent.Store { return open(t) })
//	}
package storetest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

func signer(t *testing.T, name string) *consent.KeySigner {
	seed := sha256.Sum256([]byte("medwallet storetest key: " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feed makes n chained anchor entries by s; variant changes their content.
func feed(t *testing.T, s consent.Signer, n int, variant string) []*consent.Entry {
	var es []*consent.Entry
	var head consent.Head
	for i := range n {
		e, err := consent.NewEntry(s, head, time.Unix(1767225600+int64(i), 0), consent.KindAnchor,
			&consent.AnchorBody{Record: "rec-1", Manifest: consent.HashBytes([]byte(fmt.Sprint(variant, i)))})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
		head = e.Head()
	}
	return es
}

// Run runs the conformance suite; newStore must return a fresh, empty,
// open store for each call (cleaned up by the caller, e.g. with t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) consent.Store) {
	t.Run("PutGet", func(t *testing.T) {
		s := newStore(t)
		es := feed(t, signer(t, "alice"), 3, "")
		for _, e := range es {
			if err := s.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range es {
			got, err := s.Get(e.Author, e.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash() != e.Hash() {
				t.Fatalf("seq %d: got a different entry", e.Seq)
			}
		}
		if _, err := s.Get(es[0].Author, 4); !errors.Is(err, consent.ErrNotFound) {
			t.Fatalf("missing seq: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(signer(t, "bob").ID(), 1); !errors.Is(err, consent.ErrNotFound) {
			t.Fatalf("missing author: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("AppendOnly", func(t *testing.T) {
		s := newStore(t)
		a := signer(t, "alice")
		e := feed(t, a, 1, "x")[0]
		other := feed(t, a, 1, "y")[0]
		if err := s.Put(e); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(e); err != nil {
			t.Fatalf("same entry again: %v", err)
		}
		if err := s.Put(other); !errors.Is(err, consent.ErrConflict) {
			t.Fatalf("different entry at the same place: err = %v, want ErrConflict", err)
		}
		got, err := s.Get(a.ID(), 1)
		if err != nil || got.Hash() != e.Hash() {
			t.Fatalf("conflicting put changed the stored entry: %v", err)
		}
	})
	t.Run("PutBatch", func(t *testing.T) {
		s := newStore(t)
		a := signer(t, "alice")
		es := feed(t, a, 5, "")
		if err := s.Put(es[1]); err != nil {
			t.Fatal(err)
		}
		// Out of order, one entry held already and one twice in the batch.
		batch := []*consent.Entry{es[3], es[0], es[1], es[4], es[2], es[0]}
		if err := s.PutBatch(batch); err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got, err := s.Get(e.Author, e.Seq)
			if err != nil || got.Hash() != e.Hash() {
				t.Fatalf("seq %d after PutBatch: %v", e.Seq, err)
			}
		}
		if err := s.PutBatch(nil); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
	})
	t.Run("PutBatchAllOrNothing", func(t *testing.T) {
		s := newStore(t)
		a, b := signer(t, "alice"), signer(t, "bob")
		x, y := feed(t, a, 3, "x"), feed(t, a, 3, "y")
		if err := s.Put(x[0]); err != nil {
			t.Fatal(err)
		}
		bobs := feed(t, b, 2, "")
		// y[0] conflicts with the stored x[0]: nothing of the batch is kept.
		if err := s.PutBatch([]*consent.Entry{bobs[0], bobs[1], y[0]}); !errors.Is(err, consent.ErrConflict) {
			t.Fatalf("conflict with the store: err = %v, want ErrConflict", err)
		}
		// x[1] and y[1] conflict with each other inside the batch.
		if err := s.PutBatch([]*consent.Entry{bobs[0], x[1], y[1]}); !errors.Is(err, consent.ErrConflict) {
			t.Fatalf("conflict inside the batch: err = %v, want ErrConflict", err)
		}
		for _, e := range append(bobs, x[1]) {
			if _, err := s.Get(e.Author, e.Seq); !errors.Is(err, consent.ErrNotFound) {
				t.Fatalf("%s#%d was stored by a refused batch (err %v)", e.Author.Short(), e.Seq, err)
			}
		}
		if got, err := s.Get(a.ID(), 1); err != nil || got.Hash() != x[0].Hash() {
			t.Fatalf("a refused batch changed the stored entry: %v", err)
		}
	})
	t.Run("ScanOrder", func(t *testing.T) {
		s := newStore(t)
		var all []*consent.Entry
		for _, name := range []string{"carol", "alice", "bob"} {
			all = append(all, feed(t, signer(t, name), 12, name)...)
		}
		// Put in an order unrelated to the scan order.
		for i := range all {
			if err := s.Put(all[(i*7)%len(all)]); err != nil {
				t.Fatal(err)
			}
		}
		var got []*consent.Entry
		if err := s.Scan(func(e *consent.Entry) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(all) {
			t.Fatalf("scanned %d entries, want %d", len(got), len(all))
		}
		for i := 1; i < len(got); i++ {
			a, b := got[i-1], got[i]
			if a.Author > b.Author || a.Author == b.Author && a.Seq >= b.Seq {
				t.Fatalf("scan order broken at %d: %s#%d then %s#%d", i, a.Author.Short(), a.Seq, b.Author.Short(), b.Seq)
			}
		}
	})
	t.Run("ScanStops", func(t *testing.T) {
		s := newStore(t)
		for _, e := range feed(t, signer(t, "alice"), 5, "") {
			if err := s.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		stop := errors.New("stop")
		n := 0
		err := s.Scan(func(*consent.Entry) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 2 {
			t.Fatalf("scan went on after an error: n=%d err=%v", n, err)
		}
	})
	t.Run("ScanFeed", func(t *testing.T) {
		s := newStore(t)
		alice, bob, carol := signer(t, "alice"), signer(t, "bob"), signer(t, "carol")
		as := feed(t, alice, 10, "a")
		// Neighbours on both sides of alice in the key order, so that a
		// scan that runs past its author shows.
		for _, e := range append(append(feed(t, bob, 4, "b"), as...), feed(t, carol, 4, "c")...) {
			if err := s.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		seqs := func(author consent.ID, from uint64) []uint64 {
			t.Helper()
			var got []uint64
			err := s.ScanFeed(author, from, func(e *consent.Entry) error {
				if e.Author != author {
					t.Fatalf("ScanFeed(%s) gave an entry of %s", author.Short(), e.Author.Short())
				}
				if author == alice.ID() && e.Hash() != as[e.Seq-1].Hash() {
					t.Fatalf("seq %d: got a different entry", e.Seq)
				}
				got = append(got, e.Seq)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		for _, c := range []struct {
			name   string
			author consent.ID
			from   uint64
			want   []uint64
		}{
			{"from 1", alice.ID(), 1, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"from 0", alice.ID(), 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"from the middle", alice.ID(), 7, []uint64{7, 8, 9, 10}},
			{"the last", alice.ID(), 10, []uint64{10}},
			{"past the end", alice.ID(), 11, nil},
			{"far past the end", alice.ID(), 1 << 62, nil},
			{"another author", bob.ID(), 2, []uint64{2, 3, 4}},
			{"unknown author", signer(t, "dave").ID(), 1, nil},
		} {
			if got := seqs(c.author, c.from); !slices.Equal(got, c.want) {
				t.Errorf("%s: ScanFeed gave seqs %v, want %v", c.name, got, c.want)
			}
		}
		stop := errors.New("stop")
		n := 0
		err := s.ScanFeed(alice.ID(), 1, func(*consent.Entry) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 3 {
			t.Fatalf("ScanFeed went on after an error: n=%d err=%v", n, err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for g := range 4 {
			es := feed(t, signer(t, fmt.Sprint("writer-", g)), 20, "")
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, e := range es {
					if err := s.Put(e); err != nil {
						t.Error(err)
						return
					}
					if _, err := s.Get(e.Author, e.Seq); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		n := 0
		s.Scan(func(*consent.Entry) error { n++; return nil })
		if n != 80 {
			t.Fatalf("%d entries after concurrent puts, want 80", n)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		s := newStore(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(feed(t, signer(t, "alice"), 1, "")[0]); err == nil {
			t.Fatal("put on a closed store succeeded")
		}
		if err := s.PutBatch(feed(t, signer(t, "alice"), 1, "")); err == nil {
			t.Fatal("put batch on a closed store succeeded")
		}
	})
}
