package boltstore

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
)

func ed25519Key(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	seed := sha256.Sum256([]byte("medwallet boltstore test key"))
	return ed25519.NewKeyFromSeed(seed[:])
}
