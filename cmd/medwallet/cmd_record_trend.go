package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/wallet"
)

// recordTrendOptions are the flags of record trend.
type recordTrendOptions struct {
	records []string
}

func newRecordTrendCommand(g *globalOptions) *cobra.Command {
	var o recordTrendOptions
	cmd := &cobra.Command{
		Use:   "trend NAME|LOINC [--records ID,...]",
		Short: "Draw a result's values over time across your records",
		Long: `Find a laboratory result or vital sign in every FHIR record (or the ones
named with --records), each decrypted in memory only, and draw its numeric
values oldest to newest with the reference range, then list them newest
first. NAME is the result's name as 'record show' prints it (any case; a
part of it when that names one result), LOINC its code (e.g. 2339-0).
Values in a unit other than the most common one are left out and counted.`,
		Example: `  medwallet record trend glucose
  medwallet record trend 4548-4 --records 3fa1,77b2
  medwallet record trend "body weight" --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRecordTrend(cmd.Context(), o, g, args) },
	}
	cmd.Flags().StringSliceVar(&o.records, "records", nil, "read only these records (IDs or prefixes, comma-separated or repeated)")
	return cmd
}

// runRecordTrend prints the trend of the result args[0].
func runRecordTrend(ctx context.Context, o recordTrendOptions, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	t, err := w.Trend(ctx, args[0], wallet.TrendOptions{Records: o.records, RecordOptions: wallet.RecordOptions{Local: g.localShares}})
	if err != nil {
		return err
	}
	return g.emit(t, func(out io.Writer) { _ = recordview.RenderTrend(out, t, 80) })
}
