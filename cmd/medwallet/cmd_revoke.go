package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

// revokeOptions are the flags of revoke.
type revokeOptions struct {
	rotate bool
}

func newRevokeCommand(g *globalOptions) *cobra.Command {
	var opts revokeOptions
	cmd := &cobra.Command{
		Use:   "revoke GRANT_ID|LINK",
		Short: "Revoke one of your grants",
		Long: `Sign the revocation of a grant you made (ID or unique prefix of at least 8
hex digits). Peers stop serving under it as soon as they receive the
revocation. What the grantee already imported cannot be recalled.

With --rotate, the records of the grant are also re-encrypted under new
keys and re-sharded; the new manifests are saved, replicated and anchored,
and the old shares are removed from the peers, so that the key material the
grantee saved opens nothing new. The other grantees' active grants on those
records are re-issued with the new keys (and the old ones revoked); the
revoked grantee gets nothing new. --rotate on a grant already revoked only
rotates, so a rotation that failed part way can be run again.

Given a SMART Health Link you shared (its ID from 'medwallet share --list',
or a prefix of 8 or more characters), revoke closes the link: every peer
refuses it once it has the revocation.`,
		Example: "  medwallet revoke 9c2e41d0\n  medwallet revoke 9c2e41d0 --rotate\n  medwallet revoke 9c2e41d0 --json",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runRevoke(cmd.Context(), opts, g, args) },
	}
	cmd.Flags().BoolVar(&opts.rotate, "rotate", false, "also re-encrypt the grant's records under new keys and re-issue the other grants on them")
	return cmd
}

type rotatedRecordJSON struct {
	ID            string `json:"id"`
	OldManifest   string `json:"old_manifest"`
	NewManifest   string `json:"new_manifest"`
	OldSharesKept bool   `json:"old_shares_kept"`
}

type replacedGrantJSON struct {
	Old grantJSON `json:"old"`
	New grantJSON `json:"new"`
}

type rotateJSON struct {
	Grant    grantJSON           `json:"grant"`
	Records  []rotatedRecordJSON `json:"records"`
	Replaced []replacedGrantJSON `json:"replaced"`
	Stale    []grantJSON         `json:"stale"`
}

// runRevoke revokes the grant args[0], and with --rotate re-keys its records.
func runRevoke(ctx context.Context, opts revokeOptions, g *globalOptions, args []string) error {
	ref, rotate := args[0], opts.rotate
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	if isLink, _ := w.FindLink(ref); isLink && !rotate {
		return runRevokeLink(ctx, g, w, ref) // a SMART Health Link (cmd_share.go)
	}
	gi, err := w.Revoke(ctx, ref)
	if err != nil && !(rotate && errors.Is(err, wallet.ErrExists)) {
		return err
	}
	if !rotate {
		g.note("medwallet: peers stop serving under this grant once they receive the revocation; what %s already imported cannot be recalled",
			granteeText(gi))
		return g.emit(newGrantJSON(gi), func(out io.Writer) { fmt.Fprintf(out, "revoked %s\n", gi.ID) })
	}
	res, rerr := w.Rotate(ctx, ref)
	gi = res.Grant
	j := rotateJSON{Grant: newGrantJSON(gi), Records: []rotatedRecordJSON{}, Replaced: []replacedGrantJSON{}, Stale: []grantJSON{}}
	for _, r := range res.Records {
		j.Records = append(j.Records, rotatedRecordJSON{ID: r.ID, OldManifest: fmt.Sprintf("%x", r.OldManifest[:]),
			NewManifest: fmt.Sprintf("%x", r.NewManifest[:]), OldSharesKept: r.OldSharesKept})
	}
	for _, r := range res.Replaced {
		j.Replaced = append(j.Replaced, replacedGrantJSON{Old: newGrantJSON(r.Old), New: newGrantJSON(r.New)})
	}
	for _, s := range res.Stale {
		j.Stale = append(j.Stale, newGrantJSON(s))
	}
	if rerr != nil {
		// Say what was done before the failure, then fail.
		for _, r := range res.Records {
			g.note("medwallet: record %s rotated", r.ID)
		}
		for _, r := range res.Replaced {
			g.note("medwallet: grant %s to %s replaced by %s", r.Old.ID.String()[:12], who(r.New.GranteeName, r.New.Grantee.Short()), r.New.ID.String()[:12])
		}
		return rerr
	}
	g.note("medwallet: the revoked party's saved key material opens none of the new shares; what %s already imported cannot be recalled",
		granteeText(gi))
	for _, s := range res.Stale {
		g.note("medwallet: grant %s to %s is still active but holds only old keys: revoke it too", s.ID.String()[:12], who(s.GranteeName, s.Grantee.Short()))
	}
	return g.emit(j, func(out io.Writer) {
		fmt.Fprintf(out, "revoked %s\n", gi.ID)
		for _, r := range res.Records {
			fmt.Fprintf(out, "rotated record %s\n", r.ID)
		}
		for _, r := range res.Replaced {
			fmt.Fprintf(out, "replaced grant %s to %s with %s\n", r.Old.ID, who(r.New.GranteeName, r.New.Grantee.Short()), r.New.ID)
		}
	})
}
