package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func newIssuerCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "Manage the SMART Health Card issuers whose signatures you trust",
		Long: `A SMART Health Card is signed by its issuer (a state registry, a
pharmacy, a clinic); the wallet verifies the signature against the keys of
the issuers you trust, kept in HOME/issuers (one JWKS each), so cards
verify offline. Add an issuer from a JWKS file (with the iss URL its cards
name) or from its URL when online (the keys are fetched once from
ISS/.well-known/jwks.json); never silently. An issuer that may revoke
cards (a key with a crlVersion) publishes a revocation list per key: it
is fetched with the keys online, or later with 'issuer crl', and a card
on it is refused as revoked.`,
		Example: `  medwallet issuer add issuer-jwks.json --name spec-example --iss https://spec.smarthealth.cards/examples/issuer
  medwallet issuer add https://myvaccinerecord.cdph.ca.gov/creds --name california
  medwallet issuer ls
  medwallet issuer crl california
  medwallet issuer rm california`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newIssuerAddCommand(g), newIssuerLsCommand(g), newIssuerRmCommand(g), newIssuerCRLCommand(g))
	return cmd
}

// issuerJSON is the --json shape of a trusted issuer.
type issuerJSON struct {
	Name    string        `json:"name"`
	ISS     string        `json:"iss"`
	Source  string        `json:"source"`
	Added   time.Time     `json:"added"`
	Kids    []string      `json:"kids"`
	Skipped int           `json:"skipped_keys,omitempty"`
	Lists   []crlListJSON `json:"revocation_lists,omitempty"`
}

// crlListJSON is the --json shape of one key's revocation list: the
// key's crlVersion, and the list held (ctr 0: none).
type crlListJSON struct {
	Kid        string    `json:"kid"`
	KeyVersion int       `json:"key_crl_version"`
	Ctr        int       `json:"ctr"`
	Revoked    int       `json:"revoked_ids"`
	Current    bool      `json:"current"`
	Source     string    `json:"source,omitempty"`
	Updated    time.Time `json:"updated,omitzero"`
}

func newIssuerJSON(i wallet.IssuerInfo) issuerJSON {
	out := issuerJSON{Name: i.Name, ISS: i.ISS, Source: i.Source, Added: i.Added, Kids: i.Kids, Skipped: i.Skipped}
	for _, l := range i.Lists {
		out.Lists = append(out.Lists, crlListJSON{Kid: l.Kid, KeyVersion: l.KeyVersion, Ctr: l.Ctr, Revoked: l.RIDs,
			Current: !l.Stale(), Source: l.Source, Updated: l.Updated})
	}
	return out
}

// listsText sums up an issuer's revocation lists for issuer ls: "-" when
// no key has one, else each key's as "list N" or "MISSING list N".
func listsText(i issuerJSON) string {
	if len(i.Lists) == 0 {
		return "-"
	}
	var parts []string
	for _, l := range i.Lists {
		switch {
		case l.Ctr == 0:
			parts = append(parts, fmt.Sprintf("MISSING list %d", l.KeyVersion))
		case !l.Current:
			parts = append(parts, fmt.Sprintf("list %d, OUT OF DATE (key says %d)", l.Ctr, l.KeyVersion))
		default:
			parts = append(parts, fmt.Sprintf("list %d (%d revoked)", l.Ctr, l.Revoked))
		}
	}
	return strings.Join(parts, "; ")
}

// noteStaleLists tells the user which keys' revocation lists are missing
// or out of date.
func noteStaleLists(g *globalOptions, i wallet.IssuerInfo) {
	for _, l := range i.Lists {
		if l.Stale() {
			g.note("medwallet: the issuer may revoke cards of key %s and no current revocation list is held (list %d): fetch it with 'medwallet issuer crl %s', or name a list file",
				l.Kid, l.KeyVersion, quoteArg(i.Name))
		}
	}
}

// issuerAddOptions are the flags of issuer add.
type issuerAddOptions struct {
	name, iss string
}

