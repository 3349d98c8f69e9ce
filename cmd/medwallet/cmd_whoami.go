package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

type whoamiOptions struct {
	card bool
}

func newWhoamiCommand(g *globalOptions) *cobra.Command {
	var o whoamiOptions
	cmd := &cobra.Command{
		Use:   "whoami [--card]",
		Short: "Show this wallet's identity",
		Long: `Show the wallet's ID, name, role and age recipient. With --card, print the
signed one-line identity card that others add with 'medwallet contact add'.`,
		Example: `  medwallet whoami
  medwallet whoami --card > alice.card
  medwallet whoami --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWhoami(cmd.Context(), o, g) },
	}
	cmd.Flags().BoolVar(&o.card, "card", false, "print the signed identity card")
	return cmd
}

// identityJSON is the --json shape of init, whoami and key import.
type identityJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Role           string    `json:"role"`
	AgeRecipient   string    `json:"age_recipient"`
	Created        time.Time `json:"created"`
	Home           string    `json:"home"`
	KeyringBackend string    `json:"keyring_backend"`
	Card           string    `json:"card,omitempty"`
}

func newIdentityJSON(w *wallet.Wallet, withCard bool) identityJSON {
	c := w.Card()
	j := identityJSON{
		ID: string(c.ID), Name: c.Name, Role: c.Role, AgeRecipient: c.AgeRecipient,
		Created: time.Unix(c.Created, 0).UTC(), Home: w.Home(), KeyringBackend: w.KeyringBackend(),
	}
	if withCard {
		j.Card = c.String()
	}
	return j
}

func runWhoami(_ context.Context, o whoamiOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	j := newIdentityJSON(w, o.card)
	return g.emit(j, func(out io.Writer) {
		if o.card {
			fmt.Fprintln(out, j.Card)
			return
		}
		fmt.Fprintf(out, "id:            %s\nname:          %s\nrole:          %s\nage recipient: %s\ncreated:       %s\nkeyring:       %s\n",
			j.ID, j.Name, j.Role, j.AgeRecipient, j.Created.Format(time.RFC3339), j.KeyringBackend)
	})
}
