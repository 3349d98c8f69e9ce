package vault

// Repair capabilities: what a repairer needs to check, audit and rebuild a
// record's shares, and nothing more. A capability holds the record ID, the
// owner's public key, k, n, the stripe layout, the ciphertext size and
// root, each share's content address and block hashes, and (a hint) the
// peer each share was first placed on. It holds no record key, no
// metadata, no label: only hashes of ciphertext. It is canonical CBOR
// signed by the owner under RepairCapContext (docs/format.md, "Repair
// capabilities"), and is not encrypted: it says no more than the shares
// themselves do.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/blake3"

	"github.com/medwallet/medwallet/internal/canon"
)

// RepairCapVersion is the only capability version this code reads and
// writes.
const RepairCapVersion = 1

// RepairCapContext is prepended to the capability body before it is
// signed, so that a capability signature can never be taken for a
// manifest's or a ledger entry's.
const RepairCapContext = "medwallet/vault/repaircap/v1\x00"

// MaxRepairCapSize bounds an encoded capability (the block hashes of a
// record of about a terabyte at the defaults).
const MaxRepairCapSize = MaxManifestSize

// MaxHolderHint bounds one share's holder hint (a libp2p peer ID).
const MaxHolderHint = 128

// ErrBadRepairCap reports a capability that is malformed or inconsistent.
var ErrBadRepairCap = errors.New("malformed repair capability")

// RepairCap is a record's repair capability.
type RepairCap struct {
	RecordID   RecordID
	Owner      ed25519.PublicKey
	K, N       int
	StripeSize int64
	CipherSize int64
	CipherRoot Hash
	Shares     []ShareRef
	// Holders are the peers (libp2p peer IDs) each share was placed on,
	// "" when unknown: a hint, the repairer asks the peers all the same.
	Holders []string
}

