package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/wallet"
)

// TestDescribeRecoveryCap: a recovery request every peer refused with
// code recovery-cap is named as such, with a hint about refusing the
// others or waiting for them to lapse, not the not-authorised wording.
func TestDescribeRecoveryCap(t *testing.T) {
	refused := &ledgersync.RefusedError{Peer: "12D3KooWtest", Code: ledgersync.CodeRecoveryCap, Detail: "4 are pending"}
	if !errors.Is(refused, ledgersync.ErrRecoveryCap) || !errors.Is(refused, ledgersync.ErrNotAuthorised) {
		t.Fatalf("%v is not ErrRecoveryCap and ErrNotAuthorised", refused)
	}
	err := &wallet.NetworkError{Op: wallet.OpPublish, Err: fmt.Errorf("no peer took the entries: %w", errors.Join(refused))}
	msg, hint, _ := describe(err)
	if !strings.Contains(msg, "no peer took the recovery request") || strings.Contains(msg, "not authorised") {
		t.Errorf("message %q", msg)
	}
	if !strings.Contains(hint, "recover --refuse") || !strings.Contains(hint, "lapse") {
		t.Errorf("hint %q", hint)
	}
}
