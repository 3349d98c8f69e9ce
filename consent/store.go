package consent

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Store errors.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a Put of an entry whose author and seq already
	// hold a different entry: stores are append-only.
	ErrConflict = errors.New("a different entry is stored at this author and seq")
	ErrClosed   = errors.New("store is closed")
)

// Store keeps accepted ledger entries. It does not verify them (View and
// Ledger do); it only refuses to overwrite. Implementations: MemStore here,
// boltstore.Store on disk. storetest.Run is the conformance suite.
type Store interface {
	// Put stores e under (e.Author, e.Seq). Storing the same entry again is
	// a no-op; a different entry at the same place is ErrConflict.
	Put(e *Entry) error
	// PutBatch stores every entry of es as Put would, in one transaction:
	// either all are stored or, when one of them is ErrConflict (with the
	// store or with another entry of es) or the store fails, none is.
	// Storing an entry that is already held is a no-op, as for Put.
	PutBatch(es []*Entry) error
	// Get returns the entry at (author, seq), or ErrNotFound.
	Get(author ID, seq uint64) (*Entry, error)
	// Scan calls fn for every entry, ordered by author then seq, and stops
	// at the first error fn returns.
	Scan(fn func(*Entry) error) error
	// ScanFeed calls fn for every entry of author whose seq is from or
	// more, in seq order, and stops at the first error fn returns. An
	// author with no such entry is not an error: fn is not called. It is
	// how a View reads a feed: fn may run inside a read transaction, so it
	// must not write to the store.
	ScanFeed(author ID, from uint64, fn func(*Entry) error) error
	// Close releases the store.
	Close() error
}

// RawScanner is implemented by stores that can hand over the stored
// encodings themselves: OpenLedger then hashes those bytes rather than
// encoding every entry again. fn must not keep b.
type RawScanner interface {
	// ScanRaw calls fn with the encoding of every entry, in Scan's order,
	// and stops at the first error fn returns.
	ScanRaw(fn func(b []byte) error) error
}

// MemStore is a Store in memory, for tests and for auditing exported files.
// It holds each entry's encoding, by author then seq.
type MemStore struct {
	mu     sync.Mutex
	m      map[authorSeq][]byte
	last   map[ID]uint64 // highest seq held, per author
	closed bool
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{m: make(map[authorSeq][]byte), last: make(map[ID]uint64)}
}

func (s *MemStore) set(k authorSeq, b []byte) {
	s.m[k] = b
	if k.seq > s.last[k.author] {
		s.last[k.author] = k.seq
	}
}

// Put implements Store.
func (s *MemStore) Put(e *Entry) error {
	b := e.Encode()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	k := authorSeq{e.Author, e.Seq}
	if old, ok := s.m[k]; ok {
		if bytes.Equal(old, b) {
			return nil
		}
		return fmt.Errorf("put %s#%d: %w", e.Author.Short(), e.Seq, ErrConflict)
	}
	s.set(k, b)
	return nil
}

// PutBatch implements Store.
func (s *MemStore) PutBatch(es []*Entry) error {
	enc := make([][]byte, len(es))
	for i, e := range es {
		enc[i] = e.Encode()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	add := make(map[authorSeq][]byte, len(es))
	for i, e := range es {
		k := authorSeq{e.Author, e.Seq}
		old, ok := s.m[k]
		if !ok {
			old, ok = add[k]
		}
		if ok {
			if bytes.Equal(old, enc[i]) {
				continue
			}
			return fmt.Errorf("put %s#%d: %w", e.Author.Short(), e.Seq, ErrConflict)
		}
		add[k] = enc[i]
	}
	for k, b := range add {
		s.set(k, b)
	}
	return nil
}

// Get implements Store.
func (s *MemStore) Get(author ID, seq uint64) (*Entry, error) {
	s.mu.Lock()
	b, ok := s.m[authorSeq{author, seq}]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if !ok {
		return nil, fmt.Errorf("get %s#%d: %w", author.Short(), seq, ErrNotFound)
	}
	return DecodeEntry(b)
}

// Scan implements Store.
func (s *MemStore) Scan(fn func(*Entry) error) error {
	return s.ScanRaw(func(b []byte) error {
		e, err := DecodeEntry(b)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// ScanFeed implements Store.
func (s *MemStore) ScanFeed(author ID, from uint64, fn func(*Entry) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	last := s.last[author]
	s.mu.Unlock()
	for seq := from; seq <= last; seq++ {
		s.mu.Lock()
		b, ok := s.m[authorSeq{author, seq}]
		s.mu.Unlock()
		if !ok {
			continue
		}
		e, err := DecodeEntry(b)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		if seq == last {
			break // and no wrap-around at the largest seq
		}
	}
	return nil
}

// ScanRaw implements RawScanner.
func (s *MemStore) ScanRaw(fn func(b []byte) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	keys := make([]authorSeq, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	vals := make(map[authorSeq][]byte, len(keys))
	for _, k := range keys {
		vals[k] = s.m[k]
	}
	s.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.author < b.author || a.author == b.author && a.seq < b.seq
	})
	for _, k := range keys {
		if err := fn(vals[k]); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store.
func (s *MemStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
