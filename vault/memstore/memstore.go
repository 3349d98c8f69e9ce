// Package memstore is an in-memory vault.ShareStore for tests, with hooks
// to damage shares the way a disk or a peer might.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/medwallet/medwallet/vault"
)

// Store keeps shares in memory. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	shares map[vault.ShareID][]byte
}

// New returns an empty store.
func New() *Store { return &Store{shares: map[vault.ShareID][]byte{}} }

var _ vault.ShareStore = (*Store)(nil)

// Put implements vault.ShareStore.
func (s *Store) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	var buf bytes.Buffer
	h := vault.ShareHasher()
	if _, err := io.Copy(io.MultiWriter(&buf, h), vault.ContextReader(ctx, r)); err != nil {
		return vault.ShareID{}, err
	}
	id := h.ID()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.shares[id]; !ok {
		s.shares[id] = buf.Bytes()
	}
	return id, nil
}

// Get implements vault.ShareStore.
func (s *Store) Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.shares[id]
	if !ok {
		return nil, fmt.Errorf("memstore: %w", vault.ErrNotFound)
	}
	// Stored slices are never modified in place (Replace stores a copy).
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Has implements vault.ShareStore.
func (s *Store) Has(ctx context.Context, id vault.ShareID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.shares[id]
	return ok, nil
}

// Delete implements vault.ShareStore.
func (s *Store) Delete(ctx context.Context, id vault.ShareID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.shares, id)
	return nil
}

// Len returns the number of shares stored.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shares)
}

// Bytes returns a copy of a stored share, or nil.
func (s *Store) Bytes(id vault.ShareID) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.shares[id])
}

// Replace stores b under id regardless of its content address: a test hook
// for corrupt, truncated, swapped or foreign shares.
func (s *Store) Replace(id vault.ShareID, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shares[id] = bytes.Clone(b)
}
