// Package vault turns one medical record into encrypted, erasure-coded,
// content-addressed shares and back.
//
// Sealing a record streams the plaintext through three stages: the payload
// is encrypted with age to a fresh per-record X25519 key, the ciphertext is
// cut into fixed-size stripes and each stripe is Reed-Solomon coded into k
// data and n-k parity blocks, and every block is hashed with BLAKE3 while it
// is written to its share. Share i holds block i of every stripe behind a
// small header. Any k of the n shares rebuild the ciphertext; every block is
// checked against its hash in the manifest before it is used.
//
// The Manifest is everything needed to find, check and rebuild the record:
// record ID, metadata, coding parameters, block hashes, share IDs and the
// record key. It is encoded as deterministic CBOR, signed by the owner's
// Ed25519 key and age-encrypted to the owner. The byte layouts are documented
// in docs/format.md, section "Vault: shares and manifests".
//
// The package is pure: it reads io.Readers, writes io.Writers and talks to
// shares only through the ShareStore interface. It never puts record
// contents in an error message.
package vault

import (
	"context"
	"encoding/hex"
	"errors"
	"io"

	"github.com/zeebo/blake3"
)

// HashSize is the size in bytes of every hash the vault uses for blocks,
// shares and ciphertext (BLAKE3-256).
const HashSize = 32

// Hash is a BLAKE3-256 digest.
type Hash [HashSize]byte

// String returns the lowercase hex form of h.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros (unset).
func (h Hash) IsZero() bool { return h == Hash{} }

// ShareID is the content address of a share: the BLAKE3-256 hash of all of
// its bytes, header included. A store computes it from the bytes it receives.
type ShareID Hash

// String returns the lowercase hex form of the share ID (64 characters).
func (id ShareID) String() string { return hex.EncodeToString(id[:]) }

// ShareHasher returns a hash.Hash-like writer whose Sum gives the ShareID of
// the bytes written to it. Stores use it to compute addresses while
// receiving.
func ShareHasher() *IDHasher { return &IDHasher{h: blake3.New()} }

// IDHasher computes a ShareID over the bytes written to it.
type IDHasher struct{ h *blake3.Hasher }

// Write adds p to the hashed bytes; it never fails.
func (h *IDHasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// ID returns the ShareID of the bytes written so far.
func (h *IDHasher) ID() ShareID {
	var id ShareID
	h.h.Sum(id[:0])
	return id
}

// ComputeShareID returns the content address of a complete share.
func ComputeShareID(share []byte) ShareID { return ShareID(blake3.Sum256(share)) }

// ShareStore keeps shares by content address. Implementations must be safe
// for concurrent use. Every implementation must pass storetest.Run.
type ShareStore interface {
	// Put reads r to EOF and stores its bytes under their content address,
	// which it computes itself and returns. A failed Put (read error,
	// cancelled context) stores nothing. Putting bytes already present is
	// not an error and returns the same ID.
	Put(ctx context.Context, r io.Reader) (ShareID, error)
	// Get opens a stored share. It returns an error wrapping ErrNotFound if
	// the share is absent.
	Get(ctx context.Context, id ShareID) (io.ReadCloser, error)
	// Has reports whether the share is stored.
	Has(ctx context.Context, id ShareID) (bool, error)
	// Delete removes a share. Deleting an absent share is not an error.
	Delete(ctx context.Context, id ShareID) error
}

// ShareSink is where Seal writes a record's shares: every ShareStore is
// one. A sink's Put may accept only shares that Seal wrote, and read the
// share header to place them (the network sink of p2p/client puts each
// share of a record on a different peer); Delete removes what a failed
// Seal stored.
type ShareSink interface {
	Put(ctx context.Context, r io.Reader) (ShareID, error)
	Delete(ctx context.Context, id ShareID) error
}

// ShareGetter is the read side of a ShareStore, all that Open needs.
type ShareGetter interface {
	Get(ctx context.Context, id ShareID) (io.ReadCloser, error)
}

// Progress receives the number of plaintext bytes processed so far, in
// increments. The CLI implements it with a progress bar.
type Progress interface {
	Add(n int64)
}

// Errors returned (wrapped) by the vault.
var (
	// ErrNotFound reports a share absent from a store.
	ErrNotFound = errors.New("share not found")
	// ErrNotEnoughShares reports that fewer than k usable shares remain.
	ErrNotEnoughShares = errors.New("not enough usable shares")
	// ErrCorruptShare reports a share whose header or a block does not match
	// the manifest.
	ErrCorruptShare = errors.New("corrupt share")
	// ErrBadSignature reports a manifest whose signature does not verify
	// against the expected owner key.
	ErrBadSignature = errors.New("manifest signature does not verify")
	// ErrUnknownVersion reports a manifest or share of a version this code
	// does not know.
	ErrUnknownVersion = errors.New("unknown format version")
	// ErrBadManifest reports a manifest that is malformed or inconsistent.
	ErrBadManifest = errors.New("malformed manifest")
	// ErrBadParams reports invalid coding parameters (k, n, stripe size).
	ErrBadParams = errors.New("invalid coding parameters")
	// ErrCiphertext reports a reassembled ciphertext that does not match the
	// manifest or does not decrypt.
	ErrCiphertext = errors.New("ciphertext does not match the manifest")
)

// ctxReader fails reads once ctx is done, so long copies stop promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ContextReader returns a reader that fails with ctx.Err() once ctx is done.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }
