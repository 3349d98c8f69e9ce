package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

type importOptions struct {
	from      string
	out       string
	emergency bool
	patient   string
	reason    string
	// SMART Health Cards and Links (cmd_import_shc.go)
	shc, shl   string
	passcode   string
	recipient  string
	unverified bool
	label      string
}

func newImportCommand(g *globalOptions) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import GRANT_ID | --from CONTACT | --emergency --patient ID --reason TEXT | --shc FILE | --shl LINK",
		Short: "Fetch, verify and decrypt the records of a grant made to you",
		Long: `Fetch the records a grant covers: for each record, the manifest copy the
patient encrypted to you (its signature and key are checked against the
grant), then at least k shares through every peer's consent check (each
request is signed by you and logged on the ledger), verified block by block
and decrypted into --out. Files are named LABEL-RECORD_ID.EXT (the label
the patient gave the record, made safe for a file name; RECORD_ID.EXT
without one) and never overwritten. A denial exits with code 4 and leaves
no file and no new directory behind. On a terminal, a bar on stderr
follows each large record.

With --emergency (break-glass), a clinician credentialed for the role that
the patient's emergency policy trusts declares the emergency on the ledger
(the reason is encrypted to the patient and to you), then imports the
records the policy covers. Every peer checks the policy, your credential
(issuer, validity, revocation) and the time box, and logs its decision on
the ledger before it releases a share; the patient sees the access at once
and reviews it afterwards.

With --shc FILE ("-" for stdin), import SMART Health Cards as records
(like 'medwallet record add', see there). With --shl LINK (a shlink:/ URI,
a viewer URL ending in #shlink:/..., or a file holding one), open a SMART
Health Link: fetch its manifest over HTTPS (POST with --recipient and, for
a P link, --passcode; GET for a U link), decrypt each file with the link's
key, and store the FHIR and SMART Health Card files as records (cards
verified as above; other files are skipped and said so). An expired link is
refused.`,
		Example: `  medwallet import 3f2a9c1b --out ./alice
  medwallet import --from Alice --out ./alice --json
  medwallet import --emergency --patient 12D3KooW... --reason "unconscious after a car crash" --out ./er
  medwallet import --shc vaccination.smart-health-card
  medwallet import --shl 'shlink:/eyJ1cmwiOi...' --passcode 1234`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runImport(cmd.Context(), o, g, args) },
	}
	cmd.Flags().StringVar(&o.from, "from", "", "import every active grant from this contact")
	cmd.Flags().StringVar(&o.out, "out", ".", "directory for the records")
	cmd.Flags().BoolVar(&o.emergency, "emergency", false, "break-glass: import under the patient's emergency policy")
	cmd.Flags().StringVar(&o.patient, "patient", "", "with --emergency: the patient's ID or contact name")
	cmd.Flags().StringVar(&o.reason, "reason", "", "with --emergency: why (encrypted to the patient, logged on the ledger)")
	cmd.Flags().StringVar(&o.shc, "shc", "", `import SMART Health Cards from FILE ("-": stdin)`)
	cmd.Flags().BoolVar(&o.unverified, "unverified", false, "with --shc or --shl: store cards that fail verification, marked unverified")
	cmd.Flags().StringVar(&o.label, "label", "", "with --shc or --shl: a label for the records")
	addSHLImportFlags(cmd, &o)
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
	// BreakGlass is the emergency access ID (the break-glass entry).
	BreakGlass string `json:"break_glass,omitempty"`
}

// runImport imports the grant args[0], or what the flags name.
func runImport(ctx context.Context, o importOptions, g *globalOptions, args []string) error {
	grant := ""
	if len(args) == 1 {
		grant = args[0]
	}
	if o.shc != "" || o.shl != "" {
		if grant != "" || o.from != "" || o.emergency || (o.shc != "" && o.shl != "") {
			return usageError{fmt.Errorf("--shc and --shl import on their own: no GRANT_ID, --from, --emergency, or both")}
		}
		if o.shc != "" {
			return runImportSHC(ctx, o, g)
		}
		return runImportSHL(ctx, o, g)
	}
	if o.unverified || o.label != "" || o.passcode != "" || o.recipient != "" {
		return usageError{fmt.Errorf("--unverified, --label, --passcode and --recipient go with --shc or --shl")}
	}
	switch {
	case o.emergency && (grant != "" || o.from != ""):
		return usageError{fmt.Errorf("--emergency takes --patient and --reason, not a GRANT_ID or --from")}
	case o.emergency && (o.patient == "" || o.reason == ""):
		return usageError{fmt.Errorf("--emergency needs --patient ID and --reason TEXT")}
	case !o.emergency && (o.patient != "" || o.reason != ""):
		return usageError{fmt.Errorf("--patient and --reason go with --emergency")}
	case !o.emergency && (grant == "") == (o.from == ""):
		return usageError{fmt.Errorf("give a GRANT_ID or --from CONTACT, not both")}
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	recs, err := w.Import(ctx, wallet.ImportOptions{Grant: grant, From: o.from, OutDir: o.out,
		Emergency: o.emergency, Patient: o.patient, Reason: o.reason, Progress: newImportProgress(g)})
	out := make([]importJSON, 0, len(recs))
	for _, r := range recs {
		j := importJSON{Grant: r.Grant.String(), Owner: string(r.Owner), Record: r.Record, File: r.File, Size: r.Size, Format: r.Format}
		if !r.BreakGlass.IsZero() {
			j.BreakGlass = r.BreakGlass.String()
		}
		out = append(out, j)
	}
	if err != nil {
		for _, r := range out {
			g.note("medwallet: imported %s before the error", r.File)
		}
		return err
	}
	if o.emergency && len(out) > 0 {
		g.note("medwallet: emergency access %s is on the ledger; the patient sees it now and will review it", out[0].BreakGlass[:12])
	}
	g.note("medwallet: imported %d record(s); they are decrypted on this disk now", len(out))
	return g.emit(out, func(w io.Writer) {
		for _, r := range out {
			fmt.Fprintln(w, r.File)
		}
	})
}

// importProgress draws, for each record an import fetches, the bar that
// record add and get draw: on stderr, on a terminal, not under --json, for
// large records.
type importProgress struct {
	bar func(verb string, total int64) *progressBar // g.progress
	cur *progressBar
}

// newImportProgress returns an importProgress when g draws progress bars,
// else nil.
func newImportProgress(g *globalOptions) wallet.Progress {
	if g.progress("importing", -1) == nil {
		return nil
	}
	return &importProgress{bar: g.progress}
}

// Start implements wallet.Progress.
func (p *importProgress) Start(name string, total int64) { p.cur = p.bar("importing "+name, total) }

// Add implements wallet.Progress.
func (p *importProgress) Add(n int64) { p.cur.Add(n) }

// Done implements wallet.Progress.
func (p *importProgress) Done() {
	p.cur.done()
	p.cur = nil
}
