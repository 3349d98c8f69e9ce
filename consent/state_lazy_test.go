package consent

import (
	"slices"
	"sync"
	"testing"
)

// A restored view reads its nonces from the state's table, one key per
// question: other questions read none; several readers may ask at once
// (run with -race), and it answers as the view the state was taken from.
func TestStateNoncesOnDemand(t *testing.T) {
	l := richLedger(t, 3, 200)
	r, _ := restored(t, l.view)
	if len(r.nonces) != 0 {
		t.Fatal("nonces were read at restore")
	}
	_ = r.Grants()
	for _, a := range r.Authors() {
		r.Head(a)
		r.Equivocating(a)
	}
	if len(l.requests) == 0 {
		t.Fatal("no request in the generated ledger")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, q := range l.requests {
				if got, want := r.NonceSeen(q.Requester, q.Nonce), l.view.NonceSeen(q.Requester, q.Nonce); got != want {
					t.Errorf("nonce seen %v, want %v", got, want)
				}
			}
		}()
	}
	wg.Wait()
	if len(r.nonces) != 0 {
		t.Fatal("questions filled the view's nonces")
	}
}

// A nonce table that cannot be read is rebuilt from the entries when a
// nonce is first asked, and the next save writes every table again.
func TestStateNoncesRebuilt(t *testing.T) {
	l := richLedger(t, 5, 200)
	r, ms := restored(t, l.view)
	ms.fail[tableNonces] = true
	for _, q := range l.requests {
		if got, want := r.NonceSeen(q.Requester, q.Nonce), l.view.NonceSeen(q.Requester, q.Nonce); got != want {
			t.Fatalf("nonce seen %v, want %v", got, want)
		}
	}
	if !r.src.broken.Load() {
		t.Fatal("an unreadable table was not noted")
	}
	ms.fail[tableNonces] = false
	if err := r.saveTo(ms, r.count()); err != nil {
		t.Fatal(err)
	}
	if r.src.broken.Load() || !r.noncesAll {
		t.Fatal("the save after an unreadable table was not a full one")
	}
}

// AccessSeqs names exactly the access entries of each feed, in a view
// built from the entries and in one restored from its state.
func TestStateAccessSeqs(t *testing.T) {
	l := richLedger(t, 7, 200)
	r, _ := restored(t, l.view)
	n := 0
	for _, a := range l.view.Authors() {
		var want []uint64
		for _, e := range l.view.Feed(a) {
			if e.Kind == KindAccess {
				want = append(want, e.Seq)
			}
		}
		n += len(want)
		if got := l.view.AccessSeqs(a); !slices.Equal(got, want) {
			t.Fatalf("%s: access entries %v, want %v", a.Short(), got, want)
		}
		if got := r.AccessSeqs(a); !slices.Equal(got, want) {
			t.Fatalf("%s: restored access entries %v, want %v", a.Short(), got, want)
		}
	}
	if n == 0 {
		t.Fatal("no access entry in the generated ledger")
	}
}

