package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
)

// Leases (store.Lease): one per (owner, record) in their own bucket, keyed
// like the manifests (owner | 0 | record), beside the shares and copies
// they cover. A store file written before leases existed (version 1) gets
// its version bumped to 2 at Open, and every record it holds a fresh
// lease.

var (
	bucketLeases = []byte("leases") // owner | 0 | record -> store.Lease (CBOR)
	bucketMeta   = []byte("meta")   // "version" -> uint64
	keyVersion   = []byte("version")
)

// Version is the store file's format version: 2 added leases.
const Version = 2

func leaseKey(owner consent.ID, record string) []byte {
	k := make([]byte, 0, len(owner)+len(record)+1)
	k = append(k, owner...)
	k = append(k, 0)
	return append(k, record...)
}

func splitLeaseKey(k []byte) (consent.ID, string) {
	o, r, _ := bytes.Cut(k, []byte{0})
	return consent.ID(o), string(r)
}

// migrate brings a store file to Version: a file without leases gets a
// lease renewed at now for every record it holds.
func migrate(tx *bolt.Tx, now time.Time) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	var v uint64 = 1
	if b := meta.Get(keyVersion); len(b) == 8 {
		v = binary.BigEndian.Uint64(b)
	}
	if v > Version {
		return fmt.Errorf("the store file has format version %d; this medwallet reads up to %d", v, Version)
	}
	leases, err := tx.CreateBucketIfNotExists(bucketLeases)
	if err != nil {
		return err
	}
	if v < 2 {
		fresh := func(owner consent.ID, record string) error {
			k := leaseKey(owner, record)
			if leases.Get(k) != nil {
				return nil
			}
			return putLease(leases, k, store.Lease{Renewed: now.Unix()})
		}
		err := tx.Bucket(bucketShares).ForEach(func(_, v []byte) error {
			var m store.ShareMeta
			if err := consent.Unmarshal(v, &m); err != nil {
				return err
			}
			return fresh(m.Owner, m.Record)
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketManifest).ForEach(func(k, _ []byte) error {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) != 3 {
				return nil
			}
			return fresh(consent.ID(parts[0]), string(parts[1]))
		})
		if err != nil {
			return err
		}
	}
	return meta.Put(keyVersion, u64(Version))
}

func putLease(b *bolt.Bucket, k []byte, l store.Lease) error {
	v, err := consent.Marshal(l)
	if err != nil {
		return err
	}
	return b.Put(k, v)
}

func getLease(b *bolt.Bucket, k []byte) (store.Lease, bool, error) {
	var l store.Lease
	v := b.Get(k)
	if v == nil {
		return l, false, nil
	}
	if err := consent.Unmarshal(v, &l); err != nil {
		return l, false, fmt.Errorf("lease: damaged: %w", err)
	}
	return l, true, nil
}

// touch renews the lease of owner's record within tx (creating it).
func (s *Store) touch(tx *bolt.Tx, owner consent.ID, record string) error {
	b := tx.Bucket(bucketLeases)
	k := leaseKey(owner, record)
	l, _, err := getLease(b, k)
	if err != nil {
		return err
	}
	l.Renewed = max(l.Renewed, s.clock().Unix())
	return putLease(b, k, l)
}

func (s *Store) clock() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Lease returns the lease of owner's record (false if there is none).
func (s *Store) Lease(owner consent.ID, record string) (store.Lease, bool, error) {
	var l store.Lease
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		l, ok, err = getLease(tx.Bucket(bucketLeases), leaseKey(owner, record))
		return err
	})
	return l, ok, err
}

// Renew renews the lease of owner's record if the peer holds anything of
// it, and reports whether it did. With a manifest hash it also records
// the share IDs that manifest lists (sorted here): the shares of the
// record it does not name are orphans once the manifest is the anchored
// one (store.Classify).
func (s *Store) Renew(owner consent.ID, record string, manifest consent.Hash, shares []vault.ShareID) (bool, error) {
	ok := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLeases)
		k := leaseKey(owner, record)
		l, found, err := getLease(b, k)
		if err != nil || !found {
			return err
		}
		ok = true
		l.Renewed = max(l.Renewed, s.clock().Unix())
		if !manifest.IsZero() {
			l.Manifest = manifest
			l.Shares = store.SortShareIDs(slices.Clone(shares))
		}
		return putLease(b, k, l)
	})
	return ok, err
}

