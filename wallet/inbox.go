package wallet

// The inbox: the grants made to this wallet (Inbox).

import (
	"context"
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
	all, err := w.Grants(ctx)
	if err != nil {
		return nil, err
	}
	out := []GrantInfo{}
	for _, g := range all {
		if !g.Given {
			out = append(out, g)
		}
	}
	return out, nil
}
