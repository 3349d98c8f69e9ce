// Package vectors defines the JSON shape of the consent test vectors and
// the fixed keys they use. It is shared by the generator and the tests.
package vectors

import (
	"crypto/ed25519"
	"crypto/sha256"
	"github.com/medwallet/medwallet/consent"
)

// VectorFile is the JSON shape of consent/testdata/vectors/*.json: fixed
// keys and cases, each a sequence of encoded entries (or requests) with
// the outcome every implementation must reach.
type VectorFile struct {
	Description string       `json:"description"`
	Keys        []VectorKey  `json:"keys"`
	Cases       []VectorCase `json:"cases"`
}

// VectorKey is a fixed test key: Seed is the Ed25519 seed in hex.
type VectorKey struct {
	Name string     `json:"name"`
	Seed string     `json:"seed"`
	ID   consent.ID `json:"id"`
}

// VectorCase is one test vector. Feed is the author whose feed Entries
// claim to be (empty for request cases). Error is empty for valid cases,
// else one of the names in VectorErrors. Kinds names the kind of each
// entry of a valid feed case ("identity", ..., "credential",
// "break-glass", "review").
type VectorCase struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Feed        consent.ID    `json:"feed,omitempty"`
	Entries     []string      `json:"entries,omitempty"` // hex, canonical CBOR
	Request     string        `json:"request,omitempty"` // hex, canonical CBOR
	Valid       bool          `json:"valid"`
	Error       string        `json:"error,omitempty"`
	Head        *consent.Head `json:"head,omitempty"` // head of a valid feed
	Kinds       []string      `json:"kinds,omitempty"`
}

// VectorErrors maps the error names used in test vectors to the errors
// the Go implementation returns (tested with errors.Is).
var VectorErrors = map[string]error{
	"malformed":      consent.ErrMalformed,
	"not-canonical":  consent.ErrNotCanonical,
	"unknown-kind":   consent.ErrUnknownKind,
	"bad-signature":  consent.ErrBadSignature,
	"wrong-prev":     consent.ErrWrongPrev,
	"gap":            consent.ErrGap,
	"reordered":      consent.ErrReordered,
	"wrong-author":   consent.ErrWrongAuthor,
	"equivocation":   consent.ErrEquivocation,
	"time-backwards": consent.ErrTimeBackwards,
	"duplicate":      consent.ErrDuplicate,
}

// TestKey derives a fixed Ed25519 key from a name, for test vectors and
// tests only: seed = SHA-256("medwallet test key: " + name).
func TestKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("medwallet test key: " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}
