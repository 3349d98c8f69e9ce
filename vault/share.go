package vault

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Coding defaults, suited to small networks.
const (
	DefaultK          = 3
	DefaultN          = 5
	DefaultStripeSize = 1 << 20 // ciphertext bytes per stripe, rounded up to a multiple of k

	MaxShares     = 255 // n fits the one-byte share index
	MinStripeSize = 1 << 10
	MaxStripeSize = 64 << 20
)

// Share header layout (docs/format.md): 32 bytes, big-endian.
const (
	shareMagic      = "MWSH"
	shareVersion    = 1
	ShareHeaderSize = 32
)

// Params are the erasure-coding parameters of one record: any K of N shares
// rebuild it; StripeSize bytes of ciphertext are coded at a time.
type Params struct {
	K, N       int
	StripeSize int
}

// ParamsError reports erasure-coding parameters outside 1 <= K < N <=
// MaxShares. It is ErrBadParams.
type ParamsError struct{ K, N int }

func (e *ParamsError) Error() string {
	return fmt.Sprintf("%v: need 1 <= k < n <= %d, got k=%d n=%d", ErrBadParams, MaxShares, e.K, e.N)
}

func (e *ParamsError) Unwrap() error { return ErrBadParams }

// CheckParams is the one check of k and n (zero is not a default here): any
// k of n shares rebuild a record, 1 <= k < n <= MaxShares.
func CheckParams(k, n int) error {
	if k < 1 || n <= k || n > MaxShares {
		return &ParamsError{K: k, N: n}
	}
	return nil
}

// normalized fills defaults for zero fields, rounds StripeSize up to a
// multiple of K and validates the result.
func (p Params) normalized() (Params, error) {
	if p.K == 0 {
		p.K = DefaultK
	}
	if p.N == 0 {
		p.N = DefaultN
	}
	if p.StripeSize == 0 {
		p.StripeSize = DefaultStripeSize
	}
	if err := CheckParams(p.K, p.N); err != nil {
		return p, err
	}
	if p.StripeSize < MinStripeSize || p.StripeSize > MaxStripeSize {
		return p, fmt.Errorf("%w: stripe size must be between %d and %d bytes, got %d",
			ErrBadParams, MinStripeSize, MaxStripeSize, p.StripeSize)
	}
	if r := p.StripeSize % p.K; r != 0 {
		p.StripeSize += p.K - r
	}
	return p, nil
}

// layout describes how a ciphertext of a given size is cut into stripes
// and blocks.
type layout struct {
	k, n    int
	stripe  int64 // full stripe: k * block
	block   int64 // full block
	size    int64 // ciphertext bytes
	stripes int64
}

func newLayout(k, n int, stripe, size int64) layout {
	l := layout{k: k, n: n, stripe: stripe, block: stripe / int64(k), size: size}
	l.stripes = (size + stripe - 1) / stripe
	return l
}

// dataLen is the number of ciphertext bytes in stripe s.
func (l layout) dataLen(s int64) int64 {
	if s < l.stripes-1 {
		return l.stripe
	}
	return l.size - s*l.stripe
}

// blockLen is the size of every block of stripe s: the full block size,
// except in the last stripe, where it is ceil(remaining / k).
func (l layout) blockLen(s int64) int64 {
	if s < l.stripes-1 {
		return l.block
	}
	return (l.dataLen(s) + int64(l.k) - 1) / int64(l.k)
}

// shareHeader returns the 32-byte header of share index of a record.
func shareHeader(id RecordID, index, k, n int, block int64) []byte {
	h := make([]byte, ShareHeaderSize)
	copy(h[0:4], shareMagic)
	h[4] = shareVersion
	h[5] = byte(index)
	h[6] = byte(k)
	h[7] = byte(n)
	binary.BigEndian.PutUint32(h[8:12], uint32(block))
	copy(h[12:28], id[:])
	// h[28:32] reserved, zero.
	return h
}

// checkShareHeader compares a header read from a share with the one the
// manifest expects and says, without echoing the bytes, what differs.
func checkShareHeader(got []byte, id RecordID, index, k, n int, block int64) error {
	want := shareHeader(id, index, k, n, block)
	if bytes.Equal(got, want) {
		return nil
	}
	switch {
	case len(got) < ShareHeaderSize:
		return fmt.Errorf("%w: header truncated", ErrCorruptShare)
	case string(got[0:4]) != shareMagic:
		return fmt.Errorf("%w: not a medwallet share (bad magic)", ErrCorruptShare)
	case got[4] != shareVersion:
		return fmt.Errorf("%w: share version %d", ErrUnknownVersion, got[4])
	case !bytes.Equal(got[12:28], id[:]):
		return fmt.Errorf("%w: share belongs to another record", ErrCorruptShare)
	case got[5] != byte(index):
		return fmt.Errorf("%w: share holds index %d, expected %d", ErrCorruptShare, got[5], index)
	default:
		return fmt.Errorf("%w: header does not match the manifest", ErrCorruptShare)
	}
}
