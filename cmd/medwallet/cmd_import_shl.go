package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

// addSHLImportFlags adds the flags of import --shl.
func addSHLImportFlags(cmd *cobra.Command, o *importOptions) {
	cmd.Flags().StringVar(&o.shl, "shl", "", "open a SMART Health Link (shlink:/..., a viewer URL, or a file holding one) and import its files")
	cmd.Flags().StringVar(&o.passcode, "passcode", "", "with --shl: the link's passcode (P links)")
}

// runImportSHL opens the link --shl and imports its files.
func runImportSHL(ctx context.Context, o importOptions, g *globalOptions) error {
	return errors.New("not yet")
}
