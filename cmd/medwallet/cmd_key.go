package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func newKeyCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Back up and restore the identity",
		Example: `  medwallet key export --out alice.medwallet-key
  medwallet --home ~/new-wallet key import alice.medwallet-key && medwallet --home ~/new-wallet sync`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newKeyExportCommand(g), newKeyImportCommand(g))
	return cmd
}

const exportPassphraseHint = "set $MEDWALLET_EXPORT_PASSPHRASE or pass --export-passphrase-file FILE"

// exportPassphrase reads the backup passphrase (distinct from the keyring's)
// from file (--export-passphrase-file), else the environment, else a prompt.
func exportPassphrase(g *globalOptions, file string, confirm bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("--export-passphrase-file %q: %w", file, wallet.ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("reading --export-passphrase-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if p, ok := os.LookupEnv("MEDWALLET_EXPORT_PASSPHRASE"); ok {
		return p, nil
	}
	return g.prompt("backup passphrase", exportPassphraseHint, confirm)
}

// keyExportOptions are the flags of key export.
type keyExportOptions struct {
	out            string
	passphraseFile string
}

func newKeyExportCommand(g *globalOptions) *cobra.Command {
	var o keyExportOptions
	cmd := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write a passphrase-encrypted backup of the identity",
		Long: `Write the identity (signing key, age key and card) to FILE as an armored age
file encrypted with a backup passphrase (scrypt). FILE is created with mode
0600 and never overwritten. Restore it with 'medwallet key import FILE'.`,
		Example: `  medwallet key export --out alice.medwallet-key
  MEDWALLET_EXPORT_PASSPHRASE=... medwallet key export --out backup.age`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKeyExport(cmd.Context(), o, g) },
	}
	cmd.Flags().StringVar(&o.out, "out", "", "file to create (required)")
	cmd.Flags().StringVar(&o.passphraseFile, "export-passphrase-file", "", "read the backup passphrase from this file")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// keyExportJSON is the --json shape of key export.
type keyExportJSON struct {
	ID   string `json:"id"`
	File string `json:"file"`
}

func runKeyExport(_ context.Context, o keyExportOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	if _, err := os.Lstat(o.out); err == nil {
		return withHint(fmt.Errorf("%q: %w", o.out, wallet.ErrExists), "choose a new file name; key export never overwrites")
	}
	// Unlock the keyring before asking for a new passphrase.
	if _, err := w.Identity(); err != nil {
		return err
	}
	pass, err := exportPassphrase(g, o.passphraseFile, true)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(o.out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%q: %w", o.out, wallet.ErrExists)
	}
	if err != nil {
		return err
	}
	if err := w.ExportKey(f, pass); err != nil {
		f.Close()
		os.Remove(o.out)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(o.out)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(o.out)
		return err
	}
	g.note("medwallet: keep %s and its passphrase apart; together they are your identity", o.out)
	return g.emit(keyExportJSON{ID: string(w.ID()), File: o.out}, func(out io.Writer) { fmt.Fprintln(out, o.out) })
}

// keyImportOptions are the flags of key import.
type keyImportOptions struct {
	passphraseFile string
}

func newKeyImportCommand(g *globalOptions) *cobra.Command {
	var o keyImportOptions
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Restore an identity from a backup into an empty home",
		Long: `Restore an identity written by 'medwallet key export' into --home, which must
not hold a wallet. The secrets go to the keyring; the ID stays the same.
A wrong passphrase, a truncated or a foreign file is refused and nothing is written.`,
		Example: `  medwallet --home ~/new-wallet key import alice.medwallet-key`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runKeyImport(cmd.Context(), o, g, args) },
	}
	cmd.Flags().StringVar(&o.passphraseFile, "export-passphrase-file", "", "read the backup passphrase from this file")
	return cmd
}

// runKeyImport restores the identity in the backup file args[0].
func runKeyImport(_ context.Context, o keyImportOptions, g *globalOptions, args []string) error {
	file := args[0]
	if _, err := wallet.Open(g.config()); err == nil {
		return withHint(fmt.Errorf("a wallet already exists in %s: %w", g.home, wallet.ErrExists),
			"import into an empty directory with --home DIR")
	}
	data, err := readBounded(file, 1<<20)
	if err != nil {
		return err
	}
	pass, err := exportPassphrase(g, o.passphraseFile, false)
	if err != nil {
		return err
	}
	w, err := wallet.ImportKey(g.config(), data, pass)
	if err != nil {
		return err
	}
	g.note("medwallet: restored identity %s in %s (keyring: %s)", w.ID(), w.Home(), w.KeyringBackend())
	g.noteKeyringFallback(w)
	return g.emit(newIdentityJSON(w, false), func(out io.Writer) { fmt.Fprintln(out, w.ID()) })
}

// readBounded reads a whole file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%q: %w", path, wallet.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%q is larger than %d bytes: %w", path, limit, wallet.ErrInvalid)
	}
	return b, nil
}
