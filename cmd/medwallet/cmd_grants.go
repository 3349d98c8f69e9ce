package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

// grantsOptions are the flags of grants.
type grantsOptions struct {
	// offline: report the local ledger without pulling the network's.
	offline bool
	// limit: list the newest limit grants; all: list every one.
	limit int
	all   bool
}

func newGrantsCommand(g *globalOptions) *cobra.Command {
	var opts grantsOptions
	cmd := &cobra.Command{
		Use:   "grants [--limit N | --all]",
		Short: "List the grants you made and the grants made to you",
		Long: `Pull the network's ledger (unless --offline), then list every grant that
you made (direction "given") or that names you as grantee ("received"),
oldest first, with its status: active, revoked, expired, not-yet-valid, or
void with the reason: a grant one of your devices signed after you revoked
it, which every peer refuses ("void (device revoked)").

The newest 100 grants are listed (oldest of them first); --limit N lists
the newest N, --all every one.`,
		Example: "  medwallet grants\n  medwallet grants --offline --json\n  medwallet grants --all",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runGrants(cmd.Context(), opts, g) },
	}
	addLimitFlags(cmd, &opts.limit, &opts.all, "grants")
	addOfflineFlag(cmd, &opts.offline)
	return cmd
}

func runGrants(ctx context.Context, opts grantsOptions, g *globalOptions) error {
	limit := listLimit(opts.limit, opts.all)
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	defer w.HoldLedger()() // the pull and the report share one open ledger
	if err := refreshLedger(ctx, g, w, opts.offline); err != nil {
		return err
	}
	page, err := w.ListGrants(ctx, wallet.GrantsOptions{Limit: limit})
	if err != nil {
		return err
	}
	if page.Older > 0 && !g.json {
		defer g.note("medwallet: the newest %d shown, %d older; 'medwallet grants --all' lists every one", len(page.Grants), page.Older)
	}
	gs := page.Grants
	return emitGrants(g, gs, "medwallet: no grants yet; make one with 'medwallet grant --to CONTACT --record ID --scope SCOPE --purpose CODE'")
}

// emitGrants prints grants as JSON or as the table that grants and inbox share.
func emitGrants(g *globalOptions, gs []wallet.GrantInfo, empty string) error {
	out := make([]grantJSON, 0, len(gs))
	for _, gi := range gs {
		out = append(out, newGrantJSON(gi))
	}
	return g.emit(out, func(o io.Writer) {
		if len(out) == 0 {
			g.note("%s", empty)
			return
		}
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tDIRECTION\tSTATUS\tWITH\tPURPOSE\tSCOPES\tRECORDS\tEXPIRES")
		for _, j := range out {
			with := who(j.GranteeName, j.Grantee)
			if j.Role != "" {
				with = "any " + j.Role + " of " + who(j.IssuerName, j.Issuer)
				if j.TimeBox > 0 {
					with += fmt.Sprintf(" (emergency, %s time box)", time.Duration(j.TimeBox)*time.Second)
				}
			}
			if j.Direction == "received" {
				with = who(j.AuthorName, j.Author)
			}
			records := fmt.Sprint(len(j.Records))
			if j.AllRecords {
				records = "all"
			}
			expires := "never"
			if j.Expires != nil {
				expires = j.Expires.Format("2006-01-02T15:04Z07:00")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID[:12], j.Direction, statusText(j), with, j.Purpose,
				strings.Join(j.Scopes, ","), records, expires)
		}
		tw.Flush()
	})
}

// statusText is a grant's status as the tables print it: a void grant
// with its reason.
func statusText(j grantJSON) string {
	switch j.VoidReason {
	case "":
		return j.Status
	case wallet.VoidDeviceRevoked:
		return j.Status + " (device revoked)"
	case wallet.VoidEquivocating:
		return j.Status + " (device equivocated)"
	}
	return j.Status + " (" + j.VoidReason + ")"
}
