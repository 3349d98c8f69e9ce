package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/wallet"
)

func newAuditCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify the consent ledger and account for disclosures",
		Example: `  medwallet audit verify
  medwallet ledger export alice.mwl && medwallet audit verify alice.mwl   # what an auditor runs, on any machine
  medwallet audit disclosures --since 2026-01-01 --format csv > disclosures.csv`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAuditVerifyCommand(g), newAuditDisclosuresCommand(g))
	return cmd
}

// auditVerifyOptions are the flags of audit verify.
type auditVerifyOptions struct {
	// offline: report the local ledger without pulling the network's.
	offline bool
}

func newAuditVerifyCommand(g *globalOptions) *cobra.Command {
	var opts auditVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify [FILE]",
		Short: "Verify every signature, chain and access decision in a ledger",
		Long: `Verify the local ledger, or a file written by 'medwallet ledger export'
(no wallet needed: an auditor runs this on any machine). Every entry's
signature, every feed's chain, every equivocation, and every logged access
are checked: the consent policy is re-run on each access as of the moment
it was decided, and an access that no valid grant allowed is a violation.
On your own ledger it also lists the emergency (break-glass) accesses to
your records that you have not reviewed yet ('medwallet review').

Without FILE it first pulls the network's ledger into the local one, so
that it audits what the peers hold; --offline audits the local ledger as
it is (so does a wallet without a network file).

Each equivocation is explained under the summary: the author, the seq,
the two entries it signed there (hash, kind, time) and who logged a proof
of it on the ledger (peers log the equivocations they detect, and refuse
the author from then on).

Exit code 0 when everything verifies, 5 on any violation, invalid entry,
broken chain or equivocation.`,
		Example: "  medwallet audit verify\n  medwallet audit verify --offline\n  medwallet audit verify alice-ledger.mwl --json",
		Args:    cobra.MaximumNArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runAuditVerify(cmd.Context(), opts, g, args) },
	}
	addOfflineFlag(cmd, &opts.offline)
	return cmd
}

