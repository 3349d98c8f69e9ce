package main

// import --shl: open a SMART Health Link and import its files.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/smarthealth"
	"github.com/medwallet/medwallet/wallet"
)

// addSHLImportFlags adds the flags of import --shl.
func addSHLImportFlags(cmd *cobra.Command, o *importOptions) {
	cmd.Flags().StringVar(&o.shl, "shl", "", `open a SMART Health Link (shlink:/..., a viewer URL, or a file holding one; "-": stdin) and import its files`)
	cmd.Flags().StringVar(&o.passcode, "passcode", "", "with --shl: the link's passcode (links with flag P)")
	cmd.Flags().StringVar(&o.recipient, "recipient", "", "with --shl: who opens the link, for the server's log (default: your name)")
}

// shlImportJSON is the --json shape of import --shl.
type shlImportJSON struct {
	Label   string        `json:"label,omitempty"`
	Flag    string        `json:"flag,omitempty"`
	Expires *time.Time    `json:"expires"`
	Files   []shlFileJSON `json:"files"`
}

type shlFileJSON struct {
	ContentType string       `json:"content_type"`
	Records     []recordJSON `json:"records"`
	Skipped     string       `json:"skipped,omitempty"`
}

// runImportSHL opens the link --shl and imports its files.
func runImportSHL(ctx context.Context, o importOptions, g *globalOptions) error {
	text, err := readLinkArg(g, o.shl)
	if err != nil {
		return err
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	res, err := w.ImportSHL(ctx, wallet.SHLImportOptions{Link: text, Passcode: o.passcode, Recipient: o.recipient,
		Unverified: o.unverified, AddRecordOptions: wallet.AddRecordOptions{Label: o.label}})
	out := shlImportJSON{Label: res.Label, Flag: res.Flag, Files: []shlFileJSON{}}
	if !res.Expires.IsZero() {
		e := res.Expires
		out.Expires = &e
	}
	for _, f := range res.Files {
		fj := shlFileJSON{ContentType: f.ContentType, Records: reportCards(g, f.Records), Skipped: f.Skipped}
		if f.Skipped != "" {
			g.note("medwallet: skipped a file of the link: %s", f.Skipped)
		}
		out.Files = append(out.Files, fj)
	}
	if err != nil {
		return err
	}
	return g.emit(out, func(o io.Writer) {
		for _, f := range out.Files {
			for _, r := range f.Records {
				fmt.Fprintln(o, r.ID)
			}
		}
	})
}

// readLinkArg returns the link text of --shl: the argument itself when it
// holds a link, else the content of the file it names ("-": stdin).
func readLinkArg(g *globalOptions, arg string) (string, error) {
	if strings.Contains(arg, smarthealth.LinkScheme) {
		return arg, nil
	}
	var in io.Reader = g.stdin
	if arg != "-" {
		f, err := os.Open(arg)
		if errors.Is(err, os.ErrNotExist) {
			return "", withHint(fmt.Errorf("%q is neither a shlink:/ link nor a file: %w", arg, wallet.ErrNotFound),
				"pass the link itself, in quotes: --shl 'shlink:/...'")
		}
		if err != nil {
			return "", err
		}
		defer f.Close()
		in = f
	}
	b, err := io.ReadAll(io.LimitReader(in, smarthealth.MaxLinkText+1))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// shlHint says what to do about a link's refusal.
func shlHint(e *wallet.LinkRefusedError) string {
	if errors.Is(e, wallet.ErrDenied) {
		return "check the passcode with whoever sent the link; each wrong one uses up an attempt"
	}
	return "ask whoever sent the link for a new one"
}
