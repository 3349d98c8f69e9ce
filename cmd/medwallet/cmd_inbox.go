package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(newInboxCommand) }

func newInboxCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inbox",
		Short: "List the grants made to you (pulling the ledger from the network)",
		Long: `Bring the local ledger up to date with the network, then list the grants
that name you as grantee, with their status. Import one with
'medwallet import GRANT_ID'.`,
		Example: "  medwallet inbox\n  medwallet inbox --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runInbox(cmd.Context(), g) },
	}
}

func runInbox(ctx context.Context, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gs, err := w.Inbox(ctx)
	if err != nil {
		return err
	}
	out := make([]grantJSON, 0, len(gs))
	for _, gi := range gs {
		out = append(out, newGrantJSON(gi))
	}
	return g.emit(out, func(o io.Writer) {
		if len(out) == 0 {
			g.note("medwallet: no grants made to you yet")
			return
		}
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tFROM\tPURPOSE\tSCOPES\tRECORDS")
		for _, j := range out {
			records := fmt.Sprint(len(j.Records))
			if j.AllRecords {
				records = "all"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID[:12], j.Status, who(j.AuthorName, j.Author), j.Purpose,
				strings.Join(j.Scopes, ","), records)
		}
		tw.Flush()
	})
}
