package consent

import (
	"slices"
	"sync"
	"testing"
)

// A restored view keeps its nonce table encoded until a nonce is asked:
// other questions leave it so; the first NonceSeen decodes it, from
// several readers at once (run with -race), and answers as the view the
// state was taken from.
func TestStateNoncesDecodedOnDemand(t *testing.T) {
	l := richLedger(t, 3, 200)
	r, err := restoreView(mustEncodeState(t, l.view), l.view.store)
	if err != nil {
		t.Fatal(err)
	}
	if r.nonces != nil || r.lazyNonces == nil {
		t.Fatal("the nonce table was decoded at restore")
	}
	_ = r.Grants()
	for _, a := range r.Authors() {
		r.Head(a)
		r.Equivocating(a)
	}
	if r.nonces != nil {
		t.Fatal("the nonce table was decoded without a nonce asked")
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
	if r.nonces == nil {
		t.Fatal("the nonce table is still not decoded")
	}
}

// A nonce table that does not decode (a state the checksum passed, so a
// bug) is rebuilt from the entries when a nonce is first asked.
func TestStateNoncesRebuilt(t *testing.T) {
	l := richLedger(t, 5, 200)
	r, err := restoreView(mustEncodeState(t, l.view), l.view.store)
	if err != nil {
		t.Fatal(err)
	}
	r.lazyNonces.raw = []byte{0x81, 0x01} // [1]: not a table
	for _, q := range l.requests {
		if got, want := r.NonceSeen(q.Requester, q.Nonce), l.view.NonceSeen(q.Requester, q.Nonce); got != want {
			t.Fatalf("nonce seen %v, want %v", got, want)
		}
	}
}

// AccessSeqs names exactly the access entries of each feed, in a view
// built from the entries and in one restored from its state.
func TestStateAccessSeqs(t *testing.T) {
	l := richLedger(t, 7, 200)
	r, err := restoreView(mustEncodeState(t, l.view), l.view.store)
	if err != nil {
		t.Fatal(err)
	}
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
	r, err := restoreView(mustEncodeState(t, l.view), l.view.store)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Authors() {
		r.HashAt(a, 1)
		if _, err := r.EntryAt(a, 1); err != nil {
			t.Fatal(err)
		}
	}
	if r.byHash != nil {
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
