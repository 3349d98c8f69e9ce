package consent

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Ledger is a View kept in step with a Store: what a wallet or a peer holds.
// The view's entries are the store's: the Ledger stores what its view
// accepts right after it accepts it, and the view reads entries back from
// the store on demand. It is safe for concurrent use.
type Ledger struct {
	mu    sync.Mutex
	store Store
	view  *View
	st    stateMark // the view state saved beside the entries (state.go)
}

// OpenLedger loads every stored entry and checks that each feed chains
// (seq, previous hash, time) with no gap. It does not check signatures
// again: a Store holds only entries that a Ledger verified before storing
// them (Append, Ingest, IngestBatch), and it is the replica's own disk.
// VerifyStore re-checks every signature, for an operator who doubts that
// disk. A gap means the store was damaged, and is an error.
//
// A store that keeps a view state (StateStore) spares all that: when the
// state it holds describes its current entries, the view is restored from
// it and no entry is read. Otherwise the view is rebuilt from the entries
// and its state saved for the next open (state.go).
func OpenLedger(s Store) (*Ledger, error) {
	if l := openFromState(s); l != nil {
		return l, nil
	}
	l := &Ledger{store: s, view: newView(s)}
	add := func(e *Entry, h Hash) error {
		acc, err := l.view.ingestVerified(e, h)
		l.view.stored(acc) // read from s: they are in it
		if err != nil && !errors.Is(err, ErrEquivocation) {
			return err
		}
		return nil
	}
	var err error
	if rs, ok := s.(RawScanner); ok {
		// Hash the stored bytes: DecodeEntry accepts canonical encodings
		// only, so they are what e.Encode() would give.
		err = rs.ScanRaw(func(b []byte) error {
			e, err := DecodeEntry(bytes.Clone(b))
			if err != nil {
				return fmt.Errorf("stored entry: %w", err)
			}
			return add(e, HashBytes(b))
		})
	} else {
		err = s.Scan(func(e *Entry) error { return add(e, e.Hash()) })
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if n := l.view.Pending(); n > 0 {
		return nil, fmt.Errorf("open ledger: %w: %d stored entries do not chain", ErrGap, n)
	}
	_ = l.saveState() // a cache: failing to save it changes nothing
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
	acc, err := l.view.Ingest(e)
	l.view.stored(acc)
	l.noteIngest(err)
	if err != nil {
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
	l.noteIngest(err)
	for i, a := range acc {
		if perr := l.store.Put(a); perr != nil {
			l.view.stored(acc[:i])
			return acc, perr
		}
	}
	l.view.stored(acc)
	return acc, err
}

// IngestBatch is Ingest of every entry of es, in order, with the same
// outcome, but cheaper: the signatures are checked together (VerifyBatch:
// batch verification on every core; an entry that passed VerifyEntry or
// VerifyBatch lately is not checked again) and the entries that joined a
// feed are stored in one transaction (Store.PutBatch). It returns those
// entries in the order they joined. When an entry is refused (what Ingest
// would have returned for it: a bad signature, an *EquivocationError,
// ErrTooManyPending...) the others are still ingested, and the error is a
// *BatchError naming each refusal; errors.Is and errors.As see through it.
func (l *Ledger) IngestBatch(es []*Entry) ([]*Entry, error) {
	if len(es) == 0 {
		return nil, nil
	}
	verrs, hashes := verifyEntries(es, true) // outside the lock: the slow part
	l.mu.Lock()
	defer l.mu.Unlock()
	var acc []*Entry
	var berr *BatchError
	fail := func(i int, err error) {
		if berr == nil {
			berr = &BatchError{Errs: make([]error, len(es))}
		}
		berr.Errs[i] = err
	}
	for i, e := range es {
		if verrs[i] != nil {
			fail(i, verrs[i])
			continue
		}
		a, err := l.view.ingestVerified(e, hashes[i])
		l.noteIngest(err)
		acc = append(acc, a...)
		if err != nil {
			fail(i, err)
		}
	}
	if len(acc) > 0 {
		if err := l.store.PutBatch(acc); err != nil {
			if berr == nil {
				berr = &BatchError{}
			}
			berr.Store = err
		} else {
			l.view.stored(acc)
		}
	}
	if berr != nil {
		return acc, berr
	}
	return acc, nil
}

// BatchError reports what IngestBatch refused.
type BatchError struct {
	// Errs[i] is the error Ingest would have returned for the batch's entry
	// i, nil when that entry was fine. Errs is nil when only the store
	// failed.
	Errs []error
	// Store is the store's error: the entries that joined a feed are in
	// the view but were not stored.
	Store error
}

func (e *BatchError) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	switch {
	case e.Store != nil && n == 0:
		return fmt.Sprintf("ledger batch: store failed: %v", e.Store)
	case e.Store != nil:
		return fmt.Sprintf("ledger batch: store failed: %v; and %d of %d entries refused, first: %v", e.Store, n, len(e.Errs), first)
	}
	return fmt.Sprintf("ledger batch: %d of %d entries refused, first: %v", n, len(e.Errs), first)
}

// Unwrap returns the store's error and every entry's error.
func (e *BatchError) Unwrap() []error {
	var out []error
	if e.Store != nil {
		out = append(out, e.Store)
	}
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// View runs fn with the ledger's view; fn must not keep it.
func (l *Ledger) View(fn func(v *View)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.view)
}

// Scan calls fn with every accepted entry, by author then seq, streamed
// from the store, and stops at the first error fn returns. It holds the
// ledger's lock: fn must not call the Ledger.
func (l *Ledger) Scan(fn func(*Entry) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.view.Authors() {
		if err := l.view.FeedFrom(a, 1, fn); err != nil {
			return err
		}
	}
	return nil
}

// Entries returns every accepted entry, by author then seq. It reads the
// whole ledger into memory: for tests and small ledgers; Scan streams.
func (l *Ledger) Entries() []*Entry {
	var out []*Entry
	_ = l.Scan(func(e *Entry) error { out = append(out, e); return nil })
	return out
}

// Close saves the view state when it changed (SaveState; a failure only
// means that the next open reads every entry) and closes the store.
func (l *Ledger) Close() error {
	_ = l.SaveState()
	return l.store.Close()
}

// StoreReport is what VerifyStore found in a store.
type StoreReport struct {
	Entries  int     // entries read
	Feeds    int     // authors
	Bad      int     // entries that do not verify or do not chain
	Problems []error // the first MaxStoreProblems of them, in scan order
}

// MaxStoreProblems bounds StoreReport.Problems.
const MaxStoreProblems = 100

// OK reports whether every stored entry verified and chained.
func (r *StoreReport) OK() bool { return r.Bad == 0 }

// verifyChunk is how many entries VerifyStore holds at once.
const verifyChunk = 4096

// VerifyStore re-checks every entry of s: its fields, body and signature
// (VerifyBatch, on every core), and its place in its author's feed
// (numbered 1, 2, 3..., chained, time never going back). It is the only
// full re-verification: OpenLedger trusts the signatures of its own store.
// Memory stays bounded: entries are read and checked in chunks. The error
// is the store's; what does not verify is in the report.
func VerifyStore(s Store) (*StoreReport, error) {
	rep := &StoreReport{}
	var (
		chunk  []*Entry
		author ID
		head   Head
	)
	problem := func(err error) {
		rep.Bad++
		if len(rep.Problems) < MaxStoreProblems {
			rep.Problems = append(rep.Problems, err)
		}
	}
	flush := func() {
		errs, hashes := verifyEntries(chunk, false)
		for i, e := range chunk {
			if e.Author != author || rep.Feeds == 0 {
				author, head = e.Author, Head{}
				rep.Feeds++
			}
			err := errs[i]
			if err == nil {
				err = checkLink(head, e)
			}
			if err != nil {
				problem(err)
			}
			// Go on from this entry, so one bad entry is one problem.
			head = Head{Seq: e.Seq, Hash: hashes[i], Time: e.Time}
		}
		rep.Entries += len(chunk)
		chunk = chunk[:0]
	}
	err := s.Scan(func(e *Entry) error {
		chunk = append(chunk, e)
		if len(chunk) == verifyChunk {
			flush()
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify ledger: %w", err)
	}
	flush()
	return rep, nil
}
