package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// globalOptions holds the flags every command shares and the streams it
// writes to.
type globalOptions struct {
	home           string
	json           bool
	verbose        bool // print the detail of an error
	keyringBackend string
	passphraseFile string
	network        string
	localShares    bool // record --local

	stdin          io.Reader
	stdout, stderr io.Writer
}

func newGlobals(stdin io.Reader, stdout, stderr io.Writer) *globalOptions {
	return &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr}
}

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "medwallet",
		Short: "A patient-held wallet for medical records",
		Long: `medwallet keeps a patient's medical records under the patient's control.

Keys live in the OS keyring. Records are encrypted with age, erasure-coded
and stored as shares on peers; consent grants and revocations are signed by
the patient, spread on a tamper-evident ledger and enforced by every peer.

Every command that prints takes --json for scripts; exit codes are listed in
docs/cli.md (0 ok, 1 error, 2 usage, 3 not found, 4 denied, 5 verification failed).`,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.resolve()
		},
	}
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.home, "home", "", "wallet directory (default $MEDWALLET_HOME, else $XDG_DATA_HOME/medwallet)")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON on stdout")
	pf.BoolVar(&g.verbose, "verbose", false, "on an error, also print the internal detail behind the message")
	pf.StringVar(&g.keyringBackend, "keyring-backend", "", "keyring backend: "+strings.Join(keystore.Backends, ", ")+" (default $MEDWALLET_KEYRING_BACKEND, else the one chosen at init, else auto)")
	pf.StringVar(&g.passphraseFile, "passphrase-file", "", "read the file keyring's passphrase from this file (else $MEDWALLET_PASSPHRASE, else a terminal prompt)")
	pf.StringVar(&g.network, "network", "", "network file listing the peers (default $MEDWALLET_NETWORK, else HOME/network.json)")

	// Every top-level command, in the order help lists them.
	for _, c := range []*cobra.Command{
		newAuditCommand(g),
		newContactCommand(g),
		newCredentialCommand(g),
		newDemoCommand(g),
		newDeviceCommand(g),
		newDevnetCommand(g),
		newEmergencyCommand(g),
		newGrantCommand(g),
		newGrantsCommand(g),
		newGuardianCommand(g),
		newImportCommand(g),
		newInboxCommand(g),
		newInitCommand(g),
		newIssuerCommand(g),
		newKeyCommand(g),
		newLedgerCommand(g),
		newLogCommand(g),
		newPeerCommand(g),
		newPeersCommand(g),
		newRecordCommand(g),
		newRepairCommand(g),
		newRecoverCommand(g),
		newReviewCommand(g),
		newRevokeCommand(g),
		newShareCommand(g),
		newSyncCommand(g),
		newTUICommand(g),
		newVersionCommand(g),
		newWhoamiCommand(g),
	} {
		markUsage(c)
		root.AddCommand(c)
	}
	return root
}

// markUsage makes argument-count errors of c and its children usage errors.
// A group of commands (audit, record...) shows its help when run alone; run
// with an argument, that argument is an unknown command (exit 2), where
// cobra would show the help and exit 0.
func markUsage(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if c.Args != nil {
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markUsage(sub)
	}
}

// resolve fills defaults from the environment once flags are parsed.
func (g *globalOptions) resolve() error {
	if g.home == "" {
		g.home = os.Getenv("MEDWALLET_HOME")
	}
	if g.home == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return usageError{errors.New("cannot find a home directory: set --home or $MEDWALLET_HOME")}
			}
			base = filepath.Join(h, ".local", "share")
		}
		g.home = filepath.Join(base, "medwallet")
	}
	if abs, err := filepath.Abs(g.home); err == nil {
		g.home = abs
	}
	if g.keyringBackend == "" {
		g.keyringBackend = os.Getenv("MEDWALLET_KEYRING_BACKEND")
	}
	if g.network == "" {
		g.network = os.Getenv("MEDWALLET_NETWORK")
	}
	if err := keystore.ValidateBackend(g.keyringBackend); err != nil {
		return usageError{err}
	}
	return nil
}

// testKDFCost lowers the scrypt costs (log2 N) of new file keyrings and
// key exports; only main_test.go sets it. Zero means the real costs.
var testKDFCost int

// config is the wallet configuration the global flags describe.
func (g *globalOptions) config() wallet.Config {
	return wallet.Config{
		Home:             g.home,
		Network:          g.network,
		ExportWorkFactor: testKDFCost,
		Keyring: keystore.Config{
			Backend:    g.keyringBackend,
			Passphrase: g.keyringPassphrase,
			ScryptLogN: testKDFCost,
		},
	}
}

// openWallet opens the wallet in --home.
func (g *globalOptions) openWallet() (*wallet.Wallet, error) {
	return wallet.Open(g.config())
}

// noteKeyringFallback says why "auto" chose the file keyring for a new
// identity, and what that means for the user.
func (g *globalOptions) noteKeyringFallback(w *wallet.Wallet) {
	if (g.keyringBackend != "" && g.keyringBackend != "auto") || w.KeyringBackend() != "file" {
		return
	}
	g.note("medwallet: no system keyring answered (Secret Service or KWallet over D-Bus, macOS Keychain, Windows Credential Manager), so the keys went to the file keyring in %s",
		filepath.Join(w.Home(), "keyring"))
	g.note("medwallet: it is encrypted with your passphrase, which every command that unlocks it needs: $MEDWALLET_PASSPHRASE, --passphrase-file FILE or a prompt")
}

// keyringPassphrase supplies the file backend's passphrase: --passphrase-file,
// then $MEDWALLET_PASSPHRASE, then a prompt when stdin is a terminal.
func (g *globalOptions) keyringPassphrase(prompt string) (string, error) {
	if g.passphraseFile != "" {
		b, err := os.ReadFile(g.passphraseFile)
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("--passphrase-file %q: %w", g.passphraseFile, wallet.ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("reading --passphrase-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if p, ok := os.LookupEnv("MEDWALLET_PASSPHRASE"); ok {
		return p, nil
	}
	p, err := g.prompt("keyring passphrase", keyringPassphraseHint, false)
	if errors.Is(err, errNoTerminal) {
		// keystore reports this as it is; ErrNoPassphrase lets the hint
		// name the ways to give one.
		return "", fmt.Errorf("%w and %w", keystore.ErrNoPassphrase, errNoTerminal)
	}
	return p, err
}

// errNoTerminal reports a secret that cannot be prompted for.
var errNoTerminal = errors.New("stdin is not a terminal")

// prompt reads a secret from the terminal; it never prompts when stdin is
// not a terminal, and returns an error naming the alternative instead.
func (g *globalOptions) prompt(what, alternative string, confirm bool) (string, error) {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", withHint(fmt.Errorf("a %s is needed and %w", what, errNoTerminal), alternative)
	}
	fmt.Fprintf(g.stderr, "Enter %s: ", what)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", err
	}
	if confirm {
		fmt.Fprintf(g.stderr, "Confirm %s: ", what)
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", err
		}
		if string(p2) != string(p) {
			return "", fmt.Errorf("the two %ss differ", what)
		}
	}
	return string(p), nil
}
