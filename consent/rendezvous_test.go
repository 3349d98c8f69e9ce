package consent

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The vectors pin the derivation: a change to any context string, to the
// order of the HMAC inputs or to the key used breaks them, and with them
// every wallet's ability to find its servers after a restore.
func TestRendezvousVectors(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	r, err := Rendezvous(alice)
	if err != nil {
		t.Fatal(err)
	}
	const (
		wantR     = "b59f6208c3db8088136986a4425f751851862a0a190ef8bf525bff329f7a2305"
		wantServe = "47111773d13501181f237384d4737b100f07d3923e969dc334fbce730f62583a"
		wantTopic = "/medwallet/feed/1/ec5aa7f0d1d6e43f8ef750169c209db3e3314d217cf930fa764d76705eade02b"
		wantBobR  = "4faf16d0c5c1abce0c46382c2f4028394ab0b772b2f13f7e9a5d28c48edb7248"
	)
	if got := hex.EncodeToString(r[:]); got != wantR {
		t.Errorf("Rendezvous(alice) = %s, want %s", got, wantR)
	}
	k := ServeKey(alice.ID(), r)
	if got := hex.EncodeToString(k[:]); got != wantServe {
		t.Errorf("ServeKey = %s, want %s", got, wantServe)
	}
	if got := Topic(alice.ID(), r); got != wantTopic {
		t.Errorf("Topic = %s, want %s", got, wantTopic)
	}
	rb, err := Rendezvous(bob)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(rb[:]); got != wantBobR {
		t.Errorf("Rendezvous(bob) = %s, want %s", got, wantBobR)
	}
}

// TestRendezvousSpelledOut recomputes the derivation from the documented
// formulas with the standard library alone.
func TestRendezvousSpelledOut(t *testing.T) {
	seed := sha256.Sum256([]byte("medwallet test key: alice"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	s, err := NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	h := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	sig := ed25519.Sign(priv, []byte("medwallet rendezvous v1\n"))
	wantR := h(sig, "medwallet rendezvous secret v1")
	r, err := Rendezvous(s)
	if err != nil {
		t.Fatal(err)
	}
	if !hmac.Equal(r[:], wantR) {
		t.Fatalf("R = %x, want %x", r, wantR)
	}
	k := ServeKey(s.ID(), r)
	if want := h(wantR, "medwallet serve key v1\n"+string(s.ID())); !hmac.Equal(k[:], want) {
		t.Errorf("ServeKey = %x, want %x", k, want)
	}
	if want := "/medwallet/feed/1/" + hex.EncodeToString(h(wantR, "medwallet gossip topic v1\n"+string(s.ID()))); Topic(s.ID(), r) != want {
		t.Errorf("Topic = %s, want %s", Topic(s.ID(), r), want)
	}
}

// TestRendezvousSeparates checks that the secret depends on the key, and
// that the serve key and topic depend on both the subject and the secret,
// and that neither contains the subject's ID.
func TestRendezvousSeparates(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	ra, _ := Rendezvous(alice)
	rb, _ := Rendezvous(bob)
	if ra == rb {
		t.Fatal("two keys derive the same secret")
	}
	if ServeKey(alice.ID(), ra) == ServeKey(alice.ID(), rb) || ServeKey(alice.ID(), ra) == ServeKey(bob.ID(), ra) {
		t.Error("serve key ignores its subject or its secret")
	}
	if Topic(alice.ID(), ra) == Topic(alice.ID(), rb) || Topic(alice.ID(), ra) == Topic(bob.ID(), ra) {
		t.Error("topic ignores its subject or its secret")
	}
	k := ServeKey(alice.ID(), ra)
	if strings.Contains(Topic(alice.ID(), ra), hex.EncodeToString(k[:])) {
		t.Error("the topic reveals the serve key")
	}
	if strings.Contains(Topic(alice.ID(), ra), string(alice.ID())) {
		t.Error("the topic names its subject")
	}
}

type badSigner struct {
	id  ID
	sig func(n int) []byte
	n   int
}

func (b *badSigner) ID() ID { return b.id }
func (b *badSigner) Sign([]byte) ([]byte, error) {
	b.n++
	return b.sig(b.n), nil
}

func TestRendezvousRefusesBadSigners(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	msg := []byte("medwallet rendezvous v1\n")
	good, _ := alice.Sign(msg)
	other, _ := bob.Sign(msg)
	tests := []struct {
		name string
		sig  func(n int) []byte
	}{
		{"wrong key", func(int) []byte { return other }},
		{"short", func(int) []byte { return good[:10] }},
		{"not deterministic", func(n int) []byte {
			if n == 1 {
				return good
			}
			return append([]byte(nil), other...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Rendezvous(&badSigner{id: alice.ID(), sig: tc.sig})
			if !errors.Is(err, ErrRendezvous) {
				t.Fatalf("err = %v, want ErrRendezvous", err)
			}
		})
	}
}
