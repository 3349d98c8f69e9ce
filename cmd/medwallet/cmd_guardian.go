package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medwallet/medwallet/wallet"
)

// guardianOptions are the flags of guardian setup and guardian rotate.
type guardianOptions struct {
	threshold int
	guardians []string
}

func newGuardianCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guardian",
		Short: "Name guardians who can together restore your identity, or act as one",
		Long: `Guardians are contacts who can together bring your identity back on a new
machine when every device that held it is lost and no key export exists.
'guardian setup' makes a fresh recovery secret, splits it with Shamir's
scheme so that any THRESHOLD of the guardians rebuild it and fewer learn
nothing, encrypts each piece to its guardian, and seals your identity under
the secret on your peers. 'guardian rotate' replaces the set: pieces from
before open nothing. A guardian runs 'guardian requests' and
'guardian approve CODE' after checking with you out of band.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newGuardianSetupCommand(g, false), newGuardianSetupCommand(g, true),
		newGuardianShowCommand(g), newGuardianRequestsCommand(g), newGuardianApproveCommand(g))
	return cmd
}

func newGuardianSetupCommand(g *globalOptions, rotate bool) *cobra.Command {
	var opts guardianOptions
	cmd := &cobra.Command{
		Use:     "setup --threshold T --guardians NAME...",
		Short:   "Split a new recovery secret among guardians",
		Example: `  medwallet guardian setup --threshold 2 --guardians "Dr Bob" Carol Dan`,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.guardians = append(opts.guardians, args...)
			return runGuardianSetup(cmd.Context(), opts, g, rotate)
		},
	}
	if rotate {
		cmd.Use = "rotate [--threshold T] [--guardians NAME...]"
		cmd.Short = "Replace the guardian set: a new secret, old pieces open nothing"
		cmd.Example = "  medwallet guardian rotate\n  medwallet guardian rotate --threshold 2 --guardians Carol Dan Erin"
	}
	cmd.Flags().IntVar(&opts.threshold, "threshold", 0, "how many guardians together can restore the identity")
	cmd.Flags().StringSliceVar(&opts.guardians, "guardians", nil, "the guardians: contact names or IDs (the words after it too)")
	return cmd
}

// runGuardianSetup sets or rotates the guardian set. The words after
// --guardians are guardians too, as the issue writes them
// (--guardians "Dr Bob" Carol Dan).
func runGuardianSetup(ctx context.Context, opts guardianOptions, g *globalOptions, rotate bool) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	if !rotate && (opts.threshold == 0 || len(opts.guardians) == 0) {
		return fmt.Errorf("guardian setup needs --threshold and --guardians: %w", wallet.ErrInvalid)
	}
	res, err := w.SetGuardians(ctx, wallet.GuardianOptions{Threshold: opts.threshold, Guardians: opts.guardians}, rotate)
	if err != nil {
		return err
	}
	if res.Peers < res.Configured {
		g.note("medwallet: %d of %d peers took the sealed identity; 'medwallet sync' hands it to the others when they are back", res.Peers, res.Configured)
	}
	if res.Replaced != "" {
		g.note("medwallet: guardian set %s replaced: its pieces open nothing any more", res.Replaced[:12])
	}
	g.note("medwallet: any %d of your %d guardians can restore your identity; fewer learn nothing", res.Threshold, len(res.Guardians))
	return g.emit(res, func(out io.Writer) { printGuardianSet(out, res) })
}

func printGuardianSet(out io.Writer, res wallet.GuardianSetInfo) {
	fmt.Fprintf(out, "guardian set %s: %d of %d\n", res.Set[:12], res.Threshold, len(res.Guardians))
	for _, gi := range res.Guardians {
		fmt.Fprintf(out, "  %d  %s\n", gi.Index, who(gi.Name, gi.ID.Short()))
	}
}

func newGuardianShowCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show your guardian set",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := g.openWallet()
			if err != nil {
				return err
			}
			res, err := w.Guardians(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(res, func(out io.Writer) { printGuardianSet(out, res) })
		},
	}
}

func newGuardianRequestsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "requests",
		Short: "List recovery requests of the identities you guard (and of your own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := g.openWallet()
			if err != nil {
				return err
			}
			rs, err := w.RecoveryRequests(cmd.Context())
			if err != nil {
				return err
			}
			return g.emit(rs, func(out io.Writer) {
				for _, r := range rs {
					printRecovery(out, r)
				}
			})
		},
	}
}

func printRecovery(out io.Writer, r wallet.RecoveryRequestInfo) {
	owner := who(r.OwnerName, r.Owner.Short())
	if r.OwnerName == "" && r.Owner != "" {
		owner = r.Owner.Short()
	}
	fmt.Fprintf(out, "%s  %-9s  recovery of %s started %s by new key %s  %d/%d approvals",
		r.Code, r.Status, owner, r.Started.Format("2006-01-02 15:04"), r.Requester.Short(), r.Approvals, r.Threshold)
	if r.Status == wallet.RecoveryWaiting {
		fmt.Fprintf(out, "  approvable from %s", r.Ready.Format("2006-01-02 15:04"))
	}
	fmt.Fprintln(out)
}

func newGuardianApproveCommand(g *globalOptions) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "approve CODE",
		Short: "Hand your piece to a recovery request, after checking with its owner",
		Long: `Approve the recovery request whose code the owner read to you (check with
them out of band: a call, in person). Your wallet pulls the ledger, checks
that you guard that identity, that the request asks the current guardian
set, that its waiting period is over and that the owner did not refuse it;
then it encrypts your piece to the new machine's key and publishes the
approval. Nobody but the new machine can read the piece.

