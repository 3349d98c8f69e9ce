package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

// recoverOptions are the flags of recover.
type recoverOptions struct {
	start  string
	delay  time.Duration
	finish bool
	wait   time.Duration
	refuse string
}

func newRecoverCommand(g *globalOptions) *cobra.Command {
	var opts recoverOptions
	cmd := &cobra.Command{
		Use:   "recover --start ID [--delay 48h] | --finish [--wait 10m] | --refuse CODE",
		Short: "Bring your identity back through your guardians",
		Long: `On a new machine (an empty home with a network file), 'recover --start ID'
asks your guardians to restore the identity ID: it prints a request code to
read to each guardian, who runs 'medwallet guardian approve CODE'. Once
enough guardians approved, 'recover --finish' restores the identity (the
same one) into the keyring, marks the recovery complete on your ledger and
syncs the wallet back (records, grants, contacts and the rest of your
backed-up state). --wait keeps polling until then.

With --delay, guardians approve only after the waiting period, and during
it your other devices see the request ('guardian requests') and can
refuse it: 'recover --refuse CODE' on a device that holds the identity.`,
		Example: `  medwallet --home ~/new recover --start 12D3KooW... --delay 48h
  medwallet --home ~/new recover --finish --wait 30m
  medwallet recover --refuse K7Q2-MX4D-3PZA-9TTE`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRecover(cmd.Context(), opts, g) },
	}
	cmd.Flags().StringVar(&opts.start, "start", "", "start recovering the identity with this ID")
	cmd.Flags().DurationVar(&opts.delay, "delay", 0, "waiting period before guardians may approve, during which the owner can refuse")
	cmd.Flags().BoolVar(&opts.finish, "finish", false, "restore the identity once enough guardians approved")
	cmd.Flags().DurationVar(&opts.wait, "wait", 0, "with --finish: keep polling for approvals this long")
	cmd.Flags().StringVar(&opts.refuse, "refuse", "", "refuse a recovery of your identity (its code) within its waiting period")
	cmd.MarkFlagsMutuallyExclusive("start", "finish", "refuse")
	return cmd
}

// recoverPoll is how often --wait asks the peers again.
const recoverPoll = 2 * time.Second

type recoverJSON struct {
	wallet.RecoveryProgress
	Sync *wallet.SyncResult `json:"sync,omitempty"`
}

func runRecover(ctx context.Context, opts recoverOptions, g *globalOptions) error {
	cfg := g.config()
	switch {
	case opts.start != "":
		r, err := wallet.StartRecovery(ctx, cfg, wallet.RecoverOptions{Owner: opts.start, Delay: opts.delay})
		if err != nil {
			return err
		}
		g.note("medwallet: read this code to each guardian; they run 'medwallet guardian approve %s'", r.Code)
		if opts.delay > 0 {
			g.note("medwallet: guardians can approve from %s; until then your other devices can refuse it", r.Ready.Format(time.RFC3339))
		}
		g.note("medwallet: then run 'medwallet recover --finish' here")
		return g.emit(r, func(out io.Writer) { fmt.Fprintln(out, r.Code) })
	case opts.finish:
		end := time.Now().Add(opts.wait)
		for {
			w, p, err := wallet.FinishRecovery(ctx, cfg)
			if errors.Is(err, wallet.ErrRecoveryPending) && time.Now().Before(end) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(recoverPoll):
				}
				continue
			}
			if errors.Is(err, wallet.ErrRecoveryPending) {
				return withHint(err, "run 'medwallet recover --finish' again once more guardians approved, or add --wait 30m")
			}
			if err != nil {
				return err
			}
			j := recoverJSON{RecoveryProgress: p}
			g.note("medwallet: identity %s restored from %d guardian approvals", w.ID(), p.Approvals)
			limitLedgerMemory()
			res, err := w.Sync(ctx)
			if err != nil {
				return fmt.Errorf("the identity is back, but the sync failed ('medwallet sync' tries again): %w", err)
			}
			j.Sync = &res
			return g.emit(j, func(out io.Writer) {
				fmt.Fprintf(out, "restored %s\n", w.ID())
				fmt.Fprintf(out, "%d new ledger entries, %d records on the network (%d restored here), %d grants\n",
					res.Entries, res.Records, res.Restored, res.Grants)
			})
		}
	case opts.refuse != "":
		w, err := g.openWallet()
		if err != nil {
			return err
		}
		r, err := w.RefuseRecovery(ctx, opts.refuse)
		if err != nil {
			return err
		}
		g.note("medwallet: guardians will not approve this recovery; consider 'medwallet guardian rotate' if a guardian's key may be known to someone else")
		return g.emit(r, func(out io.Writer) { printRecovery(out, r) })
	}
	return fmt.Errorf("recover needs --start ID, --finish or --refuse CODE: %w", wallet.ErrInvalid)
}