// NewRepairCap returns the capability of the record m describes; holders,
// if not nil, has one entry per share.
func NewRepairCap(m *Manifest, holders []string) (*RepairCap, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	c := &RepairCap{
		RecordID: m.RecordID, Owner: slices.Clone(m.Owner), K: m.K, N: m.N,
		StripeSize: m.StripeSize, CipherSize: m.CipherSize, CipherRoot: m.CipherRoot,
		Shares: make([]ShareRef, len(m.Shares)),
	}
	for i, s := range m.Shares {
		c.Shares[i] = ShareRef{ID: s.ID, BlockHashes: slices.Clone(s.BlockHashes)}
	}
	if holders != nil {
		if len(holders) != m.N {
			return nil, fmt.Errorf("%w: %d holders for %d shares", ErrBadRepairCap, len(holders), m.N)
		}
		c.Holders = slices.Clone(holders)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// layoutManifest is the capability as a manifest without key or metadata,
// for the share readers Open and Verify use.
func (c *RepairCap) layoutManifest() *Manifest {
	return &Manifest{Version: ManifestVersion, RecordID: c.RecordID, Owner: c.Owner, K: c.K, N: c.N,
		StripeSize: c.StripeSize, CipherSize: c.CipherSize, CipherRoot: c.CipherRoot, Shares: c.Shares}
}

func (c *RepairCap) validate() error {
	if err := c.layoutManifest().validateLayout(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRepairCap, err)
	}
	if c.Holders != nil && len(c.Holders) != c.N {
		return fmt.Errorf("%w: %d holders for %d shares", ErrBadRepairCap, len(c.Holders), c.N)
	}
	for _, h := range c.Holders {
		if len(h) > MaxHolderHint {
			return fmt.Errorf("%w: holder hint longer than %d bytes", ErrBadRepairCap, MaxHolderHint)
		}
	}
	return nil
}

// Stripes returns the number of stripes (blocks per share) of the record.
func (c *RepairCap) Stripes() int64 { return c.layoutManifest().Stripes() }

// BlockLen returns the length of block s of every share.
func (c *RepairCap) BlockLen(s int64) int64 { return c.layoutManifest().layout().blockLen(s) }

// ShareSize returns the size of every share of the record, header included.
func (c *RepairCap) ShareSize() int64 {
	l := c.layoutManifest().layout()
	return ShareHeaderSize + (l.stripes-1)*l.block + l.blockLen(l.stripes-1)
}

// CheckBlock reports whether data is block s of share i.
func (c *RepairCap) CheckBlock(i int, s int64, data []byte) error {
	if i < 0 || i >= len(c.Shares) || s < 0 || s >= int64(len(c.Shares[i].BlockHashes)) {
		return fmt.Errorf("%w: no block %d of share %d", ErrCorruptShare, s, i)
	}
	if int64(len(data)) != c.BlockLen(s) {
		return fmt.Errorf("%w: block %d of share %d has %d bytes, want %d", ErrCorruptShare, s, i, len(data), c.BlockLen(s))
	}
	if Hash(blake3.Sum256(data)) != c.Shares[i].BlockHashes[s] {
		return fmt.Errorf("%w: block %d of share %d does not match its hash", ErrCorruptShare, s, i)
	}
	return nil
}

// ShareIndex returns the index of share id in the record, or -1.
func (c *RepairCap) ShareIndex(id ShareID) int {
	for i, s := range c.Shares {
		if s.ID == id {
			return i
		}
	}
	return -1
}

// Wire form (docs/format.md). Keys are text; deterministic CBOR sorts them.
type wireRepairCap struct {
	V       uint64      `cbor:"v"`
	ID      []byte      `cbor:"id"`
	Owner   []byte      `cbor:"owner"`
	K       uint64      `cbor:"k"`
	N       uint64      `cbor:"n"`
	Stripe  uint64      `cbor:"stripe"`
	Size    uint64      `cbor:"size"`
	Root    []byte      `cbor:"root"`
	Shares  []wireShare `cbor:"shares"`
	Holders []string    `cbor:"holders,omitempty"`
}

// Sign returns the signed capability: canonical CBOR {body, sig}, sig
// being Ed25519(priv, RepairCapContext || body). priv must be the owner's.
func (c *RepairCap) Sign(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize || !priv.Public().(ed25519.PublicKey).Equal(c.Owner) {
		return nil, errors.New("vault: sign repair capability: key is not the owner's")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	w := wireRepairCap{
		V: RepairCapVersion, ID: c.RecordID[:], Owner: c.Owner, K: uint64(c.K), N: uint64(c.N),
		Stripe: uint64(c.StripeSize), Size: uint64(c.CipherSize), Root: c.CipherRoot[:],
		Shares: make([]wireShare, len(c.Shares)), Holders: c.Holders,
	}
	for i, s := range c.Shares {
		hs := make([]byte, 0, len(s.BlockHashes)*HashSize)
		for _, h := range s.BlockHashes {
			hs = append(hs, h[:]...)
		}
		w.Shares[i] = wireShare{ID: s.ID[:], Hashes: hs}
	}
	body, err := canon.Marshal(w)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(priv, append([]byte(RepairCapContext), body...))
	return canon.Marshal(wireEnvelope{Body: body, Sig: sig})
}

// ParseRepairCap parses a signed capability: at most MaxRepairCapSize
// bytes of strict canonical CBOR, a known version, consistent fields, and a
// signature by the owner it names. If owner is not nil, that must be it.
func ParseRepairCap(env []byte, owner ed25519.PublicKey) (*RepairCap, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrBadRepairCap, what) }
	if len(env) > MaxRepairCapSize {
		return nil, bad("too large")
	}
	var e wireEnvelope
	if err := codec.Unmarshal(env, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRepairCap, err)
	}
	var v wireVersion
	if err := codec.Peek(e.Body, &v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRepairCap, err)
	}
	if v.V != RepairCapVersion {
		return nil, fmt.Errorf("%w: repair capability version %d", ErrUnknownVersion, v.V)
	}
	var w wireRepairCap
	if err := codec.Unmarshal(e.Body, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRepairCap, err)
	}
	if len(w.Owner) != ed25519.PublicKeySize {
		return nil, bad("owner key size")
	}
	if owner != nil && !owner.Equal(ed25519.PublicKey(w.Owner)) {
		return nil, bad("owner is not the one expected")
	}
	if len(e.Sig) != ed25519.SignatureSize || !ed25519.Verify(w.Owner, append([]byte(RepairCapContext), e.Body...), e.Sig) {
		return nil, ErrBadSignature
	}
	if len(w.ID) != len(RecordID{}) || len(w.Root) != HashSize {
		return nil, bad("record ID or root size")
	}
	if w.K > MaxShares || w.N > MaxShares || w.Stripe > MaxStripeSize || w.Size > 1<<50 {
		return nil, bad("parameters out of range")
	}
	c := &RepairCap{
		Owner: ed25519.PublicKey(bytes.Clone(w.Owner)), K: int(w.K), N: int(w.N),
		StripeSize: int64(w.Stripe), CipherSize: int64(w.Size), Shares: make([]ShareRef, len(w.Shares)),
		Holders: w.Holders,
	}
	copy(c.RecordID[:], w.ID)
	copy(c.CipherRoot[:], w.Root)
	if err := shareRefs(c.Shares, w.Shares, bad); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// RebuildOptions configure Rebuild.
