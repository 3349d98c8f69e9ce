package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet/demo"
)

type demoOptions struct {
	dir   string
	data  string
	peers int
}

func newDemoCommand(g *globalOptions) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole medwallet story on this machine and check every step",
		Long: `Run the medwallet story end to end on a local network of peers started in
this process: a patient, a clinician and an insurer exchange cards; the
patient adds real FHIR records (encrypted, then cut into shares held by
different peers: on the default 6 peers, 5 shares of which any 3 rebuild a
record), grants, the clinician
imports, the insurer gets only the claims, a credentialed emergency
physician breaks the glass and the patient reviews it, the patient revokes
and the clinician is denied, two peers go down and the patient still reads
her record; then the access log, the accounting of disclosures, an offline
audit, and a restore after device loss. Each step is narrated for the
patient and checked; the exit code is 0 only if every step behaved as it
should. The demo's keys live in memory only and never touch your keyring or
--home.`,
		Example: `  medwallet demo
  medwallet demo --dir /tmp/demo   # keep the demo's files`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), o, g) },
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "keep the demo's wallets in this directory (default: a temporary one, removed afterwards)")
	cmd.Flags().StringVar(&o.data, "data", "", `directory of sample records (default: ../shared/data when present, else a built-in record; "builtin" forces it)`)
	cmd.Flags().IntVar(&o.peers, "peers", demo.DefaultPeers, "peers in the local network")
	return cmd
}

func runDemo(ctx context.Context, o demoOptions, g *globalOptions) error {
	return demo.Run(ctx, demo.Options{Dir: o.dir, DataDir: o.data, Peers: o.peers, Out: g.stdout})
}
