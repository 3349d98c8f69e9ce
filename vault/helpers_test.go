package vault_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"filippo.io/age"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

type owner struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	age  *age.X25519Identity
}

func newOwner(t testing.TB) owner {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return owner{pub, priv, id}
}

func randomData(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func seal(t testing.TB, o owner, store vault.ShareStore, data []byte, p vault.Params) *vault.Manifest {
	t.Helper()
	m, err := vault.Seal(context.Background(), bytes.NewReader(data), store, vault.SealOptions{Params: p, Owner: o.pub, Label: "test"})
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return m
}

func open(t testing.TB, m *vault.Manifest, src vault.ShareGetter) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	err := vault.Open(context.Background(), m, src, &out, vault.OpenOptions{})
	return out.Bytes(), err
}

// sealMem seals data into a fresh in-memory store.
func sealMem(t testing.TB, data []byte, p vault.Params) (*memstore.Store, *vault.Manifest, owner) {
	t.Helper()
	o := newOwner(t)
	s := memstore.New()
	return s, seal(t, o, s, data, p), o
}
