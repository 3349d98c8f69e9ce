package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/devnet"
)

type devnetOptions struct {
	peers    int
	dir      string
	logLevel string
}

func newDevnetCommand(g *globalOptions) *cobra.Command {
	var o devnetOptions
	cmd := &cobra.Command{
		Use:   "devnet [--peers N] [--dir DIR]",
		Short: "Run N peers on loopback in one process, for trying medwallet on one machine",
		Long: `Run a local network of N peers on loopback in this process and write the
network file the CLI reads (DIR/network.json). Point the CLI at it with
$MEDWALLET_NETWORK or --network. Stops on SIGINT or SIGTERM; started again
on the same --dir, the peers come back with their data.`,
		Example: `  medwallet devnet --peers 6 --dir /tmp/devnet &
  export MEDWALLET_NETWORK=/tmp/devnet/network.json
  medwallet record add labs.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDevnet(cmd.Context(), o, g) },
	}
	cmd.Flags().IntVar(&o.peers, "peers", 6, "number of peers")
	cmd.Flags().StringVar(&o.dir, "dir", "", "directory for the peers' data and network.json (default HOME/devnet)")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}

// devnetJSON is the --json shape of a started devnet.
type devnetJSON struct {
	Network string   `json:"network"`
	Peers   []string `json:"peers"`
}

func runDevnet(ctx context.Context, o devnetOptions, g *globalOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError{fmt.Errorf("bad --log-level %q", o.logLevel)}
	}
	if o.dir == "" {
		o.dir = filepath.Join(g.home, "devnet")
	}
	if abs, err := filepath.Abs(o.dir); err == nil {
		o.dir = abs
	}
	d, err := devnet.Start(ctx, devnet.Options{Peers: o.peers, Dir: o.dir,
		Logger: slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := g.emit(devnetJSON{Network: d.NetworkPath(), Peers: d.Addrs()}, func(out io.Writer) {
		for _, a := range d.Addrs() {
			fmt.Fprintln(out, a)
		}
	}); err != nil {
		return err
	}
	g.note("medwallet: %d peers running; use them with:\n  export MEDWALLET_NETWORK=%s", len(d.Peers), d.NetworkPath())
	if f, ok := g.stdout.(*os.File); ok {
		f.Sync()
	}
	<-ctx.Done()
	return d.Close()
}
