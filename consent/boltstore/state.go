package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/medwallet/medwallet/consent"
	bolt "go.etcd.io/bbolt"
)

// The view state (consent.StateStore): a cache beside the entries, so
// that opening a ledger reads what the entries imply rather than every
// entry. Bucket "meta" holds "generation", the number of entries stored
// (8 bytes, big-endian), raised by Put and PutBatch in the transaction
// that adds them. Bucket "state" holds "state" (the encoded view state),
// "generation" (the generation it describes) and "root" (the page of the
// entries bucket's root when it was saved: a write by a binary that does
// not keep the generation still moves the root, so the state is then
// ignored). Deleting the "state" bucket is always safe: the next open
// rebuilds it from the entries.

var (
	stateBucket = []byte("state")
	genKey      = []byte("generation")
	stateKey    = []byte("state")
	rootKey     = []byte("root")
)

var _ consent.StateStore = (*Store)(nil)

func getUint(b *bolt.Bucket, k []byte) (uint64, bool) {
	v := b.Get(k)
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

func putUint(b *bolt.Bucket, k []byte, n uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, n))
}

// addGeneration raises the generation by n, in the transaction that added
// n entries.
func addGeneration(tx *bolt.Tx, n int) error {
	if n == 0 {
		return nil
	}
	m := tx.Bucket(metaBucket)
	g, _ := getUint(m, genKey)
	return putUint(m, genKey, g+uint64(n))
}

// initGeneration gives a store from before the generation one: the
// number of entries it holds. It counts them again when the entries
// changed since the state was saved but the generation did not: a binary
// that does not keep the generation wrote to the store.
func initGeneration(tx *bolt.Tx) error {
	m := tx.Bucket(metaBucket)
	if g, ok := getUint(m, genKey); ok {
		sb := tx.Bucket(stateBucket)
		if sb == nil {
			return nil
		}
		sg, ok1 := getUint(sb, genKey)
		root, ok2 := getUint(sb, rootKey)
		if !ok1 || !ok2 || sg != g || root == uint64(tx.Bucket(entriesBucket).Root()) {
			return nil
		}
	}
	n := tx.Bucket(entriesBucket).Stats().KeyN
	return putUint(m, genKey, uint64(n))
}

// Generation implements consent.StateStore.
func (s *Store) Generation() (uint64, error) {
	var g uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		g, _ = getUint(tx.Bucket(metaBucket), genKey)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ledger generation: %w", err)
	}
	return g, nil
}

// LoadState returns a copy of the saved state and the generation it
// describes, whatever the store's generation now (b is nil when there is
// none). A state saved before the entries bucket last changed in a way
// the generation did not record is no state.
func (s *Store) LoadState() (uint64, []byte, error) {
	var (
		gen uint64
		b   []byte
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(stateBucket)
		if sb == nil {
			return nil
		}
		g, ok1 := getUint(sb, genKey)
		root, ok2 := getUint(sb, rootKey)
		v := sb.Get(stateKey)
		if !ok1 || !ok2 || v == nil || root != uint64(tx.Bucket(entriesBucket).Root()) {
			return nil
		}
		gen, b = g, bytes.Clone(v)
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("load ledger state: %w", err)
	}
	return gen, b, nil
}

// ReadState implements consent.StateStore: fn reads the state in place,
// inside a read transaction.
func (s *Store) ReadState(fn func(b []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(stateBucket)
		if sb == nil {
			return nil
		}
		g, ok1 := getUint(sb, genKey)
		root, ok2 := getUint(sb, rootKey)
		cur, ok3 := getUint(tx.Bucket(metaBucket), genKey)
		v := sb.Get(stateKey)
		if !ok1 || !ok2 || !ok3 || g != cur || v == nil || root != uint64(tx.Bucket(entriesBucket).Root()) {
			return nil
		}
		return fn(v)
	})
}

// SaveState implements consent.StateStore.
func (s *Store) SaveState(gen uint64, b []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		sb, err := tx.CreateBucketIfNotExists(stateBucket)
		if err != nil {
			return err
		}
		if err := sb.Put(stateKey, b); err != nil {
			return err
		}
		if err := putUint(sb, rootKey, uint64(tx.Bucket(entriesBucket).Root())); err != nil {
			return err
		}
		return putUint(sb, genKey, gen)
	})
	if err != nil {
		return fmt.Errorf("save ledger state: %w", err)
	}
	return nil
}

// DropState deletes the saved state, if any: the next open rebuilds it.
func (s *Store) DropState() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(stateBucket) == nil {
			return nil
		}
		return tx.DeleteBucket(stateBucket)
	})
	if err != nil {
		return fmt.Errorf("drop ledger state: %w", err)
	}
	return nil
}
