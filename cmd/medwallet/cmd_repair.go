package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func newRepairCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Let a repairer keep your records alive without a key, and repair as one",
		Long: `A record survives the loss of n-k of its shares; a repairer puts lost shares
back before more are lost. It rebuilds them from the other shares'
ciphertext with the record's repair capability (share IDs and block hashes,
signed by you), and never holds a key that opens a record.

As the patient: 'repair grant' authorises a repairer (a contact or an ID),
'repair revoke' withdraws it, 'repair ls' lists your repair grants and
'repair audit' challenges the peers holding your shares to prove they
still have them. As the repairer: 'repair run' does one repair cycle (or
one every --interval).`,
		Example: `  medwallet repair grant clinic-box
  medwallet repair audit
  medwallet repair run --json`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newRepairGrantCommand(g), newRepairRevokeCommand(g), newRepairLsCommand(g),
		newRepairAuditCommand(g), newRepairRunCommand(g))
	return cmd
}

// repairGrantOptions are the flags of repair grant.
type repairGrantOptions struct {
	records []string
}

func newRepairGrantCommand(g *globalOptions) *cobra.Command {
	var opts repairGrantOptions
	cmd := &cobra.Command{
		Use:   "grant NAME|ID [--record ID...]",
		Short: "Authorise a repairer to audit and repair your records",
		Long: `Sign a repair grant: the repairer may audit the peers holding your
records' shares, fetch their ciphertext shares and put rebuilt ones on
peers, each access decided and logged by the peers (reason "repair", never
a disclosure). It carries no scope and no key. Each record's repair
capability is stored on every reachable peer for the repairer. Without
--record, every record, those added later included.`,
		Example: "  medwallet repair grant clinic-box\n  medwallet repair grant 12D3KooW... --record 3fa1 --json",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runRepairGrant(cmd.Context(), opts, g, args) },
	}
	cmd.Flags().StringArrayVar(&opts.records, "record", nil, "record ID or unique prefix (repeatable; default: every record)")
	return cmd
}

func runRepairGrant(ctx context.Context, opts repairGrantOptions, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gi, err := w.GrantRepair(ctx, wallet.RepairGrantOptions{Repairer: args[0], Records: opts.records})
	if err != nil {
		return err
	}
	return g.emit(gi, func(out io.Writer) {
		what := "every record"
		if !gi.All {
			what = fmt.Sprintf("%d records", len(gi.Records))
		}
		fmt.Fprintf(out, "repair grant %s to %s for %s\n", gi.ID, who(gi.Name, gi.Repairer.Short()), what)
	})
}

func newRepairRevokeCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke GRANT_ID",
		Short:   "Withdraw a repair grant",
		Example: "  medwallet repair revoke 5be0c1d2",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runRepairRevoke(cmd.Context(), g, args) },
	}
}

func runRepairRevoke(ctx context.Context, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gi, err := w.RevokeRepair(ctx, args[0])
	if err != nil {
		return err
	}
	return g.emit(gi, func(out io.Writer) { fmt.Fprintf(out, "revoked repair grant %s\n", gi.ID) })
}

func newRepairLsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List your repair grants",
		Example: "  medwallet repair ls --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runRepairLs(g) },
	}
}

func runRepairLs(g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gs, err := w.RepairGrants()
	if err != nil {
		return err
	}
	if gs == nil {
		gs = []wallet.RepairGrantInfo{}
	}
	return g.emit(gs, func(out io.Writer) {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tREPAIRER\tRECORDS\tSTATE")
		for _, gi := range gs {
			recs := "all"
			if !gi.All {
				recs = fmt.Sprint(len(gi.Records))
			}
			state := "active"
			if gi.Revoked {
				state = "revoked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", gi.ID.String()[:12], who(gi.Name, gi.Repairer.Short()), recs, state)
		}
		tw.Flush()
	})
}

// repairAuditOptions are the flags of repair audit.
type repairAuditOptions struct {
	blocks int
}

func newRepairAuditCommand(g *globalOptions) *cobra.Command {
	var opts repairAuditOptions
	cmd := &cobra.Command{
		Use:   "audit [RECORD...]",
		Short: "Challenge the peers holding your shares to prove they still hold them",
		Long: `Ask every reachable peer who holds each share of the records (every record
by default), and challenge each holder for a few random blocks, checked
against the record's repair capability. A holder that answers wrong, or
not at all, fails: its share counts as lost. It moves a few blocks per
holder; 'record verify' reads every share whole.`,
		Example: "  medwallet repair audit\n  medwallet repair audit 3fa1 --json",
		RunE:    func(cmd *cobra.Command, args []string) error { return runRepairAudit(cmd.Context(), opts, g, args) },
	}
	cmd.Flags().IntVar(&opts.blocks, "blocks", wallet.DefaultAuditBlocks, "random blocks asked of each holder (1 to 4)")
	return cmd
}

