package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// syncOptions are the flags of sync.
type syncOptions struct{}

func newSyncCommand(g *globalOptions) *cobra.Command {
	var opts syncOptions
	return &cobra.Command{
		Use:   "sync",
		Short: "Rebuild the wallet from the network (after key import on a new machine)",
		Long: `Pull the ledger from the peers, fetch your replicated manifests (each must
verify and match its anchor on your feed), restore the ones missing here,
and push your feed back. After 'medwallet key import' into an empty home,
this brings back every record, grant and access log entry: losing a device
does not lose the records.`,
		Example: `  medwallet --home ~/new key import alice.medwallet-key
  medwallet --home ~/new sync`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSync(cmd.Context(), opts, g) },
	}
}

func runSync(ctx context.Context, _ syncOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	limitLedgerMemory()
	res, err := w.Sync(ctx)
	if err != nil {
		return err
	}
	return g.emit(res, func(out io.Writer) {
		fmt.Fprintf(out, "%d new ledger entries, %d records on the network (%d restored here), %d grants\n",
			res.Entries, res.Records, res.Restored, res.Grants)
	})
}
