package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	ledgerstore "github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/wallet"
)

func newLedgerCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Export, import and verify the consent ledger",
		Example: `  medwallet ledger export alice-ledger.mwl
  medwallet ledger import alice-ledger.mwl
  medwallet ledger verify`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newLedgerExportCommand(g), newLedgerImportCommand(g), newLedgerVerifyCommand(g))
	return cmd
}

// ledgerExportOptions are the flags of ledger export.
type ledgerExportOptions struct {
	force bool
}

func newLedgerExportCommand(g *globalOptions) *cobra.Command {
	var opts ledgerExportOptions
	cmd := &cobra.Command{
		Use:   "export FILE",
		Short: "Write the whole ledger to a self-contained file for an auditor",
		Long: `Write every entry of the local ledger (every feed, identity entries
included) to FILE. An auditor checks it on any machine, without a wallet,
with 'medwallet audit verify FILE'. The file holds IDs, hashes, scopes and
signatures only: no names and no record contents.`,
		Example: "  medwallet ledger export alice-ledger.mwl\n  medwallet audit verify alice-ledger.mwl",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runLedgerExport(cmd.Context(), opts, g, args) },
	}
	cmd.Flags().BoolVar(&opts.force, "force", false, "overwrite FILE if it exists")
	return cmd
}

// ledgerExportJSON is the --json shape of ledger export.
type ledgerExportJSON struct {
	File    string `json:"file"`
	Entries int    `json:"entries"`
}

// runLedgerExport writes the ledger to the file args[0].
func runLedgerExport(_ context.Context, opts ledgerExportOptions, g *globalOptions, args []string) error {
	file := args[0]
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if opts.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(file, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return withHint(fmt.Errorf("%q: %w", file, wallet.ErrExists), "choose another file name, or pass --force to overwrite it")
	}
	if err != nil {
		return err
	}
	n, err := w.ExportLedger(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return err
	}
	return g.emit(ledgerExportJSON{File: file, Entries: n}, func(out io.Writer) {
		fmt.Fprintf(out, "wrote %d entries to %s\n", n, file)
	})
}

// ledgerImportOptions are the flags of ledger import.
type ledgerImportOptions struct{}

func newLedgerImportCommand(g *globalOptions) *cobra.Command {
	var opts ledgerImportOptions
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Add the entries of an exported ledger file to the local ledger",
		Long: `Verify the entries of a file written by 'medwallet ledger export' and add
them to the local ledger: how a grant made to you arrives when no peer
carries it. Entries that do not verify are skipped and counted; an
equivocation found is logged in your feed as a proof. The file's witnessed
checkpoints are kept too, so 'medwallet audit verify' and your own exports
show them.`,
		Example: "  medwallet ledger import alice-ledger.mwl\n  medwallet grants",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runLedgerImport(cmd.Context(), opts, g, args) },
	}
}

// ledgerImportJSON is the --json shape of ledger import.
type ledgerImportJSON struct {
	File          string `json:"file"`
	Entries       int    `json:"entries"`
	Added         int    `json:"added"`
	Known         int    `json:"known"`
	Pending       int    `json:"pending"`
	Rejected      int    `json:"rejected"`
	Equivocations int    `json:"equivocations"`
}

// runLedgerImport adds the entries of the file args[0] to the local ledger.
func runLedgerImport(_ context.Context, _ ledgerImportOptions, g *globalOptions, args []string) error {
	file := args[0]
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ledger file %q: %w", file, wallet.ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := w.ImportLedger(f)
	if err != nil {
		return err
	}
	if r.Rejected > 0 || r.Equivocations > 0 {
		g.note("medwallet: %d entries did not verify and were skipped; %d equivocations logged", r.Rejected, r.Equivocations)
	}
	return g.emit(ledgerImportJSON{File: file, Entries: r.Entries, Added: r.Added, Known: r.Known, Pending: r.Pending,
		Rejected: r.Rejected, Equivocations: r.Equivocations}, func(out io.Writer) {
		fmt.Fprintf(out, "imported %s: %d entries, %d added, %d already known, %d waiting for missing entries, %d rejected\n",
			file, r.Entries, r.Added, r.Known, r.Pending, r.Rejected)
	})
}

// ledgerVerifyOptions are the flags of ledger verify.
type ledgerVerifyOptions struct{}

func newLedgerVerifyCommand(g *globalOptions) *cobra.Command {
	var opts ledgerVerifyOptions
	return &cobra.Command{
		Use:   "verify",
		Short: "Re-check every signature and chain of the local ledger",
		Long: `Re-check every entry stored in the local ledger: its signature, and its
place in its author's feed (numbered, chained, time never going back).
Every command reads the ledger without checking signatures again: each
entry was verified once, when it arrived, before it was stored. This
command is for a ledger whose disk is in doubt; it checks in batches on
every core. It reads only the local ledger (no network).

Exit code 0 when every entry verifies, 5 otherwise ('medwallet audit
verify' also re-runs the consent policy on every access).`,
		Example: "  medwallet ledger verify\n  medwallet ledger verify --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runLedgerVerify(cmd.Context(), opts, g) },
	}
}

// ledgerVerifyJSON is the --json shape of ledger verify.
type ledgerVerifyJSON struct {
	OK       bool     `json:"ok"`
	Entries  int      `json:"entries"`
	Feeds    int      `json:"feeds"`
	Bad      int      `json:"bad"`
	Problems []string `json:"problems"`
}

// runLedgerVerify re-verifies the local ledger.
func runLedgerVerify(_ context.Context, _ ledgerVerifyOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	rep, err := w.VerifyLedger()
	if err != nil {
		return err
	}
	j := ledgerVerifyJSON{OK: rep.OK(), Entries: rep.Entries, Feeds: rep.Feeds, Bad: rep.Bad, Problems: []string{}}
	for _, p := range rep.Problems {
		j.Problems = append(j.Problems, p.Error())
	}
	human := func(out io.Writer) {
		for _, p := range j.Problems {
			fmt.Fprintf(out, "bad: %s\n", p)
		}
		if more := j.Bad - len(j.Problems); more > 0 {
			fmt.Fprintf(out, "... and %d more\n", more)
		}
		if j.OK {
			fmt.Fprintf(out, "ledger ok: %d entries in %d feeds, every signature and chain verifies\n", j.Entries, j.Feeds)
		} else {
			fmt.Fprintf(out, "ledger bad: %d of %d entries in %d feeds do not verify\n", j.Bad, j.Entries, j.Feeds)
		}
	}
	if err := wallet.LedgerVerifyFailure(rep); err != nil {
		if !g.json {
			human(g.stdout)
		}
		return resultError{result: j, error: err}
	}
	return g.emit(j, human)
}

// verifyPeerLedger re-checks the peer's stored ledger (--verify-ledger).
func verifyPeerLedger(data string, log *slog.Logger) error {
	path := filepath.Join(data, peer.LedgerFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	start := time.Now()
	rep, err := ledgerstore.Verify(path)
	if err != nil {
		return err
	}
	log.Info("ledger verified", "entries", rep.Entries, "feeds", rep.Feeds, "bad", rep.Bad, "took", time.Since(start).Round(time.Millisecond))
	if err := wallet.LedgerVerifyFailure(rep); err != nil {
		return fmt.Errorf("peer ledger %s: %w", path, err)
	}
	return nil
}
