// Package boltstore is the on-disk consent.Store, in a bbolt file.
//
// Layout: bucket "entries" maps author ID bytes, a 0x00 byte and the seq as
// 8 big-endian bytes to the entry's canonical encoding, so that bbolt's
// byte order is the Store's scan order (author, then seq). Bucket "meta"
// holds "version" = "1" and "generation", the number of entries stored;
// bucket "state" holds a cache of the view state (state.go).
package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/medwallet/medwallet/consent"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	entriesBucket = []byte("entries")
	metaBucket    = []byte("meta")
	version       = []byte("1")
)

// Store is a consent.Store in a bbolt database file.
type Store struct {
	db *bolt.DB
}

var (
	_ consent.Store      = (*Store)(nil)
	_ consent.RawScanner = (*Store)(nil)
)

// Open opens or creates the ledger database at path (mode 0600). It waits
// at most a second for another process holding the file.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open ledger %s: another medwallet process holds it", path)
		}
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		if v := m.Get([]byte("version")); v == nil {
			if err := m.Put([]byte("version"), version); err != nil {
				return err
			}
		} else if !bytes.Equal(v, version) {
			return fmt.Errorf("ledger format version %q is not supported (want %q)", v, version)
		}
		if _, err = tx.CreateBucketIfNotExists(entriesBucket); err != nil {
			return err
		}
		return initGeneration(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

func key(author consent.ID, seq uint64) []byte {
	k := make([]byte, 0, len(author)+9)
	k = append(k, author...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// Put implements consent.Store.
func (s *Store) Put(e *consent.Entry) error {
	b := e.Encode()
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(entriesBucket)
		k := key(e.Author, e.Seq)
		if old := bk.Get(k); old != nil {
			if bytes.Equal(old, b) {
				return nil
			}
			return consent.ErrConflict
		}
		if err := bk.Put(k, b); err != nil {
			return err
		}
		return addGeneration(tx, 1)
	})
	if err != nil {
		return fmt.Errorf("put %s#%d: %w", e.Author.Short(), e.Seq, err)
	}
	return nil
}

// PutBatch implements consent.Store: one bbolt transaction, so one fsync
// for the whole batch.
func (s *Store) PutBatch(es []*consent.Entry) error {
	if len(es) == 0 {
		return nil
	}
	enc := make([][]byte, len(es))
	for i, e := range es {
		enc[i] = e.Encode()
	}
	var bad *consent.Entry
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(entriesBucket)
		added := 0
		for i, e := range es {
			k := key(e.Author, e.Seq)
			if old := bk.Get(k); old != nil {
				if bytes.Equal(old, enc[i]) {
					continue
				}
				bad = e
				return consent.ErrConflict
			}
			if err := bk.Put(k, enc[i]); err != nil {
				bad = e
				return err
			}
			added++
		}
		return addGeneration(tx, added)
	})
	if err != nil {
		if bad != nil {
			return fmt.Errorf("put %s#%d: %w", bad.Author.Short(), bad.Seq, err)
		}
		return fmt.Errorf("put %d entries: %w", len(es), err)
	}
	return nil
}

// Get implements consent.Store.
func (s *Store) Get(author consent.ID, seq uint64) (*consent.Entry, error) {
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(entriesBucket).Get(key(author, seq)); v != nil {
			b = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("get %s#%d: %w", author.Short(), seq, consent.ErrNotFound)
	}
	return consent.DecodeEntry(b)
}

// Scan implements consent.Store. fn runs inside a read transaction and
// must not write to the store.
func (s *Store) Scan(fn func(*consent.Entry) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(entriesBucket).ForEach(func(k, v []byte) error {
			e, err := consent.DecodeEntry(bytes.Clone(v))
			if err != nil {
				return fmt.Errorf("stored entry %x: %w", k[len(k)-8:], err)
			}
			if !bytes.Equal(key(e.Author, e.Seq), k) {
				return fmt.Errorf("stored entry %s#%d is filed under another key", e.Author.Short(), e.Seq)
			}
			return fn(e)
		})
	})
}

// ScanFeed implements consent.Store: a cursor seeks to (author, from) and
// walks author's keys. fn runs inside a read transaction and must not write
// to the store.
func (s *Store) ScanFeed(author consent.ID, from uint64, fn func(*consent.Entry) error) error {
	prefix := key(author, 0)[:len(author)+1]
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(entriesBucket).Cursor()
		for k, v := c.Seek(key(author, from)); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
			e, err := consent.DecodeEntry(bytes.Clone(v))
			if err != nil {
				return fmt.Errorf("stored entry %x: %w", k[len(k)-8:], err)
			}
			if e.Author != author || e.Seq != binary.BigEndian.Uint64(k[len(prefix):]) {
				return fmt.Errorf("stored entry %s#%d is filed under another key", e.Author.Short(), e.Seq)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ScanRaw implements consent.RawScanner. fn runs inside a read
// transaction, must not write to the store, and must not keep b.
func (s *Store) ScanRaw(fn func(b []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(entriesBucket).ForEach(func(_, v []byte) error { return fn(v) })
	})
}

// Close implements consent.Store.
func (s *Store) Close() error { return s.db.Close() }

// Verify opens the ledger at path, re-checks every stored entry with
// consent.VerifyStore and closes it: what a peer started with
// --verify-ledger does before it opens its ledger.
func Verify(path string) (*consent.StoreReport, error) {
	s, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return consent.VerifyStore(s)
}
