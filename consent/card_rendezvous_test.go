package consent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// oldCard was made by the code before cards could carry a rendezvous
// secret (testCard's key and fields): it must stay valid as it is.
const oldCard = "medwallet-card-v1:pgF4NDEyRDNLb29XRHBKN0FzN0JXQXdSTWZ1MVZVMldDcU5qdnEzODdKRVlLREJqNGt4Nm5YVE4CeD5hZ2UxcWwzejdoank1NHB3M2h5d3c1YXl5Zmc3enFndmM3dzNqMmVsdzh6bXJqMmtnNXNmbjlhcW1jYWM4cANtQWxpY2UgRXhhbXBsZQRncGF0aWVudAUaZVPxAAZYQEsfu_zcpNU31j57XvDMW7wju8zaFCpl6GE9gqHQIQ7xiY6sa3tVACYvkqf0PfTYozYnNQDOy5T4Ap5_Ja0Ijwk"

func TestOldCardStillValid(t *testing.T) {
	c, err := ParseCard(oldCard)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.RendezvousSecret(); ok {
		t.Error("an old card carries a rendezvous secret")
	}
	if now, _ := testCard(t); now.String() != oldCard {
		t.Error("a card without a secret no longer encodes as before")
	}
}

func TestSharedCard(t *testing.T) {
	c, priv := testCard(t)
	s, err := NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Rendezvous(s)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := NewSharedCard(priv, c, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCard(shared.String())
	if err != nil {
		t.Fatal(err)
	}
	if gr, ok := got.RendezvousSecret(); !ok || gr != r {
		t.Fatal("the shared card does not carry the secret")
	}
	if got.ID != c.ID || got.Name != c.Name || got.AgeRecipient != c.AgeRecipient {
		t.Fatalf("the shared card changed its fields: %+v", got)
	}
	// The secret is signed: another one, or none, breaks the signature.
	swapped := got
	swapped.Rendezvous = make([]byte, 32)
	if err := swapped.Verify(); !errors.Is(err, ErrBadCard) {
		t.Errorf("swapped secret: %v, want ErrBadCard", err)
	}
	stripped := got
	stripped.Rendezvous = nil
	if err := stripped.Verify(); !errors.Is(err, ErrBadCard) {
		t.Errorf("stripped secret: %v, want ErrBadCard", err)
	}
	short := got
	short.Rendezvous = short.Rendezvous[:31]
	if err := short.Verify(); !errors.Is(err, ErrBadCard) {
		t.Errorf("short secret: %v, want ErrBadCard", err)
	}
	// Only the card's own key makes a shared card.
	if _, err := NewSharedCard(ed25519Key(t, "mallory"), c, r); !errors.Is(err, ErrBadCard) {
		t.Errorf("foreign key: %v, want ErrBadCard", err)
	}
	if strings.Contains(string(mustJSON(t, got)), "rendezvous") {
		t.Error("the secret shows in the card's JSON")
	}
}

func ed25519Key(t *testing.T, name string) ed25519.PrivateKey {
	t.Helper()
	seed := sha256.Sum256([]byte("medwallet test key: " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
