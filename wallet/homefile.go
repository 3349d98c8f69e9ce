package wallet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medwallet/medwallet/internal/fsutil"
)

// readHomeJSON reads the JSON file name of the wallet home into v. A
// missing file leaves v as it is; a file that does not decode, or that
// valid refuses (its version, say), is damaged (ErrInvalid).
func (w *Wallet) readHomeJSON(name string, v any, valid func() bool) error {
	b, err := os.ReadFile(filepath.Join(w.cfg.Home, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil || !valid() {
		return fmt.Errorf("%s is damaged: %w", name, ErrInvalid)
	}
	return nil
}

// writeHomeJSON writes v, indented, to the file name of the wallet home,
// atomically and readable by the owner only.
func (w *Wallet) writeHomeJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(w.cfg.Home, name), append(b, '\n'), 0o600)
}
