package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/pairing"
	"github.com/medwallet/medwallet/wallet"
)

type deviceJoinOptions struct {
	timeout time.Duration
}

func newDeviceJoinCommand(g *globalOptions) *cobra.Command {
	var o deviceJoinOptions
	cmd := &cobra.Command{
		Use:   "join CODE",
		Short: "Make this a new device of an identity, with the code device add shows",
		Long: `Join an identity as a new device: CODE is what 'medwallet device add' shows on
the primary (12 words, "@", its address; words may be separated by "-" or
spaces, quote them). This device makes its own keys, proves the code to the
primary and checks the primary's proof before it accepts anything, then
stores the identity's card and age key and its own key in the keyring,
under --home. A wrong, expired or used code leaves nothing behind. When
the primary has a network file, this device gets it, publishes its own
feed and fetches the identity's ledger.`,
		Example: "  medwallet --home ~/laptop device join 'abandon-ability-...@/ip4/192.0.2.7/tcp/4100/p2p/12D3KooW...'",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runDeviceJoin(cmd.Context(), o, g, args) },
	}
	cmd.Flags().DurationVar(&o.timeout, "timeout", time.Minute, "how long to try to reach the primary")
	return cmd
}

func runDeviceJoin(ctx context.Context, o deviceJoinOptions, g *globalOptions, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	w, err := wallet.JoinDevice(ctx, g.config(), args[0])
	switch {
	case errors.Is(err, pairing.ErrDenied):
		return withHint(err, "check the words against the primary's screen; after a few wrong tries run 'medwallet device add' again")
	case errors.Is(err, pairing.ErrExpired), errors.Is(err, pairing.ErrUsed):
		return withHint(err, "run 'medwallet device add' on the primary for a new code")
	case errors.Is(err, pairing.ErrBadCode):
		return withHint(err, "type the 12 words and the address exactly as the primary shows them")
	case err != nil:
		return err
	}
	g.note("medwallet: this is now device %s of %s (keyring: %s)", w.FeedID(), w.ID(), w.KeyringBackend())
	if err := w.PublishDevice(ctx); err != nil {
		g.note("medwallet: the device could not reach the network yet (%v): run 'medwallet sync' later", err)
	}
	return g.emit(map[string]string{"id": string(w.ID()), "device": string(w.FeedID())},
		func(out io.Writer) { fmt.Fprintln(out, w.FeedID()) })
}
