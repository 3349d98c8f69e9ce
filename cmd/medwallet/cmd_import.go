package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func init() { register(newImportCommand) }

type importOptions struct {
	from string
	out  string
}

func newImportCommand(g *globalOptions) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import GRANT_ID | --from CONTACT",
		Short: "Fetch, verify and decrypt the records of a grant made to you",
		Long: `Fetch the records a grant covers: for each record, the manifest copy the
patient encrypted to you (its signature and key are checked against the
grant), then at least k shares through every peer's consent check (each
request is signed by you and logged on the ledger), verified block by block
and decrypted into --out. Files are named RECORD_ID.EXT and never
overwritten. A denial exits with code 4.`,
		Example: `  medwallet import 3f2a9c1b --out ./alice
  medwallet import --from Alice --out ./alice --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			grant := ""
			if len(args) == 1 {
				grant = args[0]
			}
			return runImport(cmd, grant, o, g)
		},
	}
	cmd.Flags().StringVar(&o.from, "from", "", "import every active grant from this contact")
	cmd.Flags().StringVar(&o.out, "out", ".", "directory for the records")
	return cmd
}

// importJSON is the --json shape of one imported record.
type importJSON struct {
	Grant  string `json:"grant"`
	Owner  string `json:"owner"`
	Record string `json:"record"`
	File   string `json:"file"`
	Size   int64  `json:"size"`
	Format string `json:"format"`
}

func runImport(cmd *cobra.Command, grant string, o importOptions, g *globalOptions) error {
	if (grant == "") == (o.from == "") {
		return usageError{fmt.Errorf("give a GRANT_ID or --from CONTACT, not both")}
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	recs, err := w.Import(cmd.Context(), wallet.ImportOptions{Grant: grant, From: o.from, OutDir: o.out})
	out := make([]importJSON, 0, len(recs))
	for _, r := range recs {
		out = append(out, importJSON{Grant: r.Grant.String(), Owner: string(r.Owner), Record: r.Record, File: r.File, Size: r.Size, Format: r.Format})
	}
	if err != nil {
		for _, r := range out {
			g.note("medwallet: imported %s before the error", r.File)
		}
		return err
	}
	g.note("medwallet: imported %d record(s); they are decrypted on this disk now", len(out))
	return g.emit(out, func(w io.Writer) {
		for _, r := range out {
			fmt.Fprintln(w, r.File)
		}
	})
}
