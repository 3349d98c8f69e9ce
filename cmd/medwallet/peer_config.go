package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/internal/flagfile"
)

// addPeerConfig adds --config to the peer command: a TOML file whose keys
// are the command's flag names (internal/flagfile), read before the
// command runs; a flag given on the command line wins over the file.
func addPeerConfig(cmd *cobra.Command) {
	var path string
	cmd.Flags().StringVar(&path, "config", "", "TOML file of flag values, keys named like the flags (packaging/peer.toml); flags on the command line win")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if path == "" {
			return nil
		}
		return loadPeerConfig(cmd, path)
	}
}

// loadPeerConfig sets cmd's own flags from the file at path. The global
// flags (--home, --json...) are not keys: they are resolved before the
// command runs.
func loadPeerConfig(cmd *cobra.Command, path string) error {
	err := flagfile.Apply(cmd.LocalFlags(), path, "config", "help")
	var fe *flagfile.Error
	errors.As(err, &fe)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flagfile.ErrUnknownKey):
		return withHint(usageError{fmt.Errorf("--config %w", fe)},
			"the keys are the flag names of 'medwallet peer --help' without the leading --; see packaging/peer.toml")
	case errors.As(err, &fe):
		return usageError{fmt.Errorf("--config %w", fe)}
	case errors.Is(err, fs.ErrNotExist):
		return usageError{fmt.Errorf("--config %q: no such file", path)}
	}
	return fmt.Errorf("--config: %w", err)
}
