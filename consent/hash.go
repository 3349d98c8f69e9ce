package consent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/hdevalence/ed25519consensus"
)

// Hash is a SHA-256 digest: of an entry's full encoding (its ID), of an
// encrypted manifest, of a feed head.
type Hash [32]byte

// ErrBadHash reports a string that is not a 64-digit hexadecimal hash.
var ErrBadHash = errors.New("not a hash")

// String returns the hash in lowercase hexadecimal.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros (the "no previous entry" value).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler (JSON uses hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	x, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = x
	return nil
}

// ParseHash parses 64 hexadecimal digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: want %d hex digits, got %d", ErrBadHash, 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("%w: %q is not hexadecimal", ErrBadHash, s)
	}
	return h, nil
}

// HashBytes returns the SHA-256 of b.
func HashBytes(b []byte) Hash { return sha256.Sum256(b) }

// A Signer signs ledger entries and requests for one identity.
// The wallet implements it over the key in the OS keyring.
type Signer interface {
	// ID is the identity whose key makes the signatures.
	ID() ID
	// Sign returns the Ed25519 signature of msg.
	Sign(msg []byte) ([]byte, error)
}

// KeySigner is a Signer over an Ed25519 private key held in memory.
type KeySigner struct {
	id   ID
	priv ed25519.PrivateKey
}

// NewKeySigner returns a Signer for priv.
func NewKeySigner(priv ed25519.PrivateKey) (*KeySigner, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("consent: Ed25519 private key has the wrong size")
	}
	id, err := IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &KeySigner{id: id, priv: priv}, nil
}

// ID implements Signer.
func (s *KeySigner) ID() ID { return s.id }

// Sign implements Signer.
func (s *KeySigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// verifySig checks an Ed25519 signature by the key embedded in id, under
// the ZIP-215 rules (see batch.go). The ID is self-certifying, so no
// separate key registry is needed.
func verifySig(id ID, msg, sig []byte) bool {
	pub, err := cachedPublicKey(id)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519consensus.Verify(pub, msg, sig)
}
