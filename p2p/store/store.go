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
)

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
