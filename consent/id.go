package consent

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ID is an actor's identity: the libp2p peer ID (base58, "12D3KooW...") of
// its Ed25519 signing key. The same string names the actor in the ledger, in
// grants, in the CLI and on the network, so the Noise handshake of a libp2p
// connection already authenticates it.
type ID string

// ErrBadID reports a string that is not the peer ID of an Ed25519 key.
var ErrBadID = errors.New("not a medwallet ID")

// ErrSmallOrderKey reports an ID whose key is a point of small order
// (one of the 8 points P with [8]P = 0, in any of its encodings). Under
// ZIP-215 verification (ed25519consensus) such a key accepts signatures
// that anyone can make, so it identifies no one; it wraps ErrBadID.
var ErrSmallOrderKey = fmt.Errorf("%w: the key is a point of small order, for which anyone can sign", ErrBadID)

// smallOrder reports whether pub decodes (as ZIP-215 decodes: non-canonical
// encodings accepted) to a point of small order.
func smallOrder(pub []byte) bool {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false // nothing verifies under a key that does not decode
	}
	return new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}

// IDFromPublicKey returns the ID of an Ed25519 public key. It encodes any
// key; a small-order key's ID is refused wherever an ID is parsed or a
// signature checked (PublicKey).
func IDFromPublicKey(pub ed25519.PublicKey) (ID, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: public key is %d bytes", ErrBadID, len(pub))
	}
	k, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadID, err)
	}
	pid, err := peer.IDFromPublicKey(k)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadID, err)
	}
	return ID(pid.String()), nil
}

// ParseID checks that s is the ID of an Ed25519 key and returns it.
func ParseID(s string) (ID, error) {
	id := ID(s)
	if _, err := id.PublicKey(); err != nil {
		return "", err
	}
	return id, nil
}

// PublicKey extracts the Ed25519 public key embedded in the ID. It refuses
// a key of small order (ErrSmallOrderKey): every ID parsed, and every
// signature checked (entries, requests, cards, links, certificates),
// comes through here.
func (id ID) PublicKey() (ed25519.PublicKey, error) {
	pid, err := peer.Decode(string(id))
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrBadID, shorten(string(id)))
	}
	k, err := pid.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %q carries no public key", ErrBadID, shorten(string(id)))
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: %q is not an Ed25519 key", ErrBadID, shorten(string(id)))
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadID, err)
	}
	if smallOrder(raw) {
		return nil, fmt.Errorf("%q: %w", shorten(string(id)), ErrSmallOrderKey)
	}
	return ed25519.PublicKey(raw), nil
}

// Short is a readable abbreviation of the ID for human output.
func (id ID) Short() string { return shorten(string(id)) }

func (id ID) String() string { return string(id) }

func shorten(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}
