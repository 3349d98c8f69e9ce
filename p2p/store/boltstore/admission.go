package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/store"
)

// Admission: the store counts what every owner keeps (bytes and objects,
// committed and in flight) in memory, from a scan of the file at Open and
// then from every put and delete, and checks each put against its
// store.Limits. A share's bytes are counted as they arrive, so a put that
// would take its owner over the quota fails at the chunk that crosses it,
// and like every failed put leaves nothing on disk.

// use is one owner's usage: what is committed, and what puts in flight
// have reserved.
type use struct {
	store.OwnerUsage
	pendingBytes   int64
	pendingObjects int
}

// SetLimits sets the admission limits (the zero Limits, Open's default,
// admits everything).
func (s *Store) SetLimits(l store.Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
	s.rate = store.NewRateLimiter(l.PutRate, l.PutBurst, nil)
}

// Limits returns the admission limits.
func (s *Store) Limits() store.Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

func (s *Store) owner(id consent.ID) *use {
	u := s.usage[id]
	if u == nil {
		u = &use{OwnerUsage: store.OwnerUsage{Owner: id}}
		s.usage[id] = u
	}
	return u
}

// forget drops an owner that keeps nothing, so strangers cost no memory.
func (s *Store) forget(id consent.ID) {
	if u := s.usage[id]; u != nil && u.Objects() == 0 && u.pendingObjects == 0 && u.pendingBytes == 0 {
		delete(s.usage, id)
	}
}

// AdmitShare is asked before a share put reads any byte: it checks the
// policy, takes a token from the owner's put rate, and refuses when the
// disk is at its watermark or the owner's quota is already used up. The
// errors wrap store.ErrNotAllowed, ErrPutRate, ErrStorageFull and ErrQuota.
func (s *Store) AdmitShare(owner consent.ID) error {
	l, rl := s.limitsAndRate()
	if !l.Allowed(owner) {
		return store.ErrNotAllowed
	}
	if !rl.Take(owner) {
		return store.ErrPutRate
	}
	if err := s.checkFree(l, 0); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usage[owner]
	if u == nil {
		return nil
	}
	if l.OwnerBytes > 0 && u.Bytes()+u.pendingBytes >= l.OwnerBytes ||
		l.OwnerObjects > 0 && u.Objects()+u.pendingObjects >= l.OwnerObjects {
		return s.quotaErr(l, u)
	}
	return nil
}

func (s *Store) limitsAndRate() (store.Limits, *store.RateLimiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits, s.rate
}

func (s *Store) quotaErr(l store.Limits, u *use) error {
	return fmt.Errorf("%w (%d of %d bytes, %d of %d objects)", store.ErrQuota,
		u.Bytes()+u.pendingBytes, l.OwnerBytes, u.Objects()+u.pendingObjects, l.OwnerObjects)
}

// checkFree refuses when writing n more bytes would take the data
// directory's free space below the watermark. An unknown free space (an
// OS without statfs) does not refuse.
func (s *Store) checkFree(l store.Limits, n int64) error {
	if l.MinFree <= 0 {
		return nil
	}
	free, err := s.free(l)
	if err != nil {
		return nil
	}
	if free-n < l.MinFree {
		return fmt.Errorf("%w (%d MiB free, the peer keeps %d MiB for its log)", store.ErrStorageFull, free>>20, l.MinFree>>20)
	}
	return nil
}

func (s *Store) free(l store.Limits) (int64, error) {
	if l.FreeSpace != nil {
		return l.FreeSpace()
	}
	return FreeSpace(s.dir)
}

// reserveObject reserves one object of owner's quota for a put in flight.
func (s *Store) reserveObject(l store.Limits, owner consent.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.owner(owner)
	if l.OwnerObjects > 0 && u.Objects()+u.pendingObjects+1 > l.OwnerObjects {
		err := s.quotaErr(l, u)
		s.forget(owner)
		return err
	}
	u.pendingObjects++
	return nil
}

// reserveBytes reserves n more bytes of owner's quota.
func (s *Store) reserveBytes(l store.Limits, owner consent.ID, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.owner(owner)
	if l.OwnerBytes > 0 && u.Bytes()+u.pendingBytes+n > l.OwnerBytes {
		return s.quotaErr(l, u)
	}
	u.pendingBytes += n
	return nil
}

// settle releases a put's reservation and adds what it committed.
func (s *Store) settle(owner consent.ID, reservedBytes int64, reservedObjects int, add store.OwnerUsage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.owner(owner)
	u.pendingBytes -= reservedBytes
	u.pendingObjects -= reservedObjects
	u.Shares += add.Shares
	u.ShareBytes += add.ShareBytes
	u.Manifests += add.Manifests
	u.ManifestBytes += add.ManifestBytes
	s.forget(owner)
	s.changes++
}

