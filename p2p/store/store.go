// Package store names what a peer keeps on disk, without the disk: the
// metadata of a stored share, a stored manifest copy, their limits and
// errors. The protocols (p2p/shares, p2p/manifests) declare the few methods
// they need of a store in these terms; p2p/store/boltstore implements them
// in one bbolt file. Keeping the database below its own package means a
// light client, which links the protocols' client halves, links no bbolt.
//
// Everything stored is ciphertext, content hashes, random IDs and public
// keys. Every share is tagged with the owner who put it and the record it
// belongs to, so that the peer can ask the consent policy before serving it.
package store

import (
	"errors"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
)

// MaxManifest bounds one stored manifest envelope.
const MaxManifest = 16 << 20

var (
	// ErrNotFound reports a share or manifest this peer does not hold.
	ErrNotFound = vault.ErrNotFound
	// ErrOwner reports a share that already belongs to another owner.
	ErrOwner = errors.New("share belongs to another owner")
	// ErrTooLarge reports an object over the configured limit.
	ErrTooLarge = errors.New("too large")

	// The admission refusals (see Limits). Each has a protocol code
	// (Code) that the shares and manifests protocols send and their
	// clients map back to the same error (CodeError), so that a client
	// can place the object on another peer and the CLI can say why.

	// ErrQuota reports a put that would take the owner over its quota
	// of bytes or objects on this peer.
	ErrQuota = errors.New("the owner's storage quota on this peer is used up")
	// ErrPutRate reports an owner putting faster than the peer allows.
	ErrPutRate = errors.New("too many puts from this owner; slow down")
	// ErrStorageFull reports a peer whose disk is below its free-space
	// watermark: it keeps what is left for its access log.
	ErrStorageFull = errors.New("the peer's disk is nearly full")
	// ErrNotAllowed reports an owner the peer's storage policy does not
	// admit (it stores only for the owners on its allowlist).
	ErrNotAllowed = errors.New("this peer does not store for this owner")
)

// The protocol codes of the admission refusals.
const (
	CodeQuota       = "quota"
	CodePutRate     = "put-rate"
	CodeStorageFull = "storage-full"
	CodeNotAllowed  = "not-allowed"
)

var codes = []struct {
	code string
	err  error
}{
	{CodeQuota, ErrQuota}, {CodePutRate, ErrPutRate}, {CodeStorageFull, ErrStorageFull}, {CodeNotAllowed, ErrNotAllowed},
}

// Code is the protocol code of an admission refusal, or "" if err is none.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// CodeError is the admission error of a protocol code, or nil if code is
// not one.
func CodeError(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// ShareMeta is what the peer knows about a share besides its bytes.
type ShareMeta struct {
	Owner   consent.ID `cbor:"1,keyasint"`
	Record  string     `cbor:"2,keyasint"`
	Size    int64      `cbor:"3,keyasint"`
	Upload  uint64     `cbor:"4,keyasint"`
	Created int64      `cbor:"5,keyasint"`
}

// ManifestCopy is one stored manifest.
type ManifestCopy struct {
	Owner     consent.ID
	Record    string
	Recipient consent.ID
	Envelope  []byte
}
