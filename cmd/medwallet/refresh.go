package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

// addOfflineFlag adds --offline to a command that reports the state of the
// network (grants, accesses, emergencies, the audit).
func addOfflineFlag(cmd *cobra.Command, offline *bool) {
	cmd.Flags().BoolVar(offline, "offline", false, "report the local ledger without pulling the network's first")
}

// refreshLedger brings the local ledger up to date with the network before
// a command reports on it. With --offline, or without a network file, it
// says on stderr that the report is of the local ledger only, and how to
// refresh it.
func refreshLedger(ctx context.Context, g *globalOptions, w *wallet.Wallet, offline bool) error {
	switch {
	case offline:
		g.note("medwallet: offline: this reports the local ledger only; run without --offline to pull the network's first")
	case !w.HasNetwork():
		g.note("medwallet: no network configured: this reports the local ledger only; pass --network FILE or set $MEDWALLET_NETWORK to pull the network's first")
	default:
		if _, err := w.PullLedger(ctx); err != nil {
			return withHint(fmt.Errorf("pulling the ledger from the network: %w", err),
				"pass --offline to report the local ledger only")
		}
	}
	return nil
}
