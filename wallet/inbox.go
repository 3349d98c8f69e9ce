package wallet

// The inbox: the grants made to this wallet (Inbox).

import (
	"context"

	"github.com/medwallet/medwallet/consent"
)

// Inbox lists the grants made to this wallet, after pulling the ledger
// from the network when there is one.
func (w *Wallet) Inbox(ctx context.Context) ([]GrantInfo, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if w.HasNetwork() {
		if _, err := w.PullLedger(ctx); err != nil {
			return nil, err
		}
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	now := w.Now()
	book := w.contactBook()
	out := []GrantInfo{}
	l.View(func(v *consent.View) {
		// Only the grants made to the wallet are read, not those it made.
		got := w.grantsReaching(v)
		for i := len(got) - 1; i >= 0; i-- {
			out = append(out, w.grantInfoWith(v, got[i], now, book))
		}
	})
	return out, nil
}
