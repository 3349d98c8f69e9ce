package wallet

// Stock tools: a record's age ciphertext and key, so that the stock age
// CLI opens it without medwallet (GetCiphertext, RecordKey in record.go).

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/medwallet/medwallet/vault"
)

// GetCiphertext rebuilds a record's age ciphertext from its shares, every
// block checked against the signed manifest, and writes it to out without
// decrypting it: `age -d -i KEYFILE` opens it with the record's key
// (RecordKey). It needs k good shares, like GetRecord; on error out may
// hold a correct prefix.
func (w *Wallet) GetCiphertext(ctx context.Context, ref string, out io.Writer, opts RecordOptions) (RecordInfo, error) {
	m, err := w.manifest(ref)
	if err != nil {
		return RecordInfo{}, err
	}
	store, c, err := w.storeFor(ctx, opts, m)
	if err != nil {
		return RecordInfo{}, err
	}
	if c != nil {
		defer c.Close()
	}
	if err := vault.Reassemble(ctx, m, store, out); err != nil {
		if errors.Is(err, vault.ErrNotEnoughShares) {
			return RecordInfo{}, &RecordError{Record: m.RecordID.String(), Err: err}
		}
		return RecordInfo{}, fmt.Errorf("record %s: %w", m.RecordID, err)
	}
	return recordInfo(m), nil
}
