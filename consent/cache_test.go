package consent

import (
	"testing"
	"time"
)

// TestEntryCacheBound: reading a feed longer than the cache, entry by
// entry, leaves at most EntryCacheSize entries cached (the most recent),
// and streaming a feed does not fill the cache at all.
func TestEntryCacheBound(t *testing.T) {
	w := newWorld(t)
	alice := testSigner(t, "alice")
	n := EntryCacheSize + 300
	for i := range n {
		w.add(alice, t0.Add(time.Duration(i)*time.Second), KindAnchor, &AnchorBody{Record: "r", Manifest: HashBytes([]byte{byte(i), byte(i >> 8)})})
	}
	v := w.view
	if err := v.FeedFrom(alice.ID(), 1, func(*Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := v.cache.len(); got != 0 {
		t.Fatalf("streaming the feed cached %d entries", got)
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		e, err := v.EntryAt(alice.ID(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if e.Hash() != w.entries[seq-1].Hash() {
			t.Fatalf("seq %d: another entry", seq)
		}
		if got := v.cache.len(); got > EntryCacheSize {
			t.Fatalf("after seq %d the cache holds %d entries, more than %d", seq, got, EntryCacheSize)
		}
	}
	if got := v.cache.len(); got != EntryCacheSize {
		t.Fatalf("the cache holds %d entries, want %d", got, EntryCacheSize)
	}
	if _, ok := v.cache.get(authorSeq{alice.ID(), 1}); ok {
		t.Fatal("the oldest read is still cached")
	}
	if _, ok := v.cache.get(authorSeq{alice.ID(), uint64(n)}); !ok {
		t.Fatal("the latest read is not cached")
	}
	if len(v.unstored) != 0 {
		t.Fatalf("a view over its own store holds %d entries outside it", len(v.unstored))
	}
}

// failingStore refuses every write.
type failingStore struct{ *MemStore }

func (failingStore) Put(*Entry) error        { return ErrClosed }
func (failingStore) PutBatch([]*Entry) error { return ErrClosed }

// TestLedgerViewHoldsOnlyUnstored: a Ledger's view keeps no entry in
// memory once the Ledger stored it (Append, Ingest, IngestBatch, open),
// and keeps readable the entries its store refused.
func TestLedgerViewHoldsOnlyUnstored(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	st := NewMemStore()
	l, err := OpenLedger(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(alice, t0, KindAnchor, &AnchorBody{Record: "r", Manifest: HashBytes([]byte("a"))}); err != nil {
		t.Fatal(err)
	}
	var bobs []*Entry
	var head Head
	for i := range 5 {
		e, err := NewEntry(bob, head, t0, KindAnchor, &AnchorBody{Record: "r", Manifest: HashBytes([]byte{byte(i)})})
		if err != nil {
			t.Fatal(err)
		}
		bobs, head = append(bobs, e), e.Head()
	}
	if _, err := l.Ingest(bobs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := l.IngestBatch(bobs[1:]); err != nil {
		t.Fatal(err)
	}
	if n := len(l.view.unstored); n != 0 {
		t.Fatalf("the view holds %d stored entries", n)
	}

	f, err := OpenLedger(failingStore{st})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.view.unstored); n != 0 {
		t.Fatalf("an opened view holds %d stored entries", n)
	}
	e, err := NewEntry(bob, head, t0, KindAnchor, &AnchorBody{Record: "r", Manifest: HashBytes([]byte("more"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.IngestBatch([]*Entry{e}); err == nil {
		t.Fatal("a store that refuses writes did not fail IngestBatch")
	}
	var got []Hash
	f.View(func(v *View) {
		err = v.FeedFrom(bob.ID(), 5, func(e *Entry) error { got = append(got, e.Hash()); return nil })
	})
	if err != nil || len(got) != 2 || got[1] != e.Hash() {
		t.Fatalf("the entry the store refused is not readable: %d entries, %v", len(got), err)
	}
}