// findingJSON is one finding in the --json shape of audit verify.
type findingJSON struct {
	Kind    string `json:"kind"`
	Author  string `json:"author,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Entry   string `json:"entry,omitempty"`
	Logged  string `json:"logged,omitempty"`
	Decided string `json:"decided,omitempty"`
	Grant   string `json:"grant,omitempty"`
	Detail  string `json:"detail"`

	// Suspicion: why a suspicious access entry was set apart.
	Suspicion string `json:"suspicion,omitempty"`
}

// auditJSON is the --json shape of audit verify.
type auditJSON struct {
	Source       string        `json:"source"`
	OK           bool          `json:"ok"`
	Entries      int           `json:"entries"`
	Feeds        int           `json:"feeds"`
	Grants       int           `json:"grants"`
	Revocations  int           `json:"revocations"`
	Accesses     int           `json:"accesses"`
	Allowed      int           `json:"allowed"`
	Denied       int           `json:"denied"`
	Suspicious   int           `json:"suspicious"` // access entries set apart as suspicious: they do not fail the audit
	Equivocators []string      `json:"equivocators"`
	Findings     []findingJSON `json:"findings"`
	// Proofs explains each equivocation (one per equivocator).
	Proofs []proofJSON `json:"proofs"`
	// Unreviewed lists, for the wallet's own ledger, the emergency
	// accesses to its records that it has not reviewed yet.
	Unreviewed []emergencyJSON `json:"unreviewed_emergency_accesses"`
	// Repeated denials (counted in accesses and denied) that peers
	// logged in summary entries rather than one by one.
	Repeated  int `json:"repeated"`
	Summaries int `json:"summaries"`
	// Checkpoints and forks: see audit_checkpoints.go.
	Checkpoints []consent.CheckpointReport `json:"checkpoints,omitempty"`
	Forks       []consent.ForkReport       `json:"forks,omitempty"`
}

// proofJSON explains one equivocation in audit verify --json: the author
// signed two entries at seq; logged_by lists the equivocation entries that
// carry a proof of it (empty when only the two entries were audited).
type proofJSON struct {
	Author   string           `json:"author"`
	Seq      uint64           `json:"seq"`
	Entries  []proofEntryJSON `json:"entries"`
	LoggedBy []proofLogJSON   `json:"logged_by"`
}

type proofEntryJSON struct {
	Hash string    `json:"hash"`
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
}

type proofLogJSON struct {
	Logger string    `json:"logger"`
	Seq    uint64    `json:"seq"`
	Entry  string    `json:"entry"`
	Time   time.Time `json:"time"`
}

func newProofJSON(p consent.ProofReport) proofJSON {
	j := proofJSON{Author: string(p.Author), Seq: p.Seq, Entries: []proofEntryJSON{}, LoggedBy: []proofLogJSON{}}
	for _, e := range p.Entries {
		// The times are the equivocating author's word: clamp them to what
		// JSON can carry.
		j.Entries = append(j.Entries, proofEntryJSON{Hash: e.Hash.String(), Kind: e.Kind, Time: consent.PrintableTime(e.Time)})
	}
	for _, l := range p.LoggedBy {
		j.LoggedBy = append(j.LoggedBy, proofLogJSON{Logger: string(l.Logger), Seq: l.Seq, Entry: l.Entry.String(), Time: consent.PrintableTime(l.Time)})
	}
	return j
}

// printProofs explains each equivocation under the summary line.
func printProofs(out io.Writer, proofs []proofJSON) {
	for _, p := range proofs {
		fmt.Fprintf(out, "equivocation: %s signed two entries at seq %d:\n", p.Author, p.Seq)
		for _, e := range p.Entries {
			fmt.Fprintf(out, "  %s  %-12s  %s\n", e.Hash, e.Kind, e.Time.Format(time.RFC3339))
		}
		if len(p.LoggedBy) == 0 {
			fmt.Fprintln(out, "  no proof logged on the ledger: both entries are among those audited")
		}
		for _, l := range p.LoggedBy {
			fmt.Fprintf(out, "  proof logged by %s in its entry #%d (%s) at %s\n", l.Logger, l.Seq, l.Entry, l.Time.Format(time.RFC3339))
		}
	}
}

func newAuditJSON(source string, r *consent.AuditReport) auditJSON {
	j := auditJSON{Source: source, OK: r.OK(), Entries: r.Entries, Feeds: r.Feeds, Grants: r.Grants,
		Revocations: r.Revocations, Accesses: r.Accesses, Allowed: r.Allowed, Denied: r.Denied, Suspicious: r.Suspicious,
		Equivocators: []string{}, Findings: []findingJSON{}, Proofs: []proofJSON{}, Unreviewed: []emergencyJSON{},
		Repeated: r.Repeated, Summaries: r.Summaries, Checkpoints: r.Checkpoints, Forks: r.Forks}
	for _, p := range r.Proofs {
		j.Proofs = append(j.Proofs, newProofJSON(p))
	}
	for _, id := range r.Equivocators {
		j.Equivocators = append(j.Equivocators, string(id))
	}
	for _, f := range r.Findings {
		fj := findingJSON{Kind: f.Kind, Author: string(f.Author), Seq: f.Seq, Logged: string(f.Logged), Decided: string(f.Reason),
			Suspicion: string(f.Suspicion), Detail: f.Detail}
		if f.Entry != nil {
			fj.Entry = f.Entry.String()
		}
		if f.Grant != nil {
			fj.Grant = f.Grant.String()
		}
		j.Findings = append(j.Findings, fj)
	}
	return j
}

// runAuditVerify verifies the ledger file args[0], else the local ledger.
func runAuditVerify(ctx context.Context, opts auditVerifyOptions, g *globalOptions, args []string) error {
	file := ""
	if len(args) == 1 {
		file = args[0]
	}
	var rep *consent.AuditReport
	source := "local"
	if file != "" {
		source = file
		f, err := os.Open(file)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ledger file %q: %w", file, wallet.ErrNotFound)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		if rep, err = wallet.AuditExport(f); err != nil {
			return err
		}
	}
	var unreviewed []wallet.EmergencyAccess
	if file == "" {
		w, err := g.openWallet()
		if err != nil {
			return err
		}
		if err := refreshLedger(ctx, g, w, opts.offline); err != nil {
			return err
		}
		limitLedgerMemory()
		var eas []wallet.EmergencyAccess
		if rep, eas, err = w.AuditLedgerEmergencies(ctx); err != nil {
			return err
		}
		unreviewed = wallet.Unreviewed(eas)
	}
	j := newAuditJSON(source, rep)
	j.Unreviewed = emergenciesJSON(unreviewed)
	human := func(out io.Writer) {
		if len(j.Findings) > 0 {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FINDING\tENTRY\tLOGGED\tDECIDED\tDETAIL")
			for _, f := range j.Findings {
				at := "-"
				if f.Author != "" {
					at = consent.ID(f.Author).Short()
					if f.Seq != 0 {
						at += fmt.Sprintf("#%d", f.Seq)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Kind, at, dash(f.Logged), dash(f.Decided), f.Detail)
			}
			tw.Flush()
		}
		verdict := "ok"
		if !j.OK {
			verdict = "FAILED"
		}
		fmt.Fprintf(out, "%s: %s: %d entries in %d feeds, %d grants, %d revocations, %d accesses (%d allowed, %d denied), %d equivocating authors\n",
			source, verdict, j.Entries, j.Feeds, j.Grants, j.Revocations, j.Accesses, j.Allowed, j.Denied, len(j.Equivocators))
		if j.Repeated > 0 {
			fmt.Fprintf(out, "denied ×%d: repeated denials counted in %d summary entries (each denial again within a minute of one logged)\n", j.Repeated, j.Summaries)
		}
		printProofs(out, j.Proofs)
		printForks(out, j.Forks)
		if j.Suspicious > 0 {
			first := ""
			for _, f := range j.Findings {
				if f.Kind == consent.FindingSuspicious {
					first = f.Suspicion
					break
				}
			}
			fmt.Fprintf(out, "%d suspicious access entries set apart (first: %s); not accesses, they do not fail the audit\n", j.Suspicious, first)
		}
		if len(j.Unreviewed) > 0 {
			fmt.Fprintf(out, "%d emergency access(es) to your records not yet reviewed:\n", len(j.Unreviewed))
			printEmergencies(out, j.Unreviewed)
			g.note("medwallet: review each with 'medwallet review ID --ok' or '--dispute'")
		}
	}
	if err := wallet.AuditFailure(rep); err != nil {
		// A human gets the table and the error; a script gets the whole
		// report, with "ok": false, and the exit code.
		if !g.json {
			human(g.stdout)
		}
		return resultError{result: j, error: err}
	}
	return g.emit(j, human)
}

// ledgerMemoryLimit is the soft limit of the Go heap (debug.SetMemoryLimit)
// of the commands that walk a whole ledger: 'audit verify' reading the
// local ledger and 'sync' filling a new one. They stream the store and
// hold what they derive from the entries (grants, nonces, hashes: some
// 40 to 70 MiB at 100,000 entries); without a limit the garbage collector
// lets the heap grow to twice that. With it the collector runs more often
// near the limit (some CPU for memory); past it a bigger ledger still
// works, more slowly. GOMEMLIMIT, when set, wins.
const ledgerMemoryLimit = 90 << 20

// limitLedgerMemory sets ledgerMemoryLimit unless GOMEMLIMIT is set.
func limitLedgerMemory() {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(ledgerMemoryLimit)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// disclosuresOptions are the flags of audit disclosures.
type disclosuresOptions struct {
	since  string
	format string
	// offline: report the local ledger without pulling the network's.
	offline bool
}

func newAuditDisclosuresCommand(g *globalOptions) *cobra.Command {
	var opts disclosuresOptions
	cmd := &cobra.Command{
		Use:   "disclosures [--since DATE] [--format table|json|csv|fhir]",
		Short: "Print the accounting of disclosures of your records",
		Long: `Print every allowed access to your records logged on the ledger, in
the form HIPAA's accounting of disclosures (45 CFR 164.528) asks for: the
date, the recipient (the contact's name, else the ID), a description of
what was disclosed (record ID and scope; never record contents) and the
purpose. --format fhir prints a FHIR R4 Bundle of AuditEvent resources.
It first pulls the network's ledger into the local one; --offline reports
the local ledger as it is.`,
		Example: `  medwallet audit disclosures
  medwallet audit disclosures --since 2026-01-01 --format csv > disclosures.csv
  medwallet audit disclosures --format fhir > auditevents.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAuditDisclosures(cmd.Context(), opts, g) },
	}
	cmd.Flags().StringVar(&opts.since, "since", "", "only disclosures on or after this date (2026-01-31) or time (RFC 3339)")
	cmd.Flags().StringVar(&opts.format, "format", "table", "output format: table, json, csv or fhir")
	addOfflineFlag(cmd, &opts.offline)
	return cmd
}

