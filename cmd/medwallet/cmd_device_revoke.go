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
takes about as long as reading and storing every record again. Before
re-keying, you get a new age key (the device held the old one): the keyring
keeps the old ones to read older items, an age-key entry on your ledger
names the new one, and the new key is stored on your peers encrypted to
each device still standing and in escrow for your signing key (so an older
'key export' still reads your records after 'sync'). The new manifests and
the backup of local state are sealed to it. Your other devices get the new
key and manifests on their next 'sync'. What the device already downloaded
cannot be recalled. If anything stops half-way, run the command again: it
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
	g.note("medwallet: peers refuse %q from now on; the record keys and the age key it saw open nothing new any more; what it already holds cannot be recalled", d.Label)
	if n := len(rk.Delivery.Devices); n > 0 {
		g.note("medwallet: your other devices (%d) get the new age key on their next 'sync'", n)
	}
	j := deviceRevokeJSON{deviceJSON: newDeviceJSON(d), Rekeyed: []rotatedRecordJSON{}, Replaced: []replacedGrantJSON{},
		AgeRecipient: rk.AgeRecipient, AgeKeyRotated: rk.AgeKeyRotated, DeliveredTo: []string{}, Escrowed: rk.Delivery.Escrowed}
	for _, dev := range rk.Delivery.Devices {
		j.DeliveredTo = append(j.DeliveredTo, string(dev))
	}
	for _, r := range rk.Records {
		j.Rekeyed = append(j.Rekeyed, rotatedRecordJSON{ID: r.ID, OldManifest: fmt.Sprintf("%x", r.OldManifest[:]),
			NewManifest: fmt.Sprintf("%x", r.NewManifest[:]), OldSharesKept: r.OldSharesKept})
	}
	for _, r := range rk.Replaced {
		j.Replaced = append(j.Replaced, replacedGrantJSON{Old: newGrantJSON(r.Old), New: newGrantJSON(r.New)})
	}
	return g.emit(j, func(out io.Writer) {
		fmt.Fprintf(out, "revoked %s %s\n", d.Label, d.ID)
		if rk.AgeKeyRotated {
			fmt.Fprintf(out, "new age key %s\n", rk.AgeRecipient)
		}
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
	// The patient's current age recipient after the revoke, whether this
	// run rotated to it, the devices it was stored for and whether it was
	// escrowed for the signing key.
	AgeRecipient  string   `json:"age_recipient"`
	AgeKeyRotated bool     `json:"age_key_rotated"`
	DeliveredTo   []string `json:"delivered_to"`
	Escrowed      bool     `json:"escrowed"`
}
