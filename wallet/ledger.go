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
// and returns the signer for further entries.
func (w *Wallet) openLedger(forWriting bool) (*consent.Ledger, consent.Signer, error) {
	l, signer, _, err := w.openLedgerStore(forWriting)
	return l, signer, err
}

// openLedgerStore is openLedger, and also returns the ledger's store on
// disk (nil when there is none yet and !forWriting).
func (w *Wallet) openLedgerStore(forWriting bool) (*consent.Ledger, consent.Signer, *boltstore.Store, error) {
	if !forWriting {
		if _, err := os.Stat(w.ledgerPath()); errors.Is(err, os.ErrNotExist) {
			l, err := consent.OpenLedger(consent.NewMemStore())
			return l, nil, nil, err
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
	s, err := boltstore.Open(w.ledgerPath())
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := consent.OpenLedger(s)
	if err != nil {
		s.Close()
		return nil, nil, nil, fmt.Errorf("%w: %w: %w", ErrBadLedger, ErrVerify, err)
	}
	if forWriting {
		var head consent.Head
		l.View(func(v *consent.View) { head = v.Head(w.ID()) })
		if head.Seq == 0 {
			// The first entry is a function of the card alone (its time is
			// the card's creation time and Ed25519 is deterministic), so a
			// wallet restored from a key backup writes the very same entry
			// 1 rather than an equivocating one.
			_, err := l.Append(signer, time.Unix(w.card.Created, 0), consent.KindIdentity,
				&consent.IdentityBody{AgeRecipient: w.card.AgeRecipient, Role: w.card.Role})
			if err != nil {
				l.Close()
				return nil, nil, nil, fmt.Errorf("writing the identity entry: %w", err)
			}
		}
	}
	return l, signer, s, nil
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
	return w.anchor(l, s, info)
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
