package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/wallet"
)

// peersOptions are the flags of `medwallet peers` (it has none of its own).
type peersOptions struct{}

func newPeersCommand(g *globalOptions) *cobra.Command {
	var o peersOptions
	return &cobra.Command{
		Use:   "peers",
		Short: "Show the configured peers and whether they answer",
		Long: `Dial every peer of the network file and ping it. The check uses a throw-away
key, so it needs no keyring and reveals nothing about the wallet.

CONN says how the peer is connected: direct, or relayed (through a relay,
for a peer behind NAT, within the relay's budget), and over which
transport. A peer reached through its relay is given a few seconds for
hole punching to turn the connection into a direct one.`,
		Example: "  medwallet peers --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runPeers(cmd.Context(), o, g) },
	}
}

func runPeers(ctx context.Context, _ peersOptions, g *globalOptions) error {
	hs, err := wallet.CheckPeers(ctx, g.config())
	if err != nil {
		return withHint(err, "start a network with 'medwallet devnet' and set $MEDWALLET_NETWORK")
	}
	up := 0
	for _, h := range hs {
		if h.Reachable {
			up++
		}
	}
	err = g.emit(hs, func(out io.Writer) {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tSTATUS\tRTT\tCONN\tADDRESS")
		for _, h := range hs {
			status, rtt, conn := "up", h.RTT.Round(10*time.Microsecond).String(), "-"
			if !h.Reachable {
				status, rtt = h.Error, "-"
			}
			addr := ""
			if len(h.Addrs) > 0 {
				addr = h.Addrs[0]
			}
			if len(h.Conns) > 0 {
				// The best connection: direct ones sort first.
				conn, addr = h.Conns[0].Kind+"/"+h.Conns[0].Transport, h.Conns[0].Addr
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.ID, status, rtt, conn, addr)
		}
		tw.Flush()
	})
	if err != nil {
		return err
	}
	g.note("medwallet: %d of %d peers answer", up, len(hs))
	if up == 0 {
		return fmt.Errorf("%w: no peer answers", client.ErrNoPeers)
	}
	return nil
}
