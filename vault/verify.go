package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/zeebo/blake3"
)

// ShareStatus is the health of one share.
type ShareStatus string

// Share statuses reported by Verify and in NotEnoughSharesError.
const (
	StatusOK          ShareStatus = "ok"
	StatusMissing     ShareStatus = "missing"     // the store does not have it
	StatusCorrupt     ShareStatus = "corrupt"     // header, a block, or trailing bytes do not match
	StatusTruncated   ShareStatus = "truncated"   // shorter than the manifest says
	StatusUnavailable ShareStatus = "unavailable" // the store failed to serve it
	StatusUntried     ShareStatus = "untried"     // not needed (Open only)
)

// ShareHealth is the state of one share of a record.
type ShareHealth struct {
	Index     int
	ID        ShareID
	Status    ShareStatus
	BadBlocks int64  // blocks whose hash does not match (Verify only)
	Detail    string // why, for humans; never holds record contents
}

func statusOf(err error) ShareStatus {
	switch {
	case errors.Is(err, ErrNotFound):
		return StatusMissing
	case errors.Is(err, errTruncated):
		return StatusTruncated
	case errors.Is(err, ErrCorruptShare), errors.Is(err, ErrUnknownVersion):
		return StatusCorrupt
	default:
		return StatusUnavailable
	}
}

// Verify reads every share of the record in full and reports its health:
// header, every block hash, length, and content address. It needs no key.
func Verify(ctx context.Context, m *Manifest, src ShareGetter) []ShareHealth {
	out := make([]ShareHealth, m.N)
	if err := m.validate(); err != nil {
		for i := range out {
			out[i] = ShareHealth{Index: i, Status: StatusUnavailable, Detail: err.Error()}
		}
		return out
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range m.N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = verifyShare(ctx, m, src, i)
		}()
	}
	wg.Wait()
	return out
}

func verifyShare(ctx context.Context, m *Manifest, src ShareGetter, i int) ShareHealth {
	h := ShareHealth{Index: i, ID: m.Shares[i].ID, Status: StatusOK}
	fail := func(err error) ShareHealth {
		h.Status, h.Detail = statusOf(err), err.Error()
		return h
	}
	rc, err := src.Get(ctx, m.Shares[i].ID)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	addr := ShareHasher()
	r := io.TeeReader(ContextReader(ctx, rc), addr)
	l := m.layout()
	hdr := make([]byte, ShareHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fail(truncated(err, "header"))
	}
	if err := checkShareHeader(hdr, m.RecordID, i, m.K, m.N, l.block); err != nil {
		return fail(err)
	}
	buf := make([]byte, l.block)
	firstBad := int64(-1)
	for s := range l.stripes {
		b := buf[:l.blockLen(s)]
		if _, err := io.ReadFull(r, b); err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			return fail(truncated(err, fmt.Sprintf("stripe %d", s)))
		}
		if Hash(blake3.Sum256(b)) != m.Shares[i].BlockHashes[s] {
			h.BadBlocks++
			if firstBad < 0 {
				firstBad = s
			}
		}
	}
	if h.BadBlocks > 0 {
		return fail(fmt.Errorf("%w: %d bad blocks, first at stripe %d", ErrCorruptShare, h.BadBlocks, firstBad))
	}
	if n, _ := io.CopyN(io.Discard, r, 1); n > 0 {
		return fail(fmt.Errorf("%w: trailing bytes after the last block", ErrCorruptShare))
	}
	if addr.ID() != m.Shares[i].ID {
		return fail(fmt.Errorf("%w: content address does not match", ErrCorruptShare))
	}
	return h
}

// DeleteShares removes every share of the record from the store and
// returns the first error met (it still tries them all).
func DeleteShares(ctx context.Context, m *Manifest, store ShareStore) error {
	var first error
	for i, s := range m.Shares {
		if err := store.Delete(ctx, s.ID); err != nil && first == nil {
			first = fmt.Errorf("vault: deleting share %d: %w", i, err)
		}
	}
	return first
}
