package main

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/devnet"
)

func newPeersCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "Show the configured peers and whether they answer",
		Long: `Dial every peer of the network file and ping it. The check uses a throw-away
key, so it needs no keyring and reveals nothing about the wallet.`,
		Example: "  medwallet peers --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runPeers(cmd, g) },
	}
}

func runPeers(cmd *cobra.Command, g *globalOptions) error {
	path := g.network
	if path == "" {
		path = filepath.Join(g.home, devnet.NetworkFile)
	}
	n, err := devnet.ReadNetwork(path)
	if err != nil {
		return withHint(fmt.Errorf("reading the network file: %w", err),
			"start a network with 'medwallet devnet' and set $MEDWALLET_NETWORK")
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	c, err := client.Dial(cmd.Context(), key, n.Peers)
	if err != nil {
		return err
	}
	defer c.Close()
	hs := c.Health(cmd.Context())
	up := 0
	for _, h := range hs {
		if h.Reachable {
			up++
		}
	}
	err = g.emit(hs, func(out io.Writer) {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tSTATUS\tRTT\tADDRESS")
		for _, h := range hs {
			status, rtt := "up", h.RTT.Round(10*time.Microsecond).String()
			if !h.Reachable {
				status, rtt = h.Error, "-"
			}
			addr := ""
			if len(h.Addrs) > 0 {
				addr = h.Addrs[0]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.ID, status, rtt, addr)
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
