package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func newDeviceCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Pair, list and revoke your other devices",
		Long: `A patient may use several devices: each signs with a key of its own, in a
feed of its own, so two devices that grant or revoke at the same time never
fork your ledger. The first device (made by init) is the primary: it adds
and revokes devices and adds records. A paired device holds your age key
(it reads your records) but never the primary's signing key; it grants,
revokes grants, imports and syncs.

Pair: run 'medwallet device add' on the primary, then type the code it shows
(12 words and an address, or scan the QR code) into 'medwallet device join
CODE' on the new device, within 10 minutes. The code works once.`,
		Example: "  medwallet device add --label laptop\n  medwallet --home ~/laptop device join 'word-word-...@/ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...'\n  medwallet device ls\n  medwallet device revoke laptop",
	}
	cmd.AddCommand(newDeviceAddCommand(g), newDeviceJoinCommand(g), newDeviceLsCommand(g), newDeviceRevokeCommand(g))
	return cmd
}

// primaryHint words what to do when a paired device tries what only the
// primary does.
func primaryHint(err error) error {
	if errors.Is(err, wallet.ErrPrimaryOnly) {
		return withHint(err, "run it on the primary device (the one made by 'medwallet init')")
	}
	return err
}

// deviceJSON is one device in --json output.
type deviceJSON struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	Added    string `json:"added"`
	Revoked  bool   `json:"revoked"`
	Cut      uint64 `json:"cut,omitempty"`
	This     bool   `json:"this"`
	OnLedger bool   `json:"on_ledger"`
}

func newDeviceJSON(d wallet.DeviceInfo) deviceJSON {
	return deviceJSON{ID: string(d.ID), Label: d.Label, Added: d.Added.UTC().Format(time.RFC3339), Revoked: d.Revoked,
		Cut: d.Cut, This: d.This, OnLedger: d.OnLedger}
}

type deviceLsOptions struct{}

func newDeviceLsCommand(g *globalOptions) *cobra.Command {
	var o deviceLsOptions
	return &cobra.Command{
		Use:   "ls",
		Short: "List your devices",
		Long: `List the devices paired with your identity: label, ID, when it was added,
whether it was revoked, and which one this is. The primary is not listed.
Run 'medwallet sync' first to see devices paired elsewhere.`,
		Example: "  medwallet device ls\n  medwallet device ls --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runDeviceLs(cmd.Context(), o, g) },
	}
}

func runDeviceLs(ctx context.Context, _ deviceLsOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	ds, err := w.Devices(ctx)
	if err != nil {
		return err
	}
	out := make([]deviceJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, newDeviceJSON(d))
	}
	return g.emit(out, func(wr io.Writer) {
		if w.IsDevice() {
			fmt.Fprintf(g.stderr, "medwallet: this is a paired device (%s) of %s\n", w.FeedID().Short(), w.ID().Short())
		}
		tw := tabwriter.NewWriter(wr, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LABEL\tID\tADDED\tSTATE")
		for _, d := range ds {
			state := "active"
			switch {
			case d.Revoked:
				state = fmt.Sprintf("revoked (entries after #%d do not count)", d.Cut)
			case !d.OnLedger:
				state = "not on the ledger yet"
			}
			if d.This {
				state += ", this device"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Label, d.ID, d.Added.UTC().Format(time.DateOnly), state)
		}
		tw.Flush()
	})
}
