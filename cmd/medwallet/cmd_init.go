package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

type initOptions struct {
	name string
	role string
}

func newInitCommand(g *globalOptions) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --name NAME [--role ROLE]",
		Short: "Create a new identity in the OS keyring",
		Long: `Create a new medwallet identity: an Ed25519 signing key (its libp2p peer ID
is your medwallet ID) and an age X25519 key for receiving encrypted records.
The secrets go to the OS keyring; only the signed identity card is written
under --home. init refuses to replace an existing wallet.`,
		Example: `  medwallet init --name "Alice Example"
  medwallet init --name "Dr Bob" --role clinician --keyring-backend file`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runInit(cmd.Context(), o, g) },
	}
	cmd.Flags().StringVar(&o.name, "name", "", "display name shown on your identity card (required)")
	cmd.Flags().StringVar(&o.role, "role", "patient", "role: patient, clinician, insurer, peer, issuer or auditor")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func runInit(_ context.Context, o initOptions, g *globalOptions) error {
	w, err := wallet.Init(g.config(), o.name, o.role)
	if err != nil {
		return err
	}
	g.note("medwallet: created identity %s in %s (keyring: %s)", w.ID(), w.Home(), w.KeyringBackend())
	g.note("medwallet: back it up now with 'medwallet key export --out FILE': losing the keyring loses the identity")
	g.noteKeyringFallback(w)
	return g.emit(newIdentityJSON(w, false), func(out io.Writer) { fmt.Fprintln(out, w.ID()) })
}
