package wallet

// The local ledger: opening it, anchoring records on the wallet's feed
// (AnchorRecord), and moving entries in and out (LedgerEntries,
// ExportLedger, ImportLedger).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
)

// The consent ledger lives in HOME/ledger.db (consent/boltstore): the
// wallet's own feed (identity, record anchors, grants, revocations) and the
// entries of other feeds it has received. Every entry was verified when it
// came in; opening the ledger checks the chains, not the signatures again
// (`medwallet ledger verify` and `audit verify` re-check those).
const ledgerFile = "ledger.db"

func (w *Wallet) ledgerPath() string { return filepath.Join(w.cfg.Home, ledgerFile) }

// openLedger opens the local ledger. When forWriting, it also makes sure the
// wallet's own feed starts with its identity entry (written on first use),
// and returns the signer for further entries. The caller closes what it
// returns; while a use case holds the ledger (holdLedger), that only ends
// the step's use of the one Ledger the use case's steps share.
func (w *Wallet) openLedger(forWriting bool) (*ledgerRef, consent.Signer, error) {
	l, signer, _, err := w.openLedgerStore(forWriting)
	return l, signer, err
}

// ledgerRef is the local ledger as one step of a use case has it open:
// Close ends the step's use, and closes the Ledger (saving its view
// state) when no other step or hold uses it.
type ledgerRef struct {
	*consent.Ledger
	close func() error
	once  sync.Once
	err   error
}

// Close ends this use of the ledger; later calls do nothing.
func (r *ledgerRef) Close() error {
	r.once.Do(func() { r.err = r.close() })
	return r.err
}

// ledgerHold is the local ledger the wallet has open, shared by the steps
// of the use cases that hold it (holdLedger): opening the ledger restores
// its view and closing it saves the view again, a cost that grows with
// the history, so a use case of several steps (record add: pull, anchor,
// serve entry, publish) pays it once. refs counts the holds and the open
// ledgerRefs; the Ledger is closed when it falls to 0.
type ledgerHold struct {
	mu    sync.Mutex
	refs  int
	l     *consent.Ledger
	st    *boltstore.Store
	opens int // how many times the ledger file was opened (tests)
}

// HoldLedger keeps the local ledger open, from the first time a use case
// opens it until release is called, and lets every use case called
// meanwhile use that one open Ledger: a command that runs several use
// cases (refresh then list, pull then publish) opens the ledger, and
// saves its state, once. It opens nothing by itself. A long-lived caller
// (the TUI, a watch loop) holds it for one action at a time, since the
// open ledger locks out other medwallet processes of this home.
func (w *Wallet) HoldLedger() (release func()) {
	h := &w.lh
	h.mu.Lock()
	h.refs++
	h.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { _ = h.release() }) }
}

// holdLedger is HoldLedger: each use case of several steps holds the
// ledger for its whole run.
func (w *Wallet) holdLedger() (release func()) { return w.HoldLedger() }

// openAhead opens the local ledger in the background, for a use case
// that holds it (holdLedger) and has other slow work to do first (dial
// the peers, unlock the keyring): its steps then find the ledger open.
// wait returns once the background open has ended. An error is left for
// the step that opens the ledger next to meet and report.
func (w *Wallet) openAhead() (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if l, _, err := w.openLedger(false); err == nil {
			l.Close() // the use case's hold keeps it open
		}
	}()
	return func() { <-done }
}

// release ends one use of the held ledger, and closes it after the last.
func (h *ledgerHold) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refs--
	if h.refs > 0 || h.l == nil {
		return nil
	}
	l, st := h.l, h.st
	h.l, h.st = nil, nil
	// Saving the view state at close needs memory of its own: give back
	// the file's pages the use case read first (boltstore.ReleaseMemory).
	st.ReleaseMemory()
	return l.Close()
}

// openLedgerStore is openLedger, and also returns the ledger's store on
// disk (nil when there is none yet and !forWriting).
func (w *Wallet) openLedgerStore(forWriting bool) (*ledgerRef, consent.Signer, *boltstore.Store, error) {
	if !forWriting {
		if _, err := os.Stat(w.ledgerPath()); errors.Is(err, os.ErrNotExist) {
			// Nothing to share: an empty ledger in memory, this step's own.
			l, err := consent.OpenLedger(consent.NewMemStore())
			if err != nil {
				return nil, nil, nil, err
			}
			return &ledgerRef{Ledger: l, close: l.Close}, nil, nil, nil
		}
	}
	var signer consent.Signer
	if forWriting {
		id, err := w.Identity()
		if err != nil {
			return nil, nil, nil, err
		}
		if signer, err = consent.NewKeySigner(id.Signing); err != nil {
			return nil, nil, nil, err
		}
	}
	h := &w.lh
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.l == nil {
		s, err := boltstore.Open(w.ledgerPath())
		if err != nil {
			return nil, nil, nil, err
		}
		l, err := consent.OpenLedger(s)
		if err != nil {
			s.Close()
			return nil, nil, nil, fmt.Errorf("%w: %w: %w", ErrBadLedger, ErrVerify, err)
		}
		h.l, h.st = l, s
		h.opens++
	}
	h.refs++
	l, s := h.l, h.st
	ref := &ledgerRef{Ledger: l, close: h.release}
	if forWriting {
		var head consent.Head
		l.View(func(v *consent.View) { head = v.Head(w.FeedID()) })
		if head.Seq == 0 && w.device != "" {
			// A paired device's feed opens with its device entry.
			if err := w.appendDeviceEntry(l, signer); err != nil {
				h.refs--
				if h.refs == 0 {
					h.l, h.st = nil, nil
					l.Close()
				}
				return nil, nil, nil, err
			}
		} else if head.Seq == 0 {
			// The first entry is a function of the card alone (its time is
			// the card's creation time and Ed25519 is deterministic), so a
			// wallet restored from a key backup writes the very same entry
			// 1 rather than an equivocating one.
			_, err := l.Append(signer, time.Unix(w.card.Created, 0), consent.KindIdentity,
				&consent.IdentityBody{AgeRecipient: w.card.AgeRecipient, Role: w.card.Role})
			if err != nil {
				h.refs--
				if h.refs == 0 {
					h.l, h.st = nil, nil
					l.Close()
				}
				return nil, nil, nil, fmt.Errorf("writing the identity entry: %w", err)
			}
		}
	}
	return ref, signer, s, nil
}

