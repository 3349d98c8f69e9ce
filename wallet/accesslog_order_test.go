package wallet

import (
	"crypto/ed25519"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
)

// countingStore counts the entries a ledger reads from its store, one by
// one (Get) or streamed (ScanFeed, Scan). Close keeps the entries, so a
// ledger can be opened on them again.
type countingStore struct {
	*consent.MemStore
	gets, scans atomic.Int64
}

func (s *countingStore) Get(a consent.ID, seq uint64) (*consent.Entry, error) {
	s.gets.Add(1)
	return s.MemStore.Get(a, seq)
}

func (s *countingStore) ScanFeed(a consent.ID, from uint64, fn func(*consent.Entry) error) error {
	return s.MemStore.ScanFeed(a, from, func(e *consent.Entry) error { s.scans.Add(1); return fn(e) })
}

func (s *countingStore) Scan(fn func(*consent.Entry) error) error {
	return s.MemStore.Scan(func(e *consent.Entry) error { s.scans.Add(1); return fn(e) })
}

func (s *countingStore) Close() error { return nil }

// accessLedger fills a ledger with three deciders' feeds of access
// entries, whose times often tie (within and across feeds), and a feed
// of as many other entries, all at one time newer than any access, then opens a ledger on them afresh: nothing read
// yet, nothing cached.
func accessLedger(t *testing.T, n int) (*consent.Ledger, *countingStore) {
	t.Helper()
	s := &countingStore{MemStore: consent.NewMemStore()}
	l, err := consent.OpenLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	signer := func(i byte) *consent.KeySigner {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = i
		ks, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	owner, requester := signer(100), signer(101)
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Unix(1_700_000_000, 0)
	for d := range byte(3) {
		ds := signer(d)
		at := base
		for i := range n {
			at = at.Add(time.Duration(rng.IntN(3)) * time.Second)
			r, err := consent.SignRequest(requester, consent.Request{Owner: owner.ID(), Record: "rec",
				Scope: "patient/Observation.rs", Purpose: "TREAT", Time: at.Unix(), Nonce: append(make([]byte, 13), d, byte(i), byte(i>>8))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(ds, at, consent.KindAccess, &consent.AccessBody{Request: r.Encode(),
				Reason: consent.ReasonScope}); err != nil {
				t.Fatal(err)
			}
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Duration(3*n) * time.Second) // newer than every access entry
	for range n {
		if _, err := l.Append(owner, at, consent.KindIdentity, &consent.IdentityBody{
			AgeRecipient: id.Recipient().String(), Role: "patient"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = consent.OpenLedger(s); err != nil {
		t.Fatal(err)
	}
	s.gets.Store(0)
	s.scans.Store(0)
	return l, s
}

// The newest-first walk hands over the access entries in exactly the
// reverse of the order the whole log is sorted in.
func TestAccessesNewestFirstOrder(t *testing.T) {
	l, _ := accessLedger(t, 300)
	l.View(func(v *consent.View) {
		all, err := accessCandidates(v)
		if err != nil {
			t.Fatal(err)
		}
		var got []*consent.Entry
		if err := accessesNewestFirst(v, func(e *consent.Entry) bool { got = append(got, e); return true }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(all) || len(all) != 900 {
			t.Fatalf("walked %d entries, the log has %d", len(got), len(all))
		}
		for i, e := range got {
			c := all[len(all)-1-i]
			if e.Author != c.author || e.Seq != c.seq {
				t.Fatalf("entry %d newest first is %s#%d, want %s#%d", i, e.Author.Short(), e.Seq, c.author.Short(), c.seq)
			}
		}
	})
}

// Listing the newest 10 reads about 10 entries (and those sharing their
// times), not the whole ledger, nor the entries of other kinds newer than
// them.
func TestAccessesNewestFirstReadsTheTail(t *testing.T) {
	l, s := accessLedger(t, 1000)
	l.View(func(v *consent.View) {
		k := 0
		if err := accessesNewestFirst(v, func(*consent.Entry) bool { k++; return k <= 10 }); err != nil {
			t.Fatal(err)
		}
	})
	if g, sc := s.gets.Load(), s.scans.Load(); g+sc > 40 {
		t.Fatalf("the newest 10 of 3000 access entries read %d entries (%d streamed)", g+sc, sc)
	}
}
