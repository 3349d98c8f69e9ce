package wallet

// Key export and import: the passphrase-protected backup of an identity
// (ExportKey, ImportKey).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/medwallet/medwallet/consent"
)

// defaultExportWorkFactor is the scrypt work factor (log2 N) of key
// exports; Config.ExportWorkFactor overrides it (tests).
const defaultExportWorkFactor = 18

// maxExportSize bounds what ImportKey reads; real exports are about 1 KiB.
const maxExportSize = 64 << 10

// exportJSON is the plaintext inside an exported key file.
type exportJSON struct {
	Format string `json:"format"`
	Card   string `json:"card"`
	secretJSON
}

const exportFormat = "medwallet-key-export-v1"

// ExportKey writes the identity (secrets and card) to out as an armored age
// file encrypted with passphrase. The caller creates out (exclusively, 0600).
func (w *Wallet) ExportKey(out io.Writer, passphrase string) error {
	if passphrase == "" {
		return fmt.Errorf("the export passphrase is empty: %w", ErrInvalid)
	}
	plain, err := w.exportPlain()
	if err != nil {
		return err
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return err
	}
	wf := w.cfg.ExportWorkFactor
	if wf == 0 {
		wf = defaultExportWorkFactor
	}
	r.SetWorkFactor(wf)
	aw := armor.NewWriter(out)
	ew, err := age.Encrypt(aw, r)
	if err != nil {
		return err
	}
	if _, err := ew.Write(plain); err != nil {
		return err
	}
	if err := ew.Close(); err != nil {
		return err
	}
	return aw.Close()
}

// ErrBadExport reports a key file that cannot be opened: wrong passphrase,
// truncated, or not a medwallet key export.
var ErrBadExport = errors.New("cannot open the key file")

// ImportKey restores an exported identity into cfg.Home, which must not hold
// a wallet yet. Nothing is written unless the file decrypts and verifies.
func ImportKey(cfg Config, data []byte, passphrase string) (*Wallet, error) {
	if len(data) > maxExportSize {
		return nil, fmt.Errorf("%w: it is larger than any key export", ErrBadExport)
	}
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header)) {
		return nil, fmt.Errorf("%w: it is not an armored age file (%w)", ErrBadExport, ErrInvalid)
	}
	sid, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadExport, err)
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(data)), sid)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%w: wrong passphrase (%w)", ErrBadExport, ErrVerify)
		}
		return nil, fmt.Errorf("%w: damaged or truncated (%w)", ErrBadExport, ErrInvalid)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxExportSize))
	if err != nil {
		return nil, fmt.Errorf("%w: damaged or truncated (%w)", ErrBadExport, ErrInvalid)
	}
	card, id, err := parseExportPlain(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadExport, err)
	}
	return create(cfg, card, id)
}

// exportPlain is the plaintext of a key export: the identity (secrets and
// card). Guardian recovery protects the same bytes (guardian.go).
func (w *Wallet) exportPlain() ([]byte, error) {
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	var sj secretJSON
	_ = json.Unmarshal(encodeIdentity(id), &sj)
	plain, _ := json.Marshal(exportJSON{Format: exportFormat, Card: w.card.String(), secretJSON: sj})
	return plain, nil
}

// parseExportPlain reads exportPlain's bytes back, checking that the
// secrets belong to the card.
func parseExportPlain(plain []byte) (consent.Card, *Identity, error) {
	var ej exportJSON
	if err := json.Unmarshal(plain, &ej); err != nil || ej.Format != exportFormat {
		return consent.Card{}, nil, fmt.Errorf("not a medwallet key export (%w)", ErrInvalid)
	}
	card, err := consent.ParseCard(ej.Card)
	if err != nil {
		return consent.Card{}, nil, err
	}
	sec, _ := json.Marshal(ej.secretJSON)
	id, err := decodeIdentity(sec)
	if err != nil {
		return consent.Card{}, nil, err
	}
	if err := id.matches(card); err != nil {
		return consent.Card{}, nil, err
	}
	return card, id, nil
}
