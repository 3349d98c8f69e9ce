package witness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
)

// File is the witness's database under a peer's data directory.
const File = "witness.db"

// ErrFull reports a new log beyond the store's limit.
var ErrFull = errors.New("witness store full")

// Record is what a witness keeps of one log: the checkpoint key (first
// seen, trusted on first use), the latest cosigned size and root, and that
// note with the log's signature and the witness's cosignature.
type Record struct {
	Key  []byte       `cbor:"1,keyasint"`
	Size uint64       `cbor:"2,keyasint"`
	Root consent.Hash `cbor:"3,keyasint"`
	Note []byte       `cbor:"4,keyasint"`
}

// Store keeps one Record per origin.
type Store interface {
	// Get returns the record of origin, or nil.
	Get(origin string) (*Record, error)
	// Put replaces or adds the record of origin; adding one when maxLogs
	// records are kept fails with ErrFull.
	Put(origin string, r *Record, maxLogs int) error
}

var (
	bucketLogs = []byte("logs")
	bucketMeta = []byte("meta")
	keyCount   = []byte("count")
)

// BoltStore is a Store in a bbolt file.
type BoltStore struct{ db *bolt.DB }

// OpenBolt opens or creates the store at path.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening the witness store: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLogs, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening the witness store: %w", err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// Get implements Store.
func (s *BoltStore) Get(origin string) (*Record, error) {
	var r *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLogs).Get([]byte(origin))
		if v == nil {
			return nil
		}
		r = new(Record)
		return consent.Unmarshal(v, r)
	})
	return r, err
}

// Put implements Store.
func (s *BoltStore) Put(origin string, r *Record, maxLogs int) error {
	v, err := consent.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		logs, meta := tx.Bucket(bucketLogs), tx.Bucket(bucketMeta)
		if logs.Get([]byte(origin)) == nil {
			var n uint64
			if c := meta.Get(keyCount); len(c) == 8 {
				n = binary.BigEndian.Uint64(c)
			}
			if n >= uint64(maxLogs) {
				return ErrFull
			}
			if err := meta.Put(keyCount, binary.BigEndian.AppendUint64(nil, n+1)); err != nil {
				return err
			}
		}
		return logs.Put([]byte(origin), v)
	})
}

// Logs returns the number of logs kept.
func (s *BoltStore) Logs() (int, error) {
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if c := tx.Bucket(bucketMeta).Get(keyCount); len(c) == 8 {
			n = binary.BigEndian.Uint64(c)
		}
		return nil
	})
	return int(n), err
}

// MemStore is a Store in memory (tests).
type MemStore struct {
	mu sync.Mutex
	m  map[string]*Record
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string]*Record{}} }

// Get implements Store.
func (s *MemStore) Get(origin string) (*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[origin]; ok {
		c := *r
		return &c, nil
	}
	return nil, nil
}

// Put implements Store.
func (s *MemStore) Put(origin string, r *Record, maxLogs int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[origin]; !ok && len(s.m) >= maxLogs {
		return ErrFull
	}
	c := *r
	s.m[origin] = &c
	return nil
}
