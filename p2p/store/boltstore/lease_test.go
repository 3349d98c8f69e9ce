package boltstore

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
)

const rec2 = "ffeeddccbbaa99887766554433221100"

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(c.t.Load(), 0) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d / time.Second)) }
func newClock() *clock               { c := &clock{}; c.t.Store(1_800_000_000); return c }
func refOf(m map[string]store.Record) store.Referee {
	return func(_ consent.ID, record string) store.Record { return m[record] }
}

var testPolicy = store.Policy{Lease: 30 * 24 * time.Hour, Grace: time.Hour}

func put(t *testing.T, s *Store, owner consent.ID, record string, b []byte) vault.ShareID {
	t.Helper()
	id, err := s.PutShare(context.Background(), owner, record, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCollectOrphansAfterGrace(t *testing.T) {
	s, _ := openTemp(t)
	c := newClock()
	s.Now = c.now
	anchored := put(t, s, alice, rec, []byte("share of an anchored record"))
	orphan := put(t, s, alice, rec2, []byte("share of an add that was killed"))
	refs := map[string]store.Record{
		rec:  {Known: true, Anchor: consent.Hash{1}},
		rec2: {Known: true},
	}
	// Within the grace period nothing goes: the add may still be running.
	c.add(testPolicy.Grace - time.Second)
	rep, err := s.Collect(context.Background(), testPolicy, refOf(refs), false)
	if err != nil || len(rep.Removed) != 0 {
		t.Fatalf("collected within the grace: %v %v", rep.Removed, err)
	}
	c.add(time.Second)
	// An owner whose feed the peer does not know yet keeps its orphans.
	unknown := map[string]store.Record{rec: refs[rec], rec2: {}}
	if rep, err = s.Collect(context.Background(), testPolicy, refOf(unknown), false); err != nil || len(rep.Removed) != 0 {
		t.Fatalf("collected an unknown feed's shares: %v %v", rep.Removed, err)
	}
	rep, err = s.Collect(context.Background(), testPolicy, refOf(refs), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed[store.Orphan] != 1 {
		t.Fatalf("removed %v, want one orphan", rep.Removed)
	}
	if ok, _ := s.Has(context.Background(), orphan); ok {
		t.Fatal("the orphan is still there")
	}
	if ok, _ := s.Has(context.Background(), anchored); !ok {
		t.Fatal("an anchored share was collected")
	}
	if u := usageOf(s, alice); u.Shares != 1 {
		t.Fatalf("usage %+v after collection", u)
	}
	if _, ok, _ := s.Lease(alice, rec2); ok {
		t.Fatal("the orphan's lease was kept")
	}
}

func TestCollectOrphanNotOnRenewedList(t *testing.T) {
	s, _ := openTemp(t)
	c := newClock()
	s.Now = c.now
	live := put(t, s, alice, rec, []byte("share of the anchored manifest"))
	stray := put(t, s, alice, rec, []byte("share of a rotation that was killed"))
	h := consent.Hash{7}
	if ok, err := s.Renew(alice, rec, h, []vault.ShareID{live}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	c.add(testPolicy.Grace)
	rep, err := s.Collect(context.Background(), testPolicy, refOf(map[string]store.Record{rec: {Known: true, Anchor: h}}), false)
	if err != nil || rep.Removed[store.Orphan] != 1 {
		t.Fatalf("removed %v %v", rep.Removed, err)
	}
	if ok, _ := s.Has(context.Background(), stray); ok {
		t.Fatal("the stray share is still there")
	}
	if ok, _ := s.Has(context.Background(), live); !ok {
		t.Fatal("the listed share was collected")
	}
}

func TestCollectExpiredAndRenewed(t *testing.T) {
	s, _ := openTemp(t)
	c := newClock()
	s.Now = c.now
	a := put(t, s, alice, rec, []byte("alice's share"))
	b := put(t, s, bob, rec2, []byte("bob's share"))
	if err := s.PutManifest(bob, rec2, alice, []byte("a copy for alice")); err != nil {
		t.Fatal(err)
	}
	refs := func(_ consent.ID, _ string) store.Record { return store.Record{Known: true, Anchor: consent.Hash{1}} }
	c.add(testPolicy.Lease - time.Hour)
	if ok, err := s.Renew(alice, rec, consent.Hash{}, nil); !ok || err != nil {
		t.Fatal(ok, err)
	}
	c.add(time.Hour + testPolicy.Grace)
	rep, err := s.Collect(context.Background(), testPolicy, refs, true)
	if err != nil || len(rep.Removed) != 0 || rep.Total.Expired == 0 || rep.Total.Collectable != 2 {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	rep, err = s.Collect(context.Background(), testPolicy, refs, false)
	if err != nil || rep.Removed[store.Expired] != 2 {
		t.Fatalf("removed %v %v", rep.Removed, err)
	}
	if ok, _ := s.Has(context.Background(), b); ok {
		t.Fatal("an expired share is still there")
	}
	if ok, _ := s.Has(context.Background(), a); !ok {
		t.Fatal("a renewed share was collected")
	}
	if ms, _ := s.Manifests(bob, "", ""); len(ms) != 0 {
		t.Fatal("an expired manifest is still there")
	}
	// The owner's own entries renew its leases too.
	c.add(testPolicy.Lease + testPolicy.Grace)
	active := func(_ consent.ID, _ string) store.Record {
		return store.Record{Known: true, Anchor: consent.Hash{1}, Active: c.now().Add(-time.Hour)}
	}
	if rep, err = s.Collect(context.Background(), testPolicy, active, false); err != nil || len(rep.Removed) != 0 {
		t.Fatalf("an active owner's share was collected: %v %v", rep.Removed, err)
	}
}

func TestCollectSuperseded(t *testing.T) {
	s, _ := openTemp(t)
	c := newClock()
	s.Now = c.now
	old := put(t, s, alice, rec, []byte("old share"))
	gone := put(t, s, alice, rec2, []byte("share of a removed record"))
	if err := s.PutManifest(alice, rec2, bob, []byte("bob's copy")); err != nil {
		t.Fatal(err)
	}
	retired := c.now()
	refs := map[string]store.Record{
		rec:  {Known: true, Anchor: consent.Hash{2}, Retired: map[vault.ShareID]time.Time{old: retired}},
		rec2: {Known: true, Anchor: consent.Hash{3}, Removed: retired},
	}
	rep, err := s.Collect(context.Background(), testPolicy, refOf(refs), false)
	if err != nil || len(rep.Removed) != 0 || rep.Total.Superseded != 0 {
		t.Fatalf("collected within the grace: %+v %v", rep, err)
	}
	c.add(testPolicy.Grace)
	rep, err = s.Collect(context.Background(), testPolicy, refOf(refs), false)
	if err != nil || rep.Removed[store.Superseded] != 3 {
		t.Fatalf("removed %v %v", rep.Removed, err)
	}
	for _, id := range []vault.ShareID{old, gone} {
		if ok, _ := s.Has(context.Background(), id); ok {
			t.Fatal("a superseded share is still there")
		}
	}
}

// TestCollectRacesAdd runs collections while an add stores the shares of
// a record whose anchor is not signed yet, with the clock moving a grace
// period between puts' batches: nothing the add stored is lost.
func TestCollectRacesAdd(t *testing.T) {
	s, _ := openTemp(t)
	c := newClock()
	s.Now = c.now
	p := store.Policy{Lease: 30 * 24 * time.Hour, Grace: 2 * time.Second}
	refs := refOf(map[string]store.Record{rec: {Known: true}})
	var stored []vault.ShareID
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Collect(context.Background(), p, refs, false); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 200 {
		stored = append(stored, put(t, s, alice, rec, []byte{byte(i), byte(i >> 8), 'x'}))
		if i%10 == 9 {
			c.add(time.Second) // less than the grace between puts
		}
	}
	close(stop)
	wg.Wait()
	for _, id := range stored {
		if ok, _ := s.Has(context.Background(), id); !ok {
			t.Fatalf("share %s of the add in progress was collected", id)
		}
	}
	// Once the add stopped and the grace passed, its shares are orphans.
	c.add(p.Grace)
	rep, err := s.Collect(context.Background(), p, refs, false)
	if err != nil || rep.Removed[store.Orphan] != len(stored) {
		t.Fatalf("removed %v of %d: %v", rep.Removed, len(stored), err)
	}
}

func TestMigrationGivesFreshLeases(t *testing.T) {
	s, path := openTemp(t)
	put(t, s, alice, rec, []byte("share"))
	if err := s.PutManifest(bob, rec2, bob, []byte("env")); err != nil {
		t.Fatal(err)
	}
	// Make the file a version 1 store: no leases, no version.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketLeases); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketMeta)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := time.Now().Unix()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, k := range []struct {
		o consent.ID
		r string
	}{{alice, rec}, {bob, rec2}} {
		l, ok, err := s2.Lease(k.o, k.r)
		if err != nil || !ok || l.Renewed < before {
			t.Fatalf("lease of %s: %+v %v %v", k.r, l, ok, err)
		}
	}
	// A newer format is refused.
	if err := s2.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, u64(Version+1)) }); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a store of a newer format")
	}
}
