package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/pairing"
	"github.com/medwallet/medwallet/wallet"
)

type deviceAddOptions struct {
	label    string
	listen   []string
	ttl      time.Duration
	codeFile string
}

func newDeviceAddCommand(g *globalOptions) *cobra.Command {
	var o deviceAddOptions
	cmd := &cobra.Command{
		Use:   "add [--label LABEL]",
		Short: "Show a one-time code that pairs a new device",
		Long: `Show a one-time pairing code (12 words and this device's address, and a QR
code when stderr is a terminal) and wait until a new device joins with
'medwallet device join CODE', the code expires (--ttl, 10 minutes), or too
many wrong codes are tried. The code carries 128 random bits: it proves
each device to the other, so a typo or an eavesdropper cannot join. It
works once. The new device receives your identity card, your age key (to
read your records) and its enrolment signed by your key, never your
signing key. Run it on the primary, on a network the new device reaches.`,
		Example: "  medwallet device add --label laptop\n  medwallet device add --label phone --listen /ip4/0.0.0.0/tcp/4100",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runDeviceAdd(cmd.Context(), o, g) },
	}
	cmd.Flags().StringVar(&o.label, "label", "", `the new device's label (default "device N"); only your devices can read it`)
	cmd.Flags().StringSliceVar(&o.listen, "listen", nil, "multiaddrs to listen on for the new device (default: every interface, TCP and QUIC)")
	cmd.Flags().DurationVar(&o.ttl, "ttl", pairing.DefaultTTL, "how long the code stays valid")
	cmd.Flags().StringVar(&o.codeFile, "code-file", "", "also write the code to FILE (mode 0600), for scripts")
	return cmd
}

type deviceCodeJSON struct {
	Code    string `json:"code"`
	Words   string `json:"words"`
	Label   string `json:"label"`
	Expires string `json:"expires"`
}

func runDeviceAdd(ctx context.Context, o deviceAddOptions, g *globalOptions) error {
	if o.ttl <= 0 || o.ttl > time.Hour {
		return usageError{errors.New("--ttl must be between 1s and 1h")}
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	off, err := w.OfferDevice(ctx, wallet.OfferOptions{Label: o.label, Listen: o.listen, TTL: o.ttl})
	if err != nil {
		return primaryHint(err)
	}
	defer off.Close()
	code := off.Code()
	if o.codeFile != "" {
		if err := fsutil.WriteFileAtomic(o.codeFile, []byte(code.String()+"\n"), 0o600); err != nil {
			return err
		}
	}
	if g.json {
		// The code first, as one JSON line, so that a script can read it
		// before the device joins.
		if err := writeJSON(g.stdout, deviceCodeJSON{Code: code.String(), Words: code.Words(), Label: off.Label(),
			Expires: off.Expires().UTC().Format(time.RFC3339)}); err != nil {
			return err
		}
	} else {
		showCode(g.stderr, code, off.Label(), off.Expires())
	}
	d, err := off.Wait(ctx)
	if err != nil {
		return withHint(err, "run 'medwallet device add' again for a new code")
	}
	g.note("medwallet: %q joined; run 'medwallet sync' on it to fetch your records", d.Label)
	return g.emit(newDeviceJSON(d), func(out io.Writer) { fmt.Fprintf(out, "added %s %s\n", d.Label, d.ID) })
}

// showCode prints the code for the person at the terminal: the words, the
// address, the command to run, and a QR code when stderr is a terminal.
func showCode(out io.Writer, code pairing.Code, label string, expires time.Time) {
	fmt.Fprintf(out, "medwallet: pairing code for %q (valid until %s, once):\n\n", label, expires.Local().Format(time.TimeOnly))
	fmt.Fprintf(out, "  %s\n\n", code.Words())
	fmt.Fprintf(out, "medwallet: on the new device run:\n\n  medwallet device join '%s'\n\n", code.String())
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if q, err := qrcode.New(code.String(), qrcode.Low); err == nil {
			fmt.Fprintln(out, q.ToSmallString(false))
		}
	}
	fmt.Fprintln(out, "medwallet: waiting for the new device (Ctrl-C to cancel)")
}