func newIssuerAddCommand(g *globalOptions) *cobra.Command {
	var o issuerAddOptions
	cmd := &cobra.Command{
		Use:   "add JWKS-FILE|URL --name NAME [--iss URL]",
		Short: "Trust an issuer's keys for SMART Health Cards",
		Long: `Add the ES256 keys of a JWKS (a file, or the issuer's URL: its
/.well-known/jwks.json is fetched over HTTPS) as a trusted issuer named
NAME. A file needs --iss, the issuer URL its cards carry in iss; for a URL
it defaults to the URL (without /.well-known/jwks.json). Keys that cannot
sign cards (another algorithm or curve, a kid that is not the key's
thumbprint) are skipped and counted.`,
		Example: `  medwallet issuer add issuer-jwks.json --name spec-example --iss https://spec.smarthealth.cards/examples/issuer`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runIssuerAdd(cmd.Context(), o, g, args) },
	}
	cmd.Flags().StringVar(&o.name, "name", "", "local name of the issuer")
	cmd.Flags().StringVar(&o.iss, "iss", "", "the issuer URL its cards name (iss); required with a file")
	cmd.MarkFlagRequired("name")
	return cmd
}

func runIssuerAdd(ctx context.Context, o issuerAddOptions, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	info, err := w.AddIssuer(ctx, wallet.AddIssuerOptions{Source: args[0], Name: o.name, ISS: o.iss})
	if err != nil {
		return err
	}
	g.note("medwallet: trusting %d key(s) of %s as %q for SMART Health Cards", len(info.Kids), info.ISS, info.Name)
	if info.Skipped > 0 {
		g.note("medwallet: skipped %d key(s) that cannot sign cards", info.Skipped)
	}
	noteStaleLists(g, info)
	return g.emit(newIssuerJSON(info), func(out io.Writer) { fmt.Fprintln(out, info.Name) })
}

func newIssuerLsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List the trusted issuers",
		Example: "  medwallet issuer ls\n  medwallet issuer ls --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runIssuerLs(cmd.Context(), g) },
	}
}

func runIssuerLs(ctx context.Context, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	infos, err := w.Issuers(ctx)
	if err != nil {
		return err
	}
	out := make([]issuerJSON, 0, len(infos))
	for _, i := range infos {
		out = append(out, newIssuerJSON(i))
	}
	return g.emit(out, func(o io.Writer) {
		if len(out) == 0 {
			g.note("medwallet: no trusted issuers yet; add one with 'medwallet issuer add JWKS-FILE --name NAME --iss URL'")
			return
		}
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tISS\tKEYS\tADDED\tREVOCATION")
		for _, i := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", i.Name, i.ISS, strings.Join(i.Kids, ","), i.Added.Format("2006-01-02"), listsText(i))
		}
		tw.Flush()
	})
}

func newIssuerRmCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Stop trusting an issuer",
		Long: `Remove a trusted issuer: its cards no longer verify on import. Records
already imported keep the provenance they were verified with.`,
		Example: "  medwallet issuer rm california",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runIssuerRm(cmd.Context(), g, args) },
	}
}

func runIssuerRm(ctx context.Context, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	info, err := w.RemoveIssuer(ctx, args[0])
	if err != nil {
		return err
	}
	return g.emit(removedJSON{Removed: info.Name}, func(out io.Writer) { fmt.Fprintf(out, "removed %s\n", info.Name) })
}

func newIssuerCRLCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "crl NAME [LIST-FILE|URL]",
		Short: "Update a trusted issuer's card revocation lists",
		Long: `An issuer that may revoke cards gives each such key a crlVersion in its
JWKS and publishes the key's revocation list at
ISS/.well-known/crl/KID.json. Without a source, the list of every such
key is fetched over HTTPS (from the URL the keys came from, else the
issuer's iss); with one, that list is read from a file or URL. A list
older than the one held is refused. Cards already imported keep the
status they were imported with; a card on a list is refused on import.`,
		Example: `  medwallet issuer crl california
  medwallet issuer crl spec-example 3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error { return runIssuerCRL(cmd.Context(), g, args) },
	}
}

func runIssuerCRL(ctx context.Context, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	src := ""
	if len(args) == 2 {
		src = args[1]
	}
	info, err := w.UpdateIssuerCRL(ctx, args[0], src, nil)
	if err != nil {
		return err
	}
	noteStaleLists(g, info)
	out := newIssuerJSON(info)
	return g.emit(out, func(o io.Writer) { fmt.Fprintf(o, "%s: %s\n", out.Name, listsText(out)) })
}
