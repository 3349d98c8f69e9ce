package shlserve

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// The passcode verifier's parameters (RFC 9106's second recommended
// option, OWASP's minimum): argon2id, 2 passes, 19 MiB, 1 thread.
const (
	saltSize   = 16
	hashSize   = 32
	argonTime  = 2
	argonMemKi = 19 * 1024
)

// NewVerifier returns a fresh salted verifier of passcode. The peer keeps
// it; the passcode itself never leaves the patient's machine.
func NewVerifier(passcode string) (*Verifier, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("passcode salt: %w", err)
	}
	return &Verifier{Salt: salt, Hash: argon2.IDKey([]byte(passcode), salt, argonTime, argonMemKi, 1, hashSize)}, nil
}

// Check reports whether passcode matches v, in constant time.
func (v *Verifier) Check(passcode string) bool {
	if v == nil || len(v.Salt) != saltSize || len(v.Hash) != hashSize {
		return false
	}
	h := argon2.IDKey([]byte(passcode), v.Salt, argonTime, argonMemKi, 1, hashSize)
	return subtle.ConstantTimeCompare(h, v.Hash) == 1
}