func runRepairAudit(ctx context.Context, opts repairAuditOptions, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	ras, err := w.AuditRecords(ctx, args, opts.blocks)
	if ras == nil {
		ras = []wallet.RecordAudit{}
	}
	if err != nil && len(ras) > 0 {
		// Under --json the report, not an error object: the exit code says it failed.
		if !g.json {
			printRecordAudits(g.stdout, ras)
		}
		return resultError{result: ras, error: err}
	}
	if err != nil {
		return err
	}
	return g.emit(ras, func(out io.Writer) { printRecordAudits(out, ras) })
}

func printRecordAudits(out io.Writer, ras []wallet.RecordAudit) {
	for _, ra := range ras {
		fmt.Fprintf(out, "record %s: %d of %d shares healthy (%d needed)\n", ra.Record, ra.Healthy, ra.N, ra.K)
		printShareAudits(out, ra.Shares)
	}
}

func printShareAudits(out io.Writer, sas []wallet.ShareAudit) {
	for _, sa := range sas {
		var peers []string
		for _, h := range sa.Holders {
			mark := "ok"
			if !h.OK {
				mark = "failed"
			}
			peers = append(peers, shortPeer(h.Peer)+" "+mark)
		}
		line := fmt.Sprintf("  share %d: %s", sa.Index, sa.State)
		if len(peers) > 0 {
			line += " (" + strings.Join(peers, ", ") + ")"
		}
		if sa.Placed != "" {
			line += ", rebuilt on " + shortPeer(sa.Placed)
		}
		fmt.Fprintln(out, line)
	}
}

func shortPeer(p string) string {
	if len(p) > 16 {
		return p[:8] + "…" + p[len(p)-6:]
	}
	return p
}

// repairRunOptions are the flags of repair run.
type repairRunOptions struct {
	threshold int
	blocks    int
	interval  time.Duration
}

func newRepairRunCommand(g *globalOptions) *cobra.Command {
	var opts repairRunOptions
	cmd := &cobra.Command{
		Use:   "run [--threshold N] [--interval D]",
		Short: "Audit and repair the records you are authorised to repair",
		Long: `Run a repair cycle as a repairer: pull the ledger, find the patients whose
repair grants name you, audit every holder of every share of their
records, and for each record whose healthy shares fall to the threshold
(default n-1, configurable) fetch k healthy shares, rebuild the lost ones
from ciphertext, check them against the signed block hashes and put each
on a reachable peer that holds no share of the record. The report says,
per record, the shares healthy before, those rebuilt and where, and the
bytes fetched and written. Exit status 5 (verify) when a record could not
be brought above the threshold.

With --interval, run a cycle every interval until interrupted (JSON: one
report per line).`,
		Example: "  medwallet repair run\n  medwallet repair run --threshold 3 --json\n  medwallet repair run --interval 1h",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runRepairRun(cmd.Context(), opts, g) },
	}
	f := cmd.Flags()
	f.IntVar(&opts.threshold, "threshold", 0, "repair a record when its healthy shares are at most N (default n-1)")
	f.IntVar(&opts.blocks, "blocks", wallet.DefaultAuditBlocks, "random blocks asked of each holder (1 to 4)")
	f.DurationVar(&opts.interval, "interval", 0, "run a cycle every interval until interrupted (default: once)")
	return cmd
}

func runRepairRun(ctx context.Context, opts repairRunOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	for {
		rep, err := w.Repair(ctx, wallet.RepairOptions{Threshold: opts.threshold, AuditBlocks: opts.blocks})
		if opts.interval <= 0 && errors.Is(err, wallet.ErrRepairIncomplete) {
			// Under --json the report, not an error object: the exit code says it failed.
			if !g.json {
				printRepairReport(g.stdout, rep)
			}
			return resultError{result: rep, error: err}
		}
		if opts.interval <= 0 && err != nil {
			return err
		}
		if eerr := g.emit(rep, func(out io.Writer) { printRepairReport(out, rep) }); eerr != nil {
			return eerr
		}
		if opts.interval <= 0 {
			return nil
		}
		if err != nil && !errors.Is(err, wallet.ErrRepairIncomplete) {
			g.note("medwallet: repair cycle failed: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(opts.interval):
		}
	}
}

func printRepairReport(out io.Writer, rep wallet.RepairReport) {
	if len(rep.Records) == 0 {
		fmt.Fprintln(out, "no record to repair: no repair grant names this identity, or no capability was published for it")
	}
	for _, r := range rep.Records {
		if r.Record == "" {
			fmt.Fprintf(out, "patient %s: %s\n", r.Owner.Short(), r.Error)
			continue
		}
		fmt.Fprintf(out, "record %s of %s: %d of %d healthy before, %d rebuilt, %d healthy after; fetched %d bytes, wrote %d\n",
			r.Record, r.Owner.Short(), r.HealthyBefore, r.N, r.Rebuilt, r.HealthyAfter, r.BytesFetched, r.BytesWritten)
		printShareAudits(out, r.Shares)
		if r.Error != "" {
			fmt.Fprintf(out, "  error: %s\n", r.Error)
		}
	}
}