type RebuildOptions struct {
	// From lists the share indexes to read from, in order of preference
	// (healthy holders first); nil means every share not being rebuilt.
	From []int
}

// RebuildResult says what Rebuild read and wrote.
type RebuildResult struct {
	Read    []int         // the shares read from (the last k used)
	Sources []ShareHealth // the health of every share tried as a source
	Written []ShareID     // the rebuilt shares' IDs, in the order of missing
	Bytes   int64         // share bytes written in all
}

// Rebuild rebuilds the shares named by missing (indexes) of the record c
// describes from k others read from src, stripe by stripe, and streams
// each rebuilt share to put (called once per missing share, concurrently;
// it must read its reader to EOF or fail). It needs no key: it works on
// ciphertext blocks only. Every block read is checked against its hash
// before use, a source that fails is replaced by the next one, and every
// rebuilt block is checked against the capability before it is written,
// as is each rebuilt share's content address. Memory is n blocks.
func Rebuild(ctx context.Context, c *RepairCap, src ShareGetter, missing []int,
	put func(i int, r io.Reader) (ShareID, error), opts RebuildOptions) (RebuildResult, error) {
	var res RebuildResult
	if err := c.validate(); err != nil {
		return res, err
	}
	if len(missing) == 0 {
		return res, nil
	}
	isMissing := make([]bool, c.N)
	for _, i := range missing {
		if i < 0 || i >= c.N || isMissing[i] {
			return res, fmt.Errorf("vault: rebuild: bad share index %d", i)
		}
		isMissing[i] = true
	}
	from := opts.From
	if from == nil {
		for i := range c.N {
			if !isMissing[i] {
				from = append(from, i)
			}
		}
	}
	m := c.layoutManifest()
	l := m.layout()
	enc, err := reedsolomon.New(c.K, c.N-c.K, reedsolomon.WithAutoGoroutines(int(l.block)))
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadParams, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// One pipe and one put per rebuilt share.
	type out struct {
		pw  *io.PipeWriter
		id  ShareID
		err error
	}
	outs := make([]*out, len(missing))
	var wg sync.WaitGroup
	for j, i := range missing {
		pr, pw := io.Pipe()
		o := &out{pw: pw}
		outs[j] = o
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.id, o.err = put(i, pr)
			pr.CloseWithError(errors.Join(o.err, errors.New("vault: rebuild: put stopped")))
		}()
	}
	finish := func(cause error) error {
		for _, o := range outs {
			if cause != nil {
				o.pw.CloseWithError(cause)
			} else {
				o.pw.Close()
			}
		}
		wg.Wait()
		if cause != nil {
			return cause
		}
		for j, o := range outs {
			if o.err != nil {
				return fmt.Errorf("vault: storing rebuilt share %d: %w", missing[j], o.err)
			}
			if o.id != c.Shares[missing[j]].ID {
				return fmt.Errorf("%w: rebuilt share %d has another content address", ErrCiphertext, missing[j])
			}
			res.Written = append(res.Written, o.id)
		}
		return nil
	}
	writeAll := func(b func(j int) []byte) error {
		var ew sync.WaitGroup
		errs := make([]error, len(outs))
		for j, o := range outs {
			ew.Add(1)
			go func() {
				defer ew.Done()
				_, errs[j] = o.pw.Write(b(j))
			}()
		}
		ew.Wait()
		return errors.Join(errs...)
	}
	if err := writeAll(func(j int) []byte { return shareHeader(c.RecordID, missing[j], c.K, c.N, l.block) }); err != nil {
		return res, finish(fmt.Errorf("vault: writing a rebuilt share: %w", err))
	}
	res.Bytes += int64(len(missing)) * ShareHeaderSize

	readers := make([]*shareReader, c.N)
	defer func() {
		for _, sr := range readers {
			if sr != nil {
				sr.close()
			}
		}
	}()
	next := 0
	var active []*shareReader
	activate := func() {
		for len(active) < c.K && next < len(from) {
			i := from[next]
			next++
			if i < 0 || i >= c.N || isMissing[i] || readers[i] != nil {
				continue
			}
			sr := m.openShare(ctx, src, i)
			readers[i] = sr
			if sr.ok() {
				active = append(active, sr)
			}
		}
	}
	sources := func() []ShareHealth {
		var hs []ShareHealth
		for _, sr := range readers {
			if sr != nil {
				hs = append(hs, sr.health)
			}
		}
		return hs
	}
	bufs := make([][]byte, c.N)
	for i := range bufs {
		bufs[i] = make([]byte, l.block)
	}
	shards := make([][]byte, c.N)
	for s := range l.stripes {
		bl := l.blockLen(s)
		for {
			activate()
			if len(active) < c.K {
				res.Sources = sources()
				if err := ctx.Err(); err != nil {
					return res, finish(err)
				}
				usable := 0
				for _, h := range res.Sources {
					if h.Status == StatusOK {
						usable++
					}
				}
				return res, finish(&NotEnoughSharesError{K: c.K, N: c.N, Usable: usable, Shares: res.Sources})
			}
			var rw sync.WaitGroup
			for _, sr := range active {
				if sr.next > s {
					continue
				}
				rw.Add(1)
				go func() {
					defer rw.Done()
					sr.readBlock(m, l, s, bufs[sr.index][:bl])
				}()
			}
			rw.Wait()
			if err := ctx.Err(); err != nil {
				return res, finish(err)
			}
			good := active[:0]
			for _, sr := range active {
				if sr.ok() {
					good = append(good, sr)
				}
			}
			active = good
			if len(active) == c.K {
				break
			}
		}
		for i := range shards {
			shards[i] = nil
		}
		for _, sr := range active {
			shards[sr.index] = bufs[sr.index][:bl]
		}
		for _, i := range missing {
			shards[i] = bufs[i][:0]
		}
		if err := enc.ReconstructSome(shards, isMissing); err != nil {
			return res, finish(fmt.Errorf("%w: erasure decoding: %w", ErrCiphertext, err))
		}
		for _, i := range missing {
			if err := c.CheckBlock(i, s, shards[i]); err != nil {
				return res, finish(fmt.Errorf("%w: rebuilt block %d of share %d does not match the capability", ErrCiphertext, s, i))
			}
		}
		if err := writeAll(func(j int) []byte { return shards[missing[j]] }); err != nil {
			return res, finish(fmt.Errorf("vault: writing a rebuilt share: %w", err))
		}
		res.Bytes += int64(len(missing)) * bl
	}
	for _, sr := range active {
		res.Read = append(res.Read, sr.index)
	}
	slices.Sort(res.Read)
	res.Sources = sources()
	if err := finish(nil); err != nil {
		return res, err
	}
	return res, nil
}

// ShareBlockSize reads the full block size from a share's header (its
// first ShareHeaderSize bytes): a holder answering an audit finds block s
// at ShareHeaderSize + s*block without the capability.
func ShareBlockSize(hdr []byte) (int64, error) {
	if _, err := ShareRecord(hdr); err != nil {
		return 0, err
	}
	b := int64(hdr[8])<<24 | int64(hdr[9])<<16 | int64(hdr[10])<<8 | int64(hdr[11])
	if b <= 0 || b > MaxStripeSize {
		return 0, fmt.Errorf("vault: share header: block size %d out of range", b)
	}
	return b, nil
}
