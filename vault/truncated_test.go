package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/vault"
)

// cutGetter serves every share cut after n bytes, the read ending with
// cause (which wraps io.ErrUnexpectedEOF), as a share stream that a relay
// resets at its budget does.
type cutGetter struct {
	src   vault.ShareGetter
	n     int64
	cause error
}

func (g cutGetter) Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error) {
	rc, err := g.src.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(rc, g.n))
	rc.Close()
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{g.cause})), nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestTruncatedKeepsCause: a share whose reader stops short saying why is
// reported truncated, and its detail keeps the reader's words (the CLI
// words a relay's cut from them).
func TestTruncatedKeepsCause(t *testing.T) {
	p := vault.Params{K: 2, N: 3, StripeSize: 4096}
	store, m, _ := sealMem(t, randomData(t, 3*4096), p)
	cause := fmt.Errorf("peer X is reachable only through a relay: %w", io.ErrUnexpectedEOF)
	_, err := open(t, m, cutGetter{src: store, n: vault.ShareHeaderSize + 100, cause: cause})
	var ne *vault.NotEnoughSharesError
	if !errors.As(err, &ne) {
		t.Fatalf("open: %v, want a NotEnoughSharesError", err)
	}
	cut := 0
	for _, h := range ne.Shares {
		if h.Status == vault.StatusOK || h.Status == vault.StatusUntried {
			continue
		}
		cut++
		if h.Status != vault.StatusTruncated || !strings.Contains(h.Detail, "reachable only through a relay") {
			t.Errorf("share %d: %s (%s), want truncated with the reader's words", h.Index, h.Status, h.Detail)
		}
	}
	if cut == 0 {
		t.Fatalf("no share reported cut: %v", err)
	}
}