// disclosureJSON is the --json shape of one disclosure.
type disclosureJSON struct {
	Date           time.Time `json:"date"`
	Recipient      string    `json:"recipient"`
	RecipientName  string    `json:"recipient_name"`
	Description    string    `json:"description"`
	Record         string    `json:"record"`
	Scope          string    `json:"scope"`  // the scope the request named
	Scopes         []string  `json:"scopes"` // every scope of the grant: what was disclosed
	Purpose        string    `json:"purpose"`
	PurposeDisplay string    `json:"purpose_display"`
	Decider        string    `json:"decider"`
	DeciderName    string    `json:"decider_name"`
	Grant          string    `json:"grant"`
	Entry          string    `json:"entry"`
	Decisions      int       `json:"decisions"`
}

func runAuditDisclosures(ctx context.Context, opts disclosuresOptions, g *globalOptions) error {
	format := opts.format
	if g.json {
		format = "json"
	}
	switch format {
	case "table", "json", "csv", "fhir":
	default:
		return usageError{fmt.Errorf("unknown --format %q: want table, json, csv or fhir", opts.format)}
	}
	since, err := wallet.ParseSince(opts.since)
	if err != nil {
		return err
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	defer w.HoldLedger()() // the pull and the report share one open ledger
	if err := refreshLedger(ctx, g, w, opts.offline); err != nil {
		return err
	}
	ds, err := w.Disclosures(ctx, since)
	if err != nil {
		return err
	}
	out := make([]disclosureJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, disclosureJSON{
			Date: consent.TimeOf(d.Time), Recipient: string(d.Recipient), RecipientName: d.RecipientName,
			Description: d.Description, Record: d.Record, Scope: d.Scope, Scopes: d.Scopes, Purpose: d.Purpose, PurposeDisplay: d.PurposeDisplay,
			Decider: string(d.Decider), DeciderName: d.DeciderName, Grant: d.Grant.String(), Entry: d.Entry.String(),
			Decisions: d.Decisions,
		})
	}
	switch format {
	case "json":
		return writeJSON(g.stdout, out)
	case "fhir":
		b, err := w.DisclosuresFHIR(ds)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(g.stdout, "%s\n", b)
		return err
	case "csv":
		cw := csv.NewWriter(g.stdout)
		cw.Write([]string{"date", "recipient_name", "recipient", "description", "purpose", "purpose_display", "decider", "grant", "entry"})
		for _, d := range out {
			cw.Write([]string{d.Date.Format(time.RFC3339), d.RecipientName, d.Recipient, d.Description, d.Purpose, d.PurposeDisplay, d.Decider, d.Grant, d.Entry})
		}
		cw.Flush()
		return cw.Error()
	}
	if len(out) == 0 {
		g.note("medwallet: no disclosures logged%s", map[bool]string{true: " since " + opts.since, false: ""}[opts.since != ""])
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tRECIPIENT\tDESCRIPTION\tPURPOSE")
	for _, d := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%s)\n", d.Date.Format(time.RFC3339), who(d.RecipientName, d.Recipient), d.Description, d.Purpose, d.PurposeDisplay)
	}
	return tw.Flush()
}
