package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

type deviceRevokeOptions struct{}

func newDeviceRevokeCommand(g *globalOptions) *cobra.Command {
	var o deviceRevokeOptions
	return &cobra.Command{
		Use:   "revoke ID|LABEL",
		Short: "Revoke one of your devices",
		Long: `Revoke a paired device (its label, its ID or a prefix of at least 8
characters of it). The primary signs a device-revoke entry naming the
device's last entry it holds: every peer then refuses the grants the device
signs after it and every request the device makes for your records. Grants
it made before stay until you revoke them. What the device already
downloaded, and the age key it holds, cannot be recalled: records already
on it stay readable there.`,
		Example: "  medwallet device revoke laptop\n  medwallet device revoke 12D3KooWAbCd",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runDeviceRevoke(cmd.Context(), o, g, args) },
	}
}

func runDeviceRevoke(ctx context.Context, _ deviceRevokeOptions, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	d, err := w.RevokeDevice(ctx, args[0])
	if err != nil {
		return primaryHint(err)
	}
	g.note("medwallet: peers refuse %q from now on; what it already holds cannot be recalled", d.Label)
	return g.emit(newDeviceJSON(d), func(out io.Writer) { fmt.Fprintf(out, "revoked %s %s\n", d.Label, d.ID) })
}
