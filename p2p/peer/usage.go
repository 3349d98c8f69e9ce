package peer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/medwallet/medwallet/consent"
	ledgerstore "github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
)

// LeaseUsage returns the lease figures of the peer whose data directory
// is dir (`medwallet peer usage`). A running peer holds its databases:
// then they are its latest collection report (DATA/gc.json, rewritten
// every pass). A stopped peer's are counted now by a dry run of the
// collector over its store and ledger, with the lease and grace of its
// last report (the defaults if it wrote none), as if it had caught up.
// Source says which: "snapshot" or "database".
func LeaseUsage(ctx context.Context, dir string) (rep store.GCReport, source string, err error) {
	last, lerr := ReadGCReport(dir)
	st, err := boltstore.OpenReadOnly(filepath.Join(dir, SharesFile))
	if errors.Is(err, boltstore.ErrLocked) {
		if lerr != nil {
			return rep, "", fmt.Errorf("%w, and it has written no %s yet: %w", boltstore.ErrLocked, GCFile, lerr)
		}
		return last, "snapshot", nil
	}
	if err != nil {
		return rep, "", err
	}
	defer st.Close()
	p := store.DefaultPolicy()
	if lerr == nil && last.Lease > 0 && last.Grace > 0 {
		p = store.Policy{Lease: time.Duration(last.Lease) * time.Second, Grace: time.Duration(last.Grace) * time.Second}
	}
	var ls *ledgerstore.Store
	if _, serr := os.Stat(filepath.Join(dir, LedgerFile)); serr == nil {
		if ls, err = ledgerstore.Open(filepath.Join(dir, LedgerFile)); err != nil {
			return rep, "", fmt.Errorf("the peer's ledger: %w", err)
		}
	} else if !errors.Is(serr, fs.ErrNotExist) {
		return rep, "", serr
	}
	var l *consent.Ledger
	if ls != nil {
		if l, err = consent.OpenLedger(ls); err != nil {
			ls.Close()
			return rep, "", err
		}
		defer l.Close()
	} else if l, err = consent.OpenLedger(consent.NewMemStore()); err != nil {
		return rep, "", err
	}
	self, err := selfID(dir)
	if err != nil {
		return rep, "", err
	}
	var mu sync.Mutex
	ref := refereeOf(l, self, true, map[consent.ID]*retired{}, &mu, slog.New(slog.DiscardHandler))
	rep, err = st.Collect(ctx, p, ref, true)
	return rep, "database", err
}

// selfID is the ID of the peer whose key is in dir ("" if it has none).
func selfID(dir string) (consent.ID, error) {
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	key, err := node.LoadOrCreateKey(path)
	if err != nil {
		return "", err
	}
	s, err := consent.NewKeySigner(key)
	if err != nil {
		return "", err
	}
	return s.ID(), nil
}
