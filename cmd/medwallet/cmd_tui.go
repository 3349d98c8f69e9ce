package main

import (
	"context"
	"errors"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medwallet/medwallet/tui"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// tuiOptions are the flags of tui.
type tuiOptions struct {
	idle      time.Duration
	poll      time.Duration
	importDir string
	mouse     bool
}

func newTUICommand(g *globalOptions) *cobra.Command {
	var o tuiOptions
	cmd := &cobra.Command{
		Use:   "tui [--idle 5m]",
		Short: "The whole wallet in an interactive terminal interface",
		Long: `Browse and manage the wallet on screens: records (list, details, add a
file), people (contacts, add from a card), grants (list, create, revoke),
the access log (live), the inbox (grants made to you, import) and your
identity card. Keyboard first; the help line at the bottom lists the keys.
NO_COLOR turns colours off.

After --idle without a key press, the screen is cleared and the keyring
must be unlocked again (for the file backend, by typing its passphrase:
$MEDWALLET_PASSPHRASE and --passphrase-file serve only the first unlock).`,
		Example: "  medwallet tui\n  medwallet tui --idle 2m",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runTUI(cmd.Context(), o, g) },
	}
	cmd.Flags().DurationVar(&o.idle, "idle", tui.DefaultIdle, "lock after this long without a key press")
	cmd.Flags().DurationVar(&o.poll, "poll", 2*time.Second, "how often the access log pulls the ledger")
	cmd.Flags().StringVar(&o.importDir, "import-dir", ".", "directory the inbox imports records into")
	cmd.Flags().BoolVar(&o.mouse, "mouse", false, "use the mouse: wheel to move, click a screen's tab (the terminal's own selection is then off)")
	return cmd
}

func runTUI(ctx context.Context, o tuiOptions, g *globalOptions) error {
	if g.json {
		return usageError{errors.New("tui is interactive and has no --json output")}
	}
	if o.idle <= 0 || o.poll <= 0 {
		return usageError{errors.New("--idle and --poll must be positive")}
	}
	in, ok := g.stdin.(*os.File)
	out, ok2 := g.stderr.(*os.File)
	if !ok || !ok2 || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return withHint(errors.New("tui needs a terminal on stdin and stderr"), "use the other commands in scripts, for example 'medwallet grants --json'")
	}
	// The first unlock may use --passphrase-file or $MEDWALLET_PASSPHRASE;
	// without them the TUI starts on its lock screen instead of prompting.
	cfg := g.config()
	cfg.Keyring.Passphrase = func(string) (string, error) {
		if g.passphraseFile == "" && os.Getenv("MEDWALLET_PASSPHRASE") == "" {
			return "", nil
		}
		return g.keyringPassphrase("")
	}
	w, err := wallet.Open(cfg)
	if err != nil {
		return err
	}
	if _, err := w.Identity(); errors.Is(err, keystore.ErrNoPassphrase) {
		w = nil
	} else if err != nil {
		return err
	}
	unlock := func(pass string) (*wallet.Wallet, error) {
		cfg := g.config()
		cfg.Keyring.Passphrase = func(string) (string, error) { return pass, nil }
		w, err := wallet.Open(cfg)
		if err != nil {
			return nil, err
		}
		if _, err := w.Identity(); err != nil {
			return nil, err
		}
		return w, nil
	}
	r := lipgloss.NewRenderer(out)
	lipgloss.SetDefaultRenderer(r)
	m := tui.New(w, tui.Options{Idle: o.idle, Poll: o.poll, Unlock: unlock, ImportDir: o.importDir, Renderer: r})
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen()}
	if o.mouse {
		popts = append(popts, tea.WithMouseCellMotion())
	}
	p := tea.NewProgram(m, popts...)
	_, err = p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
