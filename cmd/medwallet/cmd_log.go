package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

type logOptions struct {
	watch    bool
	interval time.Duration
	// offline: report the local ledger without pulling the network's.
	offline bool
	// suspicious: list the access entries set apart as suspicious instead.
	suspicious bool
	// limit: list the newest limit entries; all: list every one.
	limit int
	all   bool
}

// defaultListLimit is how many rows log and grants list without --limit
// or --all: the newest ones.
const defaultListLimit = 100

func newLogCommand(g *globalOptions) *cobra.Command {
	var o logOptions
	cmd := &cobra.Command{
		Use:   "log [--watch] [--suspicious] [--limit N | --all]",
		Short: "Show every access to your records, allowed or denied",
		Long: `Pull the ledger from the network and list every decision peers logged on a
request for one of your records: when, which peer decided, who asked, for
what purpose, and whether it was allowed. With --watch, keep pulling and
print new accesses as they happen (JSON lines under --json) until
interrupted. --offline lists what the local ledger holds, without pulling.

Only real accesses are listed: an access entry whose request does not
verify under the requester's key, whose decider is neither you nor a peer
of your network, or whose time is out of range or ahead of your clock is
set apart as suspicious (evidence against its author, not an access).
--suspicious lists those instead.

The newest 100 entries are listed (oldest of them first), so the command
costs the same however long the log grows; --limit N lists the newest N,
--all every one. --watch prints the newest ones, then every new one.`,
		Example: "  medwallet log\n  medwallet log --limit 20\n  medwallet log --all --json\n  medwallet log --watch --json\n  medwallet log --suspicious",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runLog(cmd.Context(), o, g) },
	}
	cmd.Flags().BoolVar(&o.watch, "watch", false, "keep watching for new accesses")
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "how often --watch pulls")
	cmd.Flags().BoolVar(&o.suspicious, "suspicious", false, "list the access entries set apart as suspicious instead")
	addLimitFlags(cmd, &o.limit, &o.all, "entries")
	addOfflineFlag(cmd, &o.offline)
	return cmd
}

// accessJSON is the --json shape of one access.
type accessJSON struct {
	Entry         string    `json:"entry"`
	Time          time.Time `json:"time"`
	Decider       string    `json:"decider"`
	Requester     string    `json:"requester"`
	RequesterName string    `json:"requester_name,omitempty"`
	Record        string    `json:"record"`
	Scope         string    `json:"scope"`
	Purpose       string    `json:"purpose"`
	Allowed       bool      `json:"allowed"`
	Reason        string    `json:"reason"`
	Grant         string    `json:"grant,omitempty"`
	// Emergency accesses: the emergency access ID (break-glass entry), the
	// clinician's stated reason and, for an allow, the end of the time box.
	Emergency       bool       `json:"emergency"`
	BreakGlass      string     `json:"break_glass,omitempty"`
	EmergencyReason string     `json:"emergency_reason,omitempty"`
	Until           *time.Time `json:"until,omitempty"`
	// Suspicious entries (log --suspicious): why the entry was set apart.
	Suspicious       bool   `json:"suspicious"`
	SuspiciousReason string `json:"suspicious_reason,omitempty"`
	// Repeats is how many decisions the entry records: more than 1 for a
	// peer's summary of one denial repeated within a minute, whose first
	// and last were decided at first and last.
	Repeats int        `json:"repeats"`
	First   *time.Time `json:"first,omitempty"`
	Last    *time.Time `json:"last,omitempty"`
	// A SMART Health Link's manifest request: the link's shl entry; record
	// is then the link ID and requester_name "SHL: " and the recipient.
	Link string `json:"link,omitempty"`
}

func newAccessJSON(a wallet.AccessInfo) accessJSON {
	j := accessJSON{Entry: a.Entry.String(), Time: a.Time, Decider: string(a.Decider), Requester: string(a.Requester),
		RequesterName: a.RequesterName, Record: a.Record, Scope: a.Scope, Purpose: a.Purpose, Allowed: a.Allow,
		Reason: string(a.Reason)}
	if !a.Grant.IsZero() {
		j.Grant = a.Grant.String()
	}
	if a.Emergency() {
		j.Emergency, j.BreakGlass, j.EmergencyReason = true, a.BreakGlass.String(), a.EmergencyReason
	}
	if !a.Until.IsZero() {
		u := a.Until
		j.Until = &u
	}
	if a.Suspicion != "" {
		j.Suspicious, j.SuspiciousReason = true, string(a.Suspicion)
	}
	j.Repeats = max(1, a.Repeats)
	if a.Link != nil {
		j.Link = a.Link.Link.String()
	}
	if !a.First.IsZero() {
		first, last := a.First, a.Last
		j.First, j.Last = &first, &last
	}
	return j
}

