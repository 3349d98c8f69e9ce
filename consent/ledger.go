package consent

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Ledger is a View kept in step with a Store: what a wallet or a peer holds.
// It is safe for concurrent use.
type Ledger struct {
	mu    sync.Mutex
	store Store
	view  *View
}

// OpenLedger loads and verifies every stored entry. A stored entry that
// does not verify, or a gap, means the store was tampered with or damaged,
// and is an error.
func OpenLedger(s Store) (*Ledger, error) {
	l := &Ledger{store: s, view: NewView()}
	err := s.Scan(func(e *Entry) error {
		if _, err := l.view.Ingest(e); err != nil && !errors.Is(err, ErrEquivocation) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if n := l.view.Pending(); n > 0 {
		return nil, fmt.Errorf("open ledger: %w: %d stored entries do not chain", ErrGap, n)
	}
	return l, nil
}

// Append signs a new entry of kind with body at the head of the signer's
// feed, stores it and adds it to the view.
func (l *Ledger) Append(s Signer, t time.Time, kind Kind, body any) (*Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, err := NewEntry(s, l.view.Head(s.ID()), t, kind, body)
	if err != nil {
		return nil, err
	}
	if err := l.store.Put(e); err != nil {
		return nil, err
	}
	if _, err := l.view.Ingest(e); err != nil {
		return nil, err
	}
	return e, nil
}

// Ingest verifies an entry received from elsewhere, adds it to the view and
// stores every entry that joined a feed as a result.
func (l *Ledger) Ingest(e *Entry) ([]*Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acc, err := l.view.Ingest(e)
	for _, a := range acc {
		if perr := l.store.Put(a); perr != nil {
			return acc, perr
		}
	}
	return acc, err
}

// View runs fn with the ledger's view; fn must not keep it.
func (l *Ledger) View(fn func(v *View)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.view)
}

// Entries returns every accepted entry, by author then seq.
func (l *Ledger) Entries() []*Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Entry
	for _, a := range l.view.Authors() {
		out = append(out, l.view.Feed(a)...)
	}
	return out
}

// Close closes the store.
func (l *Ledger) Close() error { return l.store.Close() }
