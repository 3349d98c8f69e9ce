package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/wallet"
)

// TestErrorTextNoFlags: the TUI words the wallet's typed errors itself,
// and never names a command-line flag.
func TestErrorTextNoFlags(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&wallet.PeersError{Answered: 1, Configured: 6, Needed: 4, K: 3}, "only 1 of 6 peers answered, and storing a record needs 4"},
		{&wallet.PeersError{Configured: 6, Needed: 1}, "none of the 6 peers answered"},
		{&wallet.NetworkError{Op: wallet.OpStoreShares, Err: errors.New("stream reset")}, "the peers failed while storing the record's shares"},
		{&wallet.InputError{Field: wallet.FieldCard, Problem: wallet.Malformed, Err: fmt.Errorf("%w: cbor: 2 bytes of extraneous data", consent.ErrBadCard)},
			"this is not a valid identity card"},
		{&wallet.ExistsError{Kind: wallet.KindContact, Ref: "Bob"}, `a contact named "Bob" already exists`},
		{&wallet.InputError{Field: wallet.FieldExpiry, Problem: wallet.Rejected, Value: "2001-01-01"}, "the expiry is in the past"},
		{&wallet.NotFoundError{Kind: wallet.KindRecord, Ref: "abcd"}, `no record "abcd": not found`},
	} {
		got := errorText(c.err)
		if !strings.Contains(got, c.want) {
			t.Errorf("%v: got %q, want %q in it", c.err, got, c.want)
		}
		if strings.Contains(got, "--") || strings.Contains(got, "stream reset") || strings.Contains(got, "cbor") {
			t.Errorf("%v: %q names a flag or a raw error", c.err, got)
		}
	}
}
