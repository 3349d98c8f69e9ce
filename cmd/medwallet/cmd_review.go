package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// reviewOptions are the flags of review.
type reviewOptions struct {
	ok, dispute bool
	note        string
}

func newReviewCommand(g *globalOptions) *cobra.Command {
	var opts reviewOptions
	cmd := &cobra.Command{
		Use:   "review ACCESS_ID --ok|--dispute [--note TEXT]",
		Short: "Review an emergency access to your records",
		Long: `Record on the ledger your review of an emergency (break-glass) access:
--ok if it was justified, --dispute if not. ACCESS_ID is the emergency
access ID (or a unique prefix of at least 8 hex digits) that 'medwallet
audit verify', 'medwallet emergency ls' and 'medwallet log' show. The note
is encrypted to you.`,
		Example: "  medwallet review 5be0c1d2 --ok\n  medwallet review 5be0c1d2 --dispute --note \"I was not in hospital that day\"",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runReview(cmd.Context(), opts, g, args) },
	}
	cmd.Flags().BoolVar(&opts.ok, "ok", false, "the access was justified")
	cmd.Flags().BoolVar(&opts.dispute, "dispute", false, "the access was not justified")
	cmd.Flags().StringVar(&opts.note, "note", "", "a note (encrypted to you)")
	return cmd
}

// runReview records the review of the emergency access args[0].
func runReview(ctx context.Context, opts reviewOptions, g *globalOptions, args []string) error {
	if opts.ok == opts.dispute {
		return usageError{fmt.Errorf("give exactly one of --ok and --dispute")}
	}
	outcome := "ok"
	if opts.dispute {
		outcome = "dispute"
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	ea, err := w.Review(ctx, args[0], outcome, opts.note)
	if err != nil {
		return err
	}
	j := newEmergencyJSON(ea)
	return g.emit(j, func(out io.Writer) { fmt.Fprintf(out, "reviewed %s: %s\n", j.ID, j.Review) })
}