On a terminal it shows who and what, and asks before approving (--yes
does not ask; without a terminal, or with --json, it does not ask).`,
		Example: "  medwallet guardian approve K7Q2-MX4D-3PZA-9TTE",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := g.openWallet()
			if err != nil {
				return err
			}
			var confirm func(wallet.RecoveryRequestInfo) error
			if !yes && !g.json {
				confirm = func(r wallet.RecoveryRequestInfo) error { return confirmApproval(g, r) }
			}
			r, err := w.ApproveRecovery(cmd.Context(), strings.TrimSpace(args[0]), confirm)
			if err != nil {
				return err
			}
			g.note("medwallet: approved the recovery of %s started %s by new key %s", who(r.OwnerName, r.Owner.Short()),
				r.Started.Format("2006-01-02 15:04"), r.Requester.Short())
			return g.emit(r, func(out io.Writer) { printRecovery(out, r) })
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "approve without asking")
	return cmd
}

// errNotApproved reports an approval the guardian declined at the prompt.
var errNotApproved = fmt.Errorf("not approved: %w", wallet.ErrDenied)

// confirmApproval shows a request and asks, on the terminal, whether to
// approve it; without a terminal it does not ask.
func confirmApproval(g *globalOptions, r wallet.RecoveryRequestInfo) error {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	fmt.Fprintf(g.stderr, "Recovery of %s (%s)\n  started %s by new key %s\n  %d of %d approvals so far\n",
		who(r.OwnerName, r.Owner.Short()), r.Owner, r.Started.Format(time.RFC3339), r.Requester.Short(), r.Approvals, r.Threshold)
	fmt.Fprint(g.stderr, "Did they confirm it is them, out of band? Approve [y/N]: ")
	line, _ := bufio.NewReader(f).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errNotApproved
	}
	return nil
}

// noteRecoveries points out, on stderr, the recovery requests still
// waiting or open of the wallet's identity and of those it guards (inbox
// and log call it after their listing).
func noteRecoveries(g *globalOptions, w *wallet.Wallet) {
	rs, err := w.ActiveRecoveries()
	if err != nil {
		return
	}
	for _, r := range rs {
		if r.Owner == w.ID() {
			g.note("medwallet: recovery of your identity started by new key %s on %s (%s, code %s): if it is not you, 'medwallet recover --refuse %s'",
				r.Requester.Short(), r.Started.Format("2006-01-02 15:04"), r.Status, r.Code, r.Code)
			continue
		}
		g.note("medwallet: recovery of %s started by new key %s on %s (%s, code %s): check with them, then 'medwallet guardian approve CODE'",
			who(r.OwnerName, r.Owner.Short()), r.Requester.Short(), r.Started.Format("2006-01-02 15:04"), r.Status, r.Code)
	}
}
