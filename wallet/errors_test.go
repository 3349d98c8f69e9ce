package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

// resetStore fails every Put after the first with the chain a peer that
// dies mid-add produces.
type resetStore struct {
	vault.ShareStore
	puts int
}

func (s *resetStore) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	s.puts++
	if s.puts > 1 {
		_, _ = io.Copy(io.Discard, r)
		reset := &net.OpError{Op: "read", Net: "tcp4", Err: syscall.ECONNRESET}
		return vault.ShareID{}, fmt.Errorf("stream reset: %w", fmt.Errorf("connection closed: %w", reset))
	}
	return s.ShareStore.Put(ctx, r)
}

// TestSealErrNetwork: a share the network fails to store makes a
// NetworkError that keeps the whole chain; other Seal failures stay as
// they are.
func TestSealErrNetwork(t *testing.T) {
	ctx := context.Background()
	owner, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	store := netShareStore{&resetStore{ShareStore: memstore.New()}}
	_, err = vault.Seal(ctx, bytes.NewReader(bytes.Repeat([]byte("x"), 1000)), store, vault.SealOptions{Params: vault.Params{K: 2, N: 3}, Owner: owner})
	err = sealErr(err)
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.Op != OpStoreShares {
		t.Fatalf("got %v, want a NetworkError storing shares", err)
	}
	if !errors.Is(err, syscall.ECONNRESET) || !strings.Contains(err.Error(), "stream reset") {
		t.Fatalf("the detail is lost: %v", err)
	}

	_, err = vault.Seal(ctx, iotestErr{}, netShareStore{memstore.New()}, vault.SealOptions{Owner: owner})
	if err = sealErr(err); err == nil || errors.As(err, &ne) {
		t.Fatalf("a read error became %v", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestTypedErrorsKeepCategories: every typed error is still its sentinel,
// so exit codes do not change.
func TestTypedErrorsKeepCategories(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{&InputError{Field: FieldScope, Problem: Missing, Reason: "no scope given"}, ErrInvalid},
		{&NotFoundError{Kind: KindContact, Ref: "Carol"}, ErrNotFound},
		{&NotFoundError{Kind: KindWallet, Ref: "/x"}, ErrNoWallet},
		{&AmbiguousError{Kind: KindRecord, Ref: "ab", Matches: 2}, ErrInvalid},
		{&ExistsError{Kind: KindContact, Ref: "Bob"}, ErrExists},
		{&DeniedError{Reason: DenyEmergencyGrant, Grant: "abc"}, ErrDenied},
		{&AuditError{Counts: []string{"1 violation"}, Detail: "x"}, ErrVerify},
		{fmt.Errorf("%w: %w: %w", ErrBadLedger, ErrVerify, errors.New("x")), ErrVerify},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%T %v: not %v", c.err, c.err, c.want)
		}
	}
	if got := (&NotFoundError{Kind: KindContact, Ref: "Carol"}).Error(); got != `no contact "Carol": not found` {
		t.Errorf("message %q", got)
	}
}
