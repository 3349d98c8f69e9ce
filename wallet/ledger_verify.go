package wallet

import (
	"errors"
	"fmt"
	"os"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
)

// VerifyLedger re-checks every signature and every chain of the local
// ledger (consent.VerifyStore: batch verification on every core). Opening
// the ledger does not check signatures (they were checked when the entries
// arrived, before they were stored), so this is how to check a ledger
// whose disk is in doubt. A wallet without a ledger has nothing to check.
func (w *Wallet) VerifyLedger() (*consent.StoreReport, error) {
	if _, err := os.Stat(w.ledgerPath()); errors.Is(err, os.ErrNotExist) {
		return &consent.StoreReport{}, nil
	}
	s, err := boltstore.Open(w.ledgerPath())
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep, err := consent.VerifyStore(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrBadLedger, ErrVerify, err)
	}
	return rep, nil
}

// LedgerVerifyFailure returns nil for a clean report, else an error
// (ErrBadLedger, ErrVerify) that counts the bad entries and names the first.
func LedgerVerifyFailure(rep *consent.StoreReport) error {
	if rep.OK() {
		return nil
	}
	return fmt.Errorf("%w: %w: %d of %d stored entries (first: %w)", ErrBadLedger, ErrVerify, rep.Bad, rep.Entries, rep.Problems[0])
}