// RenewActivity renews the lease of owner's record on the owner's own
// activity (a has or a get); errors are dropped: a lease not renewed now
// is renewed by the next activity.
func (s *Store) RenewActivity(owner consent.ID, record string) {
	_, _ = s.Renew(owner, record, consent.Hash{}, nil)
}

// Leases calls fn for every lease.
func (s *Store) Leases(fn func(owner consent.ID, record string, l store.Lease) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			var l store.Lease
			if err := consent.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("lease: damaged: %w", err)
			}
			o, r := splitLeaseKey(k)
			return fn(o, r, l)
		})
	})
}

// gcItem is one item a collection pass looks at.
type gcItem struct {
	store.Item
	size int64
	key  []byte // manifest key (copies only)
}

// Collect runs one collection pass at the store's clock: it classifies
// every share and manifest copy (store.Classify, with ref telling what the
// ledger says of each record) and, unless dryRun, removes those
// collectable now. Each removal re-reads the item's lease in the
// transaction that removes it and keeps an item renewed since the pass
// looked (an add putting more shares of the record), so nothing a put or
// renew touched within the grace period is removed. Leases left with
// nothing to cover are dropped. The report counts what was held before
// the pass and what it removed.
func (s *Store) Collect(ctx context.Context, p store.Policy, ref store.Referee, dryRun bool) (store.GCReport, error) {
	now := s.clock()
	rep := store.GCReport{Time: now.UTC().Truncate(time.Second), Removed: map[string]int{},
		Lease: int64(p.Lease / time.Second), Grace: int64(p.Grace / time.Second)}
	var items []gcItem
	leases := map[string]store.Lease{}
	fresh := false
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
			var m store.ShareMeta
			if err := consent.Unmarshal(v, &m); err != nil {
				return err
			}
			it := gcItem{Item: store.Item{Owner: m.Owner, Record: m.Record, Created: time.Unix(m.Created, 0)}, size: m.Size}
			copy(it.Share[:], k)
			items = append(items, it)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketManifest).ForEach(func(k, v []byte) error {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) != 3 {
				return nil
			}
			it := gcItem{Item: store.Item{Owner: consent.ID(parts[0]), Record: string(parts[1]), Recipient: consent.ID(parts[2])},
				size: int64(len(v)), key: slices.Clone(k)}
			if it.Recipient == it.Owner {
				it.Own, it.Envelope = true, consent.Hash(vault.ManifestHash(v))
			}
			items = append(items, it)
			return nil
		})
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketLeases)
		if b == nil {
			// A version 1 file opened read-only: every record's lease
			// would be fresh after the migration.
			fresh = true
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var l store.Lease
			if err := consent.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("lease: damaged: %w", err)
			}
			leases[string(k)] = l
			return nil
		})
	})
	if err != nil {
		return rep, err
	}
	refs := map[string]store.Record{}
	owners := map[consent.ID]*store.LeaseUsage{}
	held := map[string]bool{} // lease keys that still cover something
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		lk := string(leaseKey(it.Owner, it.Record))
		r, ok := refs[lk]
		if !ok {
			r = ref(it.Owner, it.Record)
			refs[lk] = r
		}
		l, ok := leases[lk]
		if !ok && fresh {
			l.Renewed = now.Unix()
		}
		st := store.Classify(p, it.Item, l, r, now)
		u := owners[it.Owner]
		if u == nil {
			u = &store.LeaseUsage{Owner: it.Owner}
			owners[it.Owner] = u
		}
		u.Add(p, it.size, it.key != nil, st, now)
		if dryRun || !st.Collectable(now) {
			held[lk] = true
			continue
		}
		gone, err := s.collect(it, l, st.Reason)
		if err != nil {
			return rep, err
		}
		if !gone {
			held[lk] = true
			continue
		}
		rep.Removed[st.Reason]++
		rep.RemovedBytes += it.size
	}
	for _, u := range owners {
		rep.Owners = append(rep.Owners, *u)
	}
	slices.SortFunc(rep.Owners, func(a, b store.LeaseUsage) int { return bytes.Compare([]byte(a.Owner), []byte(b.Owner)) })
	for _, u := range rep.Owners {
		rep.Total.Leased += u.Leased
		rep.Total.Expiring += u.Expiring
		rep.Total.Orphan += u.Orphan
		rep.Total.Superseded += u.Superseded
		rep.Total.Expired += u.Expired
		rep.Total.Manifests += u.Manifests
		rep.Total.Collectable += u.Collectable
	}
	if dryRun || fresh {
		return rep, nil
	}
	// Leases with nothing left to cover go, unless renewed since.
	var drop []string
	for k := range leases {
		if !held[k] {
			drop = append(drop, k)
		}
	}
	if len(drop) == 0 {
		return rep, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLeases)
		covered, err := shareRecords(tx)
		if err != nil {
			return err
		}
		for _, k := range drop {
			cur, ok, err := getLease(b, []byte(k))
			if err != nil || !ok || cur.Renewed != leases[k].Renewed || covered[k] || hasCopies(tx, []byte(k)) {
				continue
			}
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	return rep, err
}

