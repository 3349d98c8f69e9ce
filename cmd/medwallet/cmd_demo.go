package main

import (
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
patient adds real FHIR records (encrypted, erasure-coded, one share per
peer), grants, the clinician imports, the patient revokes and the clinician
is denied; then the access log, the accounting of disclosures, an offline
audit, and a restore after device loss. Each step is narrated and checked;
the exit code is 0 only if every step behaved as it should. The demo's keys
live in memory only and never touch your keyring or --home.`,
		Example: `  medwallet demo
  medwallet demo --dir /tmp/demo   # keep the demo's files`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), demo.Options{Dir: o.dir, DataDir: o.data, Peers: o.peers, Out: g.stdout})
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "keep the demo's wallets in this directory (default: a temporary one, removed afterwards)")
	cmd.Flags().StringVar(&o.data, "data", "", `directory of sample records (default: ../shared/data when present, else a built-in record; "builtin" forces it)`)
	cmd.Flags().IntVar(&o.peers, "peers", 6, "peers in the local network")
	return cmd
}