// loadUsage counts every owner's shares and manifests in the file.
func loadUsage(tx *bolt.Tx) (map[consent.ID]*use, error) {
	out := map[consent.ID]*use{}
	get := func(id consent.ID) *use {
		u := out[id]
		if u == nil {
			u = &use{OwnerUsage: store.OwnerUsage{Owner: id}}
			out[id] = u
		}
		return u
	}
	err := tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
		var m store.ShareMeta
		if err := consent.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("share %x: damaged metadata: %w", k, err)
		}
		u := get(m.Owner)
		u.Shares++
		u.ShareBytes += m.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketManifest).ForEach(func(k, v []byte) error {
		owner, _, _ := bytes.Cut(k, []byte{0})
		u := get(consent.ID(owner))
		u.Manifests++
		u.ManifestBytes += int64(len(v))
		return nil
	})
	return out, err
}

// Usage returns what every owner keeps here, with the limits and the free
// disk.
func (s *Store) Usage() store.Usage {
	s.mu.Lock()
	owners := make([]store.OwnerUsage, 0, len(s.usage))
	for _, u := range s.usage {
		if u.Objects() > 0 {
			owners = append(owners, u.OwnerUsage)
		}
	}
	l := s.limits
	s.mu.Unlock()
	u := store.NewUsage(owners, l)
	u.Time = time.Now().UTC().Truncate(time.Second)
	u.Source = "database"
	if f, err := s.free(l); err == nil {
		u.Free = f
	}
	return u
}

// UsageFile is the usage snapshot a running peer keeps in its data
// directory (its bbolt file is locked while it runs).
const UsageFile = "usage.json"

// WriteUsage writes the usage snapshot to path atomically if anything
// changed since the last write (or force).
func (s *Store) WriteUsage(path string, force bool) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.mu.Lock()
	n := s.changes
	s.mu.Unlock()
	if !force && n == s.written && s.wroteOnce {
		return nil
	}
	u := s.Usage()
	u.Source = "snapshot"
	b, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("usage snapshot: %w", err)
	}
	s.written, s.wroteOnce = n, true
	return nil
}

// SnapshotUsage rewrites the usage snapshot at path every interval while
// ctx lasts when anything changed (and every 12 intervals regardless, for
// the free disk), and once more when ctx ends.
func (s *Store) SnapshotUsage(ctx context.Context, path string, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	if err := s.WriteUsage(path, true); err != nil {
		return err
	}
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return s.WriteUsage(path, true)
		case <-t.C:
			if err := s.WriteUsage(path, i%12 == 0); err != nil {
				return err
			}
		}
	}
}

// ErrLocked reports a store file that a running peer holds.
var ErrLocked = errors.New("the peer is running and holds the database")

// ReadUsage reads the usage of the store file at path without changing it.
// It fails with ErrLocked when a running peer holds the file; read the
// peer's usage snapshot (ReadUsageSnapshot) then.
func ReadUsage(path string) (store.Usage, error) {
	if _, err := os.Stat(path); err != nil {
		return store.Usage{}, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		return store.Usage{}, ErrLocked
	}
	if err != nil {
		return store.Usage{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var m map[consent.ID]*use
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketShares) == nil || tx.Bucket(bucketManifest) == nil {
			m = map[consent.ID]*use{}
			return nil
		}
		var err error
		m, err = loadUsage(tx)
		return err
	})
	if err != nil {
		return store.Usage{}, err
	}
	owners := make([]store.OwnerUsage, 0, len(m))
	for _, u := range m {
		owners = append(owners, u.OwnerUsage)
	}
	u := store.NewUsage(owners, store.Limits{})
	u.Time = time.Now().UTC().Truncate(time.Second)
	u.Source = "database"
	u.Policy = ""
	if f, err := FreeSpace(filepath.Dir(path)); err == nil {
		u.Free = f
	}
	return u, nil
}

// ReadUsageSnapshot reads a usage snapshot written by WriteUsage.
func ReadUsageSnapshot(path string) (store.Usage, error) {
	var u store.Usage
	b, err := os.ReadFile(path)
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return u, fmt.Errorf("usage snapshot %s: %w", path, err)
	}
	return u, nil
}

// Holds reports whether owner keeps at least one share or manifest here
// (the peer serves owner's ledger then: p2p/peer).
func (s *Store) Holds(owner consent.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usage[owner]
	return u != nil && u.Objects() > 0
}
