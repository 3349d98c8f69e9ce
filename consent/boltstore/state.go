package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/medwallet/medwallet/consent"
	bolt "go.etcd.io/bbolt"
)

// The view state (consent.StateStore): a cache beside the entries, so
// that opening a ledger reads what the entries imply rather than every
// entry. Bucket "meta" holds "generation", the number of entries stored
// (8 bytes, big-endian), raised by Put and PutBatch in the transaction
// that adds them. Bucket "state" holds "generation" (the generation the
// saved state describes) and "root" (the page of the entries bucket's
// root when it was saved: a write by a binary that does not keep the
// generation still moves the root, so the state is then ignored), and one
// nested bucket per table of the state (consent names them: "t.core",
// "t.g", ...), each a sorted map of keys to values. A state being saved
// has no "generation" until its last transaction commits. Deleting the
// "state" bucket is always safe: the next open rebuilds it from the
// entries. A "state" key in the bucket is the single-value state of
// earlier releases; it is ignored, and deleted by the next full save.

var (
	stateBucket = []byte("state")
	genKey      = []byte("generation")
	oldStateKey = []byte("state")
	rootKey     = []byte("root")
)

// tablePrefix starts the name of a table's bucket inside "state".
const tablePrefix = "t."

// saveTxBytes bounds what one transaction of SaveState writes before it
// commits and another begins: bbolt keeps every value put until commit,
// so a full save of a large state holds at most about this much.
const saveTxBytes = 4 << 20

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

// savedGen returns the generation the saved state describes, if there is
// a saved state and the entries bucket did not change since in a way the
// generation did not record.
func savedGen(tx *bolt.Tx) (uint64, bool) {
	sb := tx.Bucket(stateBucket)
	if sb == nil {
		return 0, false
	}
	g, ok1 := getUint(sb, genKey)
	root, ok2 := getUint(sb, rootKey)
	if !ok1 || !ok2 || root != uint64(tx.Bucket(entriesBucket).Root()) {
		return 0, false
	}
	return g, true
}

// StateGeneration implements consent.StateStore.
func (s *Store) StateGeneration() (uint64, bool, error) {
	var (
		g  uint64
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		g, ok = savedGen(tx)
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("ledger state: %w", err)
	}
	return g, ok, nil
}

func table(tx *bolt.Tx, name string) *bolt.Bucket {
	sb := tx.Bucket(stateBucket)
	if sb == nil {
		return nil
	}
	return sb.Bucket([]byte(tablePrefix + name))
}

// StateGet implements consent.StateStore: fn reads the value in place,
// inside a read transaction.
func (s *Store) StateGet(name string, key []byte, fn func(v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		var v []byte
		if t := table(tx, name); t != nil {
			v = t.Get(key)
		}
		return fn(v)
	})
}

// StateScan implements consent.StateStore: fn reads the pairs in place,
// inside a read transaction.
func (s *Store) StateScan(name string, prefix, after []byte, desc bool, fn func(k, v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		t := table(tx, name)
		if t == nil {
			return nil
		}
		c := t.Cursor()
		var k, v []byte
		switch {
		case !desc && after != nil:
			if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		case !desc:
			k, v = c.Seek(prefix)
		default:
			// Descending: from the last key below after, or with the prefix.
			end := after
			if end == nil {
				end = prefixEnd(prefix)
			}
			if end == nil {
				k, v = c.Last()
			} else if k, _ = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = step(c, desc) {
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func step(c *bolt.Cursor, desc bool) ([]byte, []byte) {
	if desc {
		return c.Prev()
	}
	return c.Next()
}

// prefixEnd is the smallest key greater than every key with prefix p, nil
// when there is none (p is empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// SaveState implements consent.StateStore. The first transaction
// withdraws the saved state's generation (and, for a full save, deletes
// every table); puts are committed about every saveTxBytes; the last
// transaction records gen and the entries bucket's root. A save that
// fails half-way leaves no state, which the next open rebuilds.
func (s *Store) SaveState(gen uint64, reset bool, fn func(put consent.StatePut) error) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("save ledger state: %w", err)
	}
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	sb, err := tx.CreateBucketIfNotExists(stateBucket)
	if err == nil {
		err = sb.Delete(genKey)
	}
	if err == nil && reset {
		err = dropTables(sb)
	}
	if err != nil {
		return fmt.Errorf("save ledger state: %w", err)
	}
	written := 0
	var (
		tname string
		t     *bolt.Bucket
	)
	put := func(name string, k, v []byte) error {
		if written >= saveTxBytes {
			if err := tx.Commit(); err != nil {
				tx = nil
				return err
			}
			if tx, err = s.db.Begin(true); err != nil {
				tx = nil
				return err
			}
			written, t = 0, nil
		}
		if t == nil || name != tname {
			var err error
			if t, err = tx.Bucket(stateBucket).CreateBucketIfNotExists([]byte(tablePrefix + name)); err != nil {
				return err
			}
			// Tables are written in key order: full pages split less.
			t.FillPercent, tname = 0.9, name
		}
		written += len(k) + len(v) + 64
		if v == nil {
			return t.Delete(k)
		}
		return t.Put(k, v)
	}
	if err := fn(put); err != nil {
		return fmt.Errorf("save ledger state: %w", err)
	}
	if tx == nil {
		return errors.New("save ledger state: transaction lost")
	}
	sb = tx.Bucket(stateBucket)
	if err := putUint(sb, rootKey, uint64(tx.Bucket(entriesBucket).Root())); err != nil {
		return fmt.Errorf("save ledger state: %w", err)
	}
	if err := putUint(sb, genKey, gen); err != nil {
		return fmt.Errorf("save ledger state: %w", err)
	}
	err = tx.Commit()
	tx = nil
	if err != nil {
		return fmt.Errorf("save ledger state: %w", err)
	}
	return nil
}

// dropTables deletes every table of the state, and the single-value state
// of earlier releases.
func dropTables(sb *bolt.Bucket) error {
	var names [][]byte
	err := sb.ForEachBucket(func(k []byte) error {
		if bytes.HasPrefix(k, []byte(tablePrefix)) {
			names = append(names, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range names {
		if err := sb.DeleteBucket(k); err != nil {
			return err
		}
	}
	return sb.Delete(oldStateKey)
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
