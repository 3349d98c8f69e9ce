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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

// resetStore fails every Put after the first with the chain a peer that
// dies mid-add produces.
type resetStore struct {
	vault.ShareStore
	puts atomic.Int32
}

func (s *resetStore) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	if s.puts.Add(1) > 1 {
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

// killingReader serves size bytes and stops every peer of dn once after
// the first `after` bytes, while the add is streaming shares to them.
type killingReader struct {
	t           *testing.T
	dn          *devnet.Devnet
	left, after int
	killed      bool
}

func (r *killingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if !r.killed && r.after <= 0 {
		r.killed = true
		if err := r.dn.Close(); err != nil {
			r.t.Log(err)
		}
	}
	n := min(len(p), r.left, 64<<10)
	for i := range p[:n] {
		p[i] = byte(i)
	}
	r.left -= n
	r.after -= n
	return n, nil
}

// TestAddRecordPeersDieMidAdd: peers that die while an add streams shares
// to them make a NetworkError for storing shares (the CLI words it and
// keeps the chain as detail), and nothing is saved.
func TestAddRecordPeersDieMidAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	cfg := memConfig(t)
	cfg.Network = dn.NetworkPath()
	w, err := Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	r := &killingReader{t: t, dn: dn, left: 32 << 20, after: 4 << 20}
	_, err = w.AddRecord(ctx, r, AddRecordOptions{K: 2, N: 3})
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.Op != OpStoreShares {
		t.Fatalf("got %v, want a NetworkError storing shares", err)
	}
	if !r.killed {
		t.Fatal("the add failed before the peers were stopped")
	}
	t.Logf("the chain kept as detail: %v", err)
	if recs, err := w.ListRecords(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("records after a failed add: %v, %v", recs, err)
	}
}