// shareRecords returns the lease keys of the records shares are held of.
func shareRecords(tx *bolt.Tx) (map[string]bool, error) {
	out := map[string]bool{}
	err := tx.Bucket(bucketShares).ForEach(func(_, v []byte) error {
		var m store.ShareMeta
		if err := consent.Unmarshal(v, &m); err != nil {
			return err
		}
		out[string(leaseKey(m.Owner, m.Record))] = true
		return nil
	})
	return out, err
}

// hasCopies reports whether a manifest copy is held under a lease key.
func hasCopies(tx *bolt.Tx, k []byte) bool {
	prefix := append(slices.Clone(k), 0)
	c, _ := tx.Bucket(bucketManifest).Cursor().Seek(prefix)
	return c != nil && bytes.HasPrefix(c, prefix)
}

// collect removes one item unless its lease was renewed since the pass
// read it (then the item may be in use: a later pass decides again).
func (s *Store) collect(it gcItem, seen store.Lease, reason string) (bool, error) {
	var upload uint64
	removed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, _, err := getLease(tx.Bucket(bucketLeases), leaseKey(it.Owner, it.Record))
		if err != nil {
			return err
		}
		if cur.Renewed != seen.Renewed && reason != store.Superseded {
			return nil
		}
		if it.key != nil {
			if tx.Bucket(bucketManifest).Get(it.key) == nil {
				return nil
			}
			removed = true
			return tx.Bucket(bucketManifest).Delete(it.key)
		}
		v := tx.Bucket(bucketShares).Get(it.Share[:])
		if v == nil {
			return nil
		}
		var m store.ShareMeta
		if err := consent.Unmarshal(v, &m); err != nil {
			return err
		}
		upload = m.Upload
		// Mark the chunks for clean-up first, so a crash cannot orphan them.
		if err := tx.Bucket(bucketUploads).Put(u64(m.Upload), nil); err != nil {
			return err
		}
		removed = true
		return tx.Bucket(bucketShares).Delete(it.Share[:])
	})
	if err != nil || !removed {
		return false, err
	}
	if it.key != nil {
		s.settle(it.Owner, 0, 0, store.OwnerUsage{Manifests: -1, ManifestBytes: -it.size})
		return true, nil
	}
	s.settle(it.Owner, 0, 0, store.OwnerUsage{Shares: -1, ShareBytes: -it.size})
	return true, s.dropUpload(upload)
}

// OpenReadOnly opens the store file at path read-only, for a dry-run
// collection (Collect) of a stopped peer: no migration, no clean-up, no
// writes. It fails with ErrLocked when a running peer holds the file.
func OpenReadOnly(path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketShares) == nil || tx.Bucket(bucketManifest) == nil {
			return fmt.Errorf("open %s: not a peer's store", path)
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, dir: filepath.Dir(path), usage: map[consent.ID]*use{}}, nil
}
