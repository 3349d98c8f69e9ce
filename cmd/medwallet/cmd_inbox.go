package main

import (
	"context"

	"github.com/spf13/cobra"
)

// inboxOptions are the flags of inbox.
type inboxOptions struct{}

func newInboxCommand(g *globalOptions) *cobra.Command {
	var opts inboxOptions
	return &cobra.Command{
		Use:   "inbox",
		Short: "List the grants made to you (pulling the ledger from the network)",
		Long: `Bring the local ledger up to date with the network, then list the grants
that name you as grantee, with their status. Import one with
'medwallet import GRANT_ID'.`,
		Example: "  medwallet inbox\n  medwallet inbox --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runInbox(cmd.Context(), opts, g) },
	}
}

func runInbox(ctx context.Context, _ inboxOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gs, err := w.Inbox(ctx)
	if err != nil {
		return err
	}
	noteRecoveries(g, w) // cmd_guardian.go
	return emitGrants(g, gs, "medwallet: no grants made to you yet")
}
