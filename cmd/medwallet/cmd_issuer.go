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
ISS/.well-known/jwks.json); never silently.`,
		Example: `  medwallet issuer add issuer-jwks.json --name spec-example --iss https://spec.smarthealth.cards/examples/issuer
  medwallet issuer add https://myvaccinerecord.cdph.ca.gov/creds --name california
  medwallet issuer ls
  medwallet issuer rm california`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newIssuerAddCommand(g), newIssuerLsCommand(g), newIssuerRmCommand(g))
	return cmd
}

// issuerJSON is the --json shape of a trusted issuer.
type issuerJSON struct {
	Name    string    `json:"name"`
	ISS     string    `json:"iss"`
	Source  string    `json:"source"`
	Added   time.Time `json:"added"`
	Kids    []string  `json:"kids"`
	Skipped int       `json:"skipped_keys,omitempty"`
}

func newIssuerJSON(i wallet.IssuerInfo) issuerJSON {
	return issuerJSON{Name: i.Name, ISS: i.ISS, Source: i.Source, Added: i.Added, Kids: i.Kids, Skipped: i.Skipped}
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
		fmt.Fprintln(tw, "NAME\tISS\tKEYS\tADDED")
		for _, i := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Name, i.ISS, strings.Join(i.Kids, ","), i.Added.Format("2006-01-02"))
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