// A restored view indexes entries by hash only when one is first looked
// up by hash (several readers at once: run with -race), and then finds
// every entry the view it was taken from finds.
func TestStateHashIndexOnDemand(t *testing.T) {
	l := richLedger(t, 9, 200)
	r, _ := restored(t, l.view)
	for _, a := range r.Authors() {
		r.HashAt(a, 1)
		if _, err := r.EntryAt(a, 1); err != nil {
			t.Fatal(err)
		}
	}
	if r.lazyByHash.m != nil {
		t.Fatal("the hash index was built without an entry looked up by hash")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range l.entries {
				h := e.Hash()
				if got, want := r.Has(h), l.view.Has(h); got != want {
					t.Errorf("has %v, want %v", got, want)
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range l.entries {
		got, ok := r.Entry(e.Hash())
		want, wok := l.view.Entry(e.Hash())
		if ok != wok || ok && got.Hash() != want.Hash() {
			t.Fatalf("entry %s#%d by hash: %v, want %v", e.Author.Short(), e.Seq, ok, wok)
		}
	}
}

// A restored view answers grant questions (a grant by ID, whether it is
// revoked, an owner's or a grantee's newest grants and their counts) from
// the state's tables, reading only what it is asked, from several readers
// at once; Decide then loads every grant once.
func TestStateGrantsOnDemand(t *testing.T) {
	l := richLedger(t, 11, 300)
	r, _ := restored(t, l.view)
	var parties []ID
	for _, x := range [][]*KeySigner{l.people, l.owners, l.issuers} {
		for _, s := range x {
			parties = append(parties, s.ID())
		}
	}
	for _, rs := range l.roleIDs {
		parties = append(parties, rs...)
	}
	newest := func(v *View, by bool, id ID, limit int) []Hash {
		var out []Hash
		seq := v.GrantsTo(id)
		if by {
			seq = v.GrantsBy(id)
		}
		for g := range seq {
			if len(out) == limit {
				break
			}
			out = append(out, g.ID)
		}
		return out
	}
	// The reference: Grants, newest first, filtered.
	want := func(by bool, id ID) []Hash {
		var out []Hash
		all := l.view.Grants()
		for i := len(all) - 1; i >= 0; i-- {
			if g := all[i]; by && g.Author == id || !by && g.Grantee == id {
				out = append(out, g.ID)
			}
		}
		return out
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range parties {
				for _, by := range []bool{true, false} {
					w := want(by, id)
					if got := newest(r, by, id, -1); !slices.Equal(got, w) {
						t.Errorf("newest grants (by %v) of %s: %d, want %d", by, id.Short(), len(got), len(w))
					}
					if got := newest(r, by, id, 2); !slices.Equal(got, w[:min(2, len(w))]) {
						t.Errorf("newest 2 grants (by %v) of %s differ", by, id.Short())
					}
				}
				if got, w := r.GrantCountBy(id), len(want(true, id)); got != w {
					t.Errorf("grants by %s: %d, want %d", id.Short(), got, w)
				}
				if got, w := r.GrantCountTo(id), len(want(false, id)); got != w {
					t.Errorf("grants to %s: %d, want %d", id.Short(), got, w)
				}
			}
			for _, g := range l.view.Grants() {
				rg, ok := r.Grant(g.ID)
				if !ok || rg.ID != g.ID || rg.Author != g.Author || !slices.Equal(rg.Scopes, g.Scopes) || len(rg.parsed) != len(g.parsed) {
					t.Errorf("grant %s: %v", g.ID, ok)
				}
				if r.Revoked(g.ID) != l.view.Revoked(g.ID) {
					t.Errorf("grant %s revoked: %v", g.ID, r.Revoked(g.ID))
				}
			}
		}()
	}
	wg.Wait()
	if len(l.view.Grants()) == 0 {
		t.Fatal("no grant in the generated ledger")
	}
	if r.grantsLoaded() {
		t.Fatal("grant questions loaded every grant")
	}
	// Many random requests are refused before any grant is asked about
	// (equivocating authors, replays), so ask until one gets that far.
	for i := 0; i < 1000 && !r.grantsLoaded(); i++ {
		Decide(r, l.request(l.at), l.at)
	}
	if !r.grantsLoaded() {
		t.Fatal("Decide did not load the grants")
	}
	// Loaded, the view answers the same.
	for _, id := range parties {
		if got, w := newest(r, true, id, -1), want(true, id); !slices.Equal(got, w) {
			t.Fatalf("loaded: newest grants of %s differ", id.Short())
		}
	}
}

// Grant tables that cannot be read are rebuilt from the entries: the
// view answers as the one the state was taken from.
func TestStateGrantsRebuilt(t *testing.T) {
	l := richLedger(t, 13, 200)
	r, ms := restored(t, l.view)
	ms.fail[tableGrants] = true
	ms.fail[tableByOwner] = true
	sameAnswers(t, l, l.view, r)
	if !r.src.broken.Load() {
		t.Fatal("an unreadable table was not noted")
	}
}

// A restored view reads a feed's hashes and access seqs when that feed is
// first asked about, and nothing of the others; a feed table that cannot
// be read is rebuilt from the entries.
func TestStateFeedsOnDemand(t *testing.T) {
	l := richLedger(t, 15, 200)
	r, ms := restored(t, l.view)
	authors := r.Authors()
	if len(authors) < 2 {
		t.Fatal("too few feeds")
	}
	for _, a := range authors {
		if r.feeds[a].loaded() || r.Head(a) != l.view.Head(a) {
			t.Fatalf("feed %s read at restore, or its head differs", a.Short())
		}
	}
	a := authors[0]
	if h, _ := r.HashAt(a, 1); h != mustHashAt(t, l.view, a, 1) {
		t.Fatal("first hash differs")
	}
	for _, b := range authors[1:] {
		if r.feeds[b].loaded() {
			t.Fatalf("feed %s read when %s was asked about", b.Short(), a.Short())
		}
	}
	ms.fail[tableAccess] = true
	for _, b := range authors {
		if got, want := r.AccessSeqs(b), l.view.AccessSeqs(b); !slices.Equal(got, want) {
			t.Fatalf("%s: access entries %v, want %v", b.Short(), got, want)
		}
	}
	if !r.src.broken.Load() {
		t.Fatal("an unreadable table was not noted")
	}
	sameAnswers(t, l, l.view, r)
}

func mustHashAt(t *testing.T, v *View, a ID, seq uint64) Hash {
	t.Helper()
	h, ok := v.HashAt(a, seq)
	if !ok {
		t.Fatalf("no hash at %s#%d", a.Short(), seq)
	}
	return h
}
