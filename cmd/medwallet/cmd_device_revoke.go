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
characters of it), on the primary. The primary signs a device-revoke entry
naming the device's last entry it holds: every peer then refuses the grants
the device signs after it and every request the device makes for your
records. Then every record moves to a new record key (new shares, the old
ones deleted, the new manifest published) and the grants that still stand
are re-issued under the new keys (the old ones revoked), as 'revoke
--rotate' does: the record keys the device saw open nothing any more. This
takes about as long as reading and storing every record again. Your other
devices get the new manifests on their next 'sync'. What the device already
downloaded cannot be recalled, and it still holds your age key (which is
not rotated yet). If re-keying stops half-way, run the command again: it
finishes it.`,
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
	d, rk, err := w.RevokeDevice(ctx, args[0])
	if err != nil {
		if d.Revoked {
			// Say what was done before the failure, then fail.
			for _, r := range rk.Records {
				g.note("medwallet: record %s re-keyed", r.ID)
			}
			for _, r := range rk.Replaced {
				g.note("medwallet: grant %s to %s replaced by %s", r.Old.ID.String()[:12], who(r.New.GranteeName, r.New.Grantee.Short()), r.New.ID.String()[:12])
			}
		}
		return primaryHint(err)
	}
	g.note("medwallet: peers refuse %q from now on; the record keys it saw open nothing any more; what it already holds cannot be recalled", d.Label)
	j := deviceRevokeJSON{deviceJSON: newDeviceJSON(d), Rekeyed: []rotatedRecordJSON{}, Replaced: []replacedGrantJSON{}}
	for _, r := range rk.Records {
		j.Rekeyed = append(j.Rekeyed, rotatedRecordJSON{ID: r.ID, OldManifest: fmt.Sprintf("%x", r.OldManifest[:]),
			NewManifest: fmt.Sprintf("%x", r.NewManifest[:]), OldSharesKept: r.OldSharesKept})
	}
	for _, r := range rk.Replaced {
		j.Replaced = append(j.Replaced, replacedGrantJSON{Old: newGrantJSON(r.Old), New: newGrantJSON(r.New)})
	}
	return g.emit(j, func(out io.Writer) {
		fmt.Fprintf(out, "revoked %s %s\n", d.Label, d.ID)
		for _, r := range rk.Records {
			fmt.Fprintf(out, "re-keyed record %s\n", r.ID)
		}
		for _, r := range rk.Replaced {
			fmt.Fprintf(out, "replaced grant %s to %s with %s\n", r.Old.ID, who(r.New.GranteeName, r.New.Grantee.Short()), r.New.ID)
		}
	})
}

// deviceRevokeJSON is the --json shape of device revoke: the device, the
// records re-keyed and the grants re-issued.
type deviceRevokeJSON struct {
	deviceJSON
	Rekeyed  []rotatedRecordJSON `json:"rekeyed"`
	Replaced []replacedGrantJSON `json:"replaced"`
}