// AnchorRecord appends an anchor of the record's encrypted manifest to the
// wallet's feed, unless the feed already anchors that manifest. It returns
// whether it wrote an entry.
func (w *Wallet) AnchorRecord(ctx context.Context, ref string) (bool, error) {
	info, err := w.Record(ctx, ref)
	if err != nil {
		return false, err
	}
	l, s, err := w.openLedger(true)
	if err != nil {
		return false, err
	}
	defer l.Close()
	return w.anchor(l.Ledger, s, info)
}

func (w *Wallet) anchor(l *consent.Ledger, s consent.Signer, info RecordInfo) (bool, error) {
	h := consent.Hash(info.ManifestHash)
	var done bool
	l.View(func(v *consent.View) {
		a, ok := v.Anchor(w.ID(), info.ID)
		done = ok && a.Manifest == h
	})
	if done {
		return false, nil
	}
	if _, err := l.Append(s, w.Now(), consent.KindAnchor, &consent.AnchorBody{Record: info.ID, Manifest: h}); err != nil {
		return false, fmt.Errorf("anchoring record %s: %w", info.ID, err)
	}
	return true, nil
}

// LedgerEntries returns every entry of the local ledger, by author then
// seq. It holds them all in memory: for tests and small ledgers.
func (w *Wallet) LedgerEntries() ([]*consent.Entry, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Entries(), nil
}

// ExportLedger writes the whole local ledger as a self-contained file that
// 'medwallet audit verify FILE' checks on any machine. It returns the number
// of entries written.
func (w *Wallet) ExportLedger(out io.Writer) (int, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	x, err := w.exportFile(nil)
	if err != nil {
		return 0, err
	}
	n := 0
	l.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			n += int(v.Head(a).Seq)
		}
	})
	// The entries are written as they are read from the ledger.
	if err := consent.WriteExportFrom(out, x, n, l.Scan); err != nil {
		return 0, err
	}
	return n, nil
}

// ImportResult counts what ImportLedger did with the entries of a file.
type ImportResult struct {
	Entries       int // entries in the file
	Added         int // entries that joined a feed
	Known         int // entries already in the ledger
	Pending       int // entries whose predecessor is missing (not kept)
	Rejected      int // entries that do not verify (not kept)
	Equivocations int // equivocations found, each logged as a proof entry
}

// ImportLedger verifies the entries of an exported ledger file and adds
// them to the local ledger: how grants made to this wallet arrive when no
// peer carries them. An equivocation it uncovers is logged in the wallet's
// own feed as a proof entry.
func (w *Wallet) ImportLedger(r io.Reader) (ImportResult, error) {
	es, err := w.readImport(r) // with its checkpoints (ledger_import.go)
	if err != nil {
		return ImportResult{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	l, s, err := w.openLedger(true)
	if err != nil {
		return ImportResult{}, err
	}
	defer l.Close()
	res := ImportResult{Entries: len(es)}
	for _, e := range es {
		var known bool // accepted already
		l.View(func(v *consent.View) {
			h, ok := v.HashAt(e.Author, e.Seq)
			known = ok && h == e.Hash()
		})
		if known {
			res.Known++
			continue
		}
		acc, err := l.Ingest(e)
		var eq *consent.EquivocationError
		switch {
		case errors.As(err, &eq):
			res.Equivocations++
			if _, err := l.Append(s, w.Now(), consent.KindEquivocation, eq.Proof); err != nil {
				return res, fmt.Errorf("logging an equivocation proof: %w", err)
			}
		case err != nil && (errors.Is(err, consent.ErrMalformed) || errors.Is(err, consent.ErrBadSignature) ||
			errors.Is(err, consent.ErrUnknownKind) || errors.Is(err, consent.ErrTooManyPending)):
			res.Rejected++
		case err != nil:
			return res, err
		}
		res.Added += len(acc)
	}
	l.View(func(v *consent.View) { res.Pending = v.Pending() })
	return res, nil
}
