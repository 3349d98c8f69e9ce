package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { register(newRevokeCommand) }

func newRevokeCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke GRANT_ID",
		Short: "Revoke one of your grants",
		Long: `Sign the revocation of a grant you made (ID or unique prefix of at least 8
hex digits). Peers stop serving under it as soon as they receive the
revocation. What the grantee already imported cannot be recalled; rotate
the record's key so that old key material opens nothing new.`,
		Example: "  medwallet revoke 9c2e41d0\n  medwallet revoke 9c2e41d0 --json",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runRevoke(cmd.Context(), args[0], g) },
	}
}

func runRevoke(ctx context.Context, ref string, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gi, err := w.Revoke(ctx, ref)
	if err != nil {
		return err
	}
	g.note("medwallet: peers stop serving under this grant once they receive the revocation; what %s already imported cannot be recalled",
		who(gi.GranteeName, gi.Grantee.Short()))
	return g.emit(newGrantJSON(gi), func(out io.Writer) { fmt.Fprintf(out, "revoked %s\n", gi.ID) })
}