func printAccess(w io.Writer, a accessJSON) {
	verdict := "ALLOWED"
	if !a.Allowed {
		verdict = "DENIED "
	}
	reason := a.Reason
	if a.Repeats > 1 && a.First != nil && a.Last != nil {
		// One peer's summary of a denial repeated within a minute.
		verdict = fmt.Sprintf("DENIED ×%d", a.Repeats)
		reason = fmt.Sprintf("%s [repeated %s to %s]", reason, a.First.Format(time.TimeOnly), a.Last.Format(time.TimeOnly))
	}
	if a.Emergency {
		// Break-glass: marked, with the emergency access ID to review and
		// the clinician's stated reason.
		verdict = "EMERGENCY " + verdict
		reason = fmt.Sprintf("%s [emergency %s: %q]", reason, a.BreakGlass[:12], a.EmergencyReason)
	}
	if a.Suspicious {
		verdict = "SUSPICIOUS " + verdict
		reason = fmt.Sprintf("%s [suspicious: %s]", reason, a.SuspiciousReason)
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.Format(time.RFC3339), verdict, who(a.RequesterName, a.Requester),
		a.Purpose, reason, a.Record[:min(12, len(a.Record))], idOf(a.Decider).Short())
}

// addLimitFlags adds --limit and --all to a listing command.
func addLimitFlags(cmd *cobra.Command, limit *int, all *bool, what string) {
	*limit = defaultListLimit
	cmd.Flags().Var((*limitValue)(limit), "limit", "list the newest N "+what)
	cmd.Flags().BoolVar(all, "all", false, "list every one of the "+what)
	cmd.MarkFlagsMutuallyExclusive("limit", "all")
}

// limitValue is the value of --limit: 1 or more.
type limitValue int

func (v *limitValue) String() string { return strconv.Itoa(int(*v)) }
func (v *limitValue) Type() string   { return "int" }
func (v *limitValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return errors.New("want 1 or more (or --all)")
	}
	*v = limitValue(n)
	return nil
}

// listLimit is the limit that --limit and --all ask for: 0 for every row.
// An options struct made without the flags (limit 0) gets the default.
func listLimit(limit int, all bool) int {
	switch {
	case all:
		return 0
	case limit < 1:
		return defaultListLimit
	}
	return limit
}

func runLog(ctx context.Context, o logOptions, g *globalOptions) error {
	limit := listLimit(o.limit, o.all)
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	first := true
	for {
		// The pull and the listing of a round share one open ledger; it
		// is not held between rounds, when other processes may use it.
		release := w.HoldLedger()
		if first {
			if err := refreshLedger(ctx, g, w, o.offline); err != nil {
				release()
				return err
			}
		} else if !o.offline && w.HasNetwork() {
			_, _ = w.PullLedger(ctx) // while watching, a failed pull is retried at the next interval
		}
		opts := wallet.AccessLogOptions{Suspicious: o.suspicious, Limit: limit}
		if o.watch {
			// Every round lists every entry, so that none is missed
			// between rounds; the first round prints only the newest.
			opts.Limit = 0
		}
		page, err := w.ListAccesses(ctx, opts)
		release()
		if err != nil {
			return err
		}
		if first {
			noteRecoveries(g, w) // cmd_guardian.go
		}
		as := page.Accesses
		if first && o.watch && limit > 0 && len(as) > limit {
			for _, a := range as[:len(as)-limit] {
				seen[a.Entry.String()] = true
			}
		}
		var fresh []accessJSON
		for _, a := range as {
			if k := a.Entry.String(); !seen[k] {
				seen[k] = true
				fresh = append(fresh, newAccessJSON(a))
			}
		}
		switch {
		case !o.watch:
			if !g.json {
				if page.More {
					defer g.note("medwallet: the newest %d shown; 'medwallet log --all' lists every one", limit)
				}
				if n := page.SetApart; !o.suspicious && n > 0 {
					if page.More {
						defer g.note("medwallet: %d suspicious access entries set apart since %s; see 'medwallet log --suspicious'", n, page.Since.Format(time.RFC3339))
					} else {
						defer g.note("medwallet: %d suspicious access entries set apart; see 'medwallet log --suspicious'", n)
					}
				}
			}
			return g.emit(fresh, func(out io.Writer) {
				if len(fresh) == 0 {
					if o.suspicious {
						g.note("medwallet: no suspicious access entries")
						return
					}
					g.note("medwallet: no access to your records yet")
					return
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tDECISION\tREQUESTER\tPURPOSE\tREASON\tRECORD\tPEER")
				for _, a := range fresh {
					printAccess(tw, a)
				}
				tw.Flush()
			})
		case g.json:
			for _, a := range fresh {
				if err := writeJSONLine(g.stdout, a); err != nil {
					return err
				}
			}
		default:
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			if first {
				fmt.Fprintln(tw, "TIME\tDECISION\tREQUESTER\tPURPOSE\tREASON\tRECORD\tPEER")
			}
			for _, a := range fresh {
				printAccess(tw, a)
			}
			tw.Flush()
		}
		first = false
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}
