package main

import (
	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet/demo"
)

func init() { register(newDemoCommand) }

type demoOptions struct {
	dir  string
	data string
}

func newDemoCommand(g *globalOptions) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole medwallet story on this machine and check every step",
		Long: `Run the medwallet story end to end in a temporary directory: a patient, a
clinician and an insurer, their identities and cards, records, consent and
the audit. Each step is narrated and checked; the exit code is 0 only if
every step behaved as it should. The demo's keys live in memory only and
never touch your keyring or --home.`,
		Example: `  medwallet demo
  medwallet demo --dir /tmp/demo   # keep the demo's files`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), demo.Options{Dir: o.dir, DataDir: o.data, Out: g.stdout})
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "keep the demo's wallets in this directory (default: a temporary one, removed afterwards)")
	cmd.Flags().StringVar(&o.data, "data", "", "directory of sample records (default: ../shared/data when present)")
	return cmd
}
