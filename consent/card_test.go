package consent

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func testCard(t *testing.T) (Card, ed25519.PrivateKey) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	c, err := NewCard(priv, "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "Alice Example", "patient", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c, priv
}

func TestCardRoundTrip(t *testing.T) {
	c, priv := testCard(t)
	got, err := ParseCard(" " + c.String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if got.ID != want || got.Name != "Alice Example" || got.Role != "patient" || got.Created != 1700000000 {
		t.Fatalf("got %+v", got)
	}
	if !strings.HasPrefix(string(got.ID), "12D3KooW") {
		t.Fatalf("ID %q is not an Ed25519 peer ID", got.ID)
	}
}

// Every single-bit change of the encoded card, in any field or in the
// signature, must be refused.
func TestCardFlippedBit(t *testing.T) {
	c, _ := testCard(t)
	raw, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(raw) * 8 {
		b := append([]byte(nil), raw...)
		b[i/8] ^= 1 << (i % 8)
		s := CardPrefix + base64.RawURLEncoding.EncodeToString(b)
		if _, err := ParseCard(s); err == nil {
			t.Fatalf("bit %d flipped: card accepted", i)
		} else if !errors.Is(err, ErrBadCard) {
			t.Fatalf("bit %d flipped: error %v does not wrap ErrBadCard", i, err)
		}
	}
}

// Changing a field and keeping the old signature is refused, field by field.
func TestCardFieldSubstitution(t *testing.T) {
	c, _ := testCard(t)
	other := ed25519.NewKeyFromSeed(append(make([]byte, 31), 1))
	otherID, _ := IDFromPublicKey(other.Public().(ed25519.PublicKey))
	for name, mutate := range map[string]func(*Card){
		"id":      func(c *Card) { c.ID = otherID },
		"age":     func(c *Card) { c.AgeRecipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj" },
		"name":    func(c *Card) { c.Name = "Mallory" },
		"role":    func(c *Card) { c.Role = "clinician" },
		"created": func(c *Card) { c.Created++ },
		"sig":     func(c *Card) { c.Sig = c.Sig[:63] },
	} {
		t.Run(name, func(t *testing.T) {
			m := c
			m.Sig = append([]byte(nil), c.Sig...)
			mutate(&m)
			if _, err := ParseCard(m.String()); !errors.Is(err, ErrBadCard) {
				t.Fatalf("mutated %s: got %v, want ErrBadCard", name, err)
			}
		})
	}
}

func TestParseCardMalformed(t *testing.T) {
	c, _ := testCard(t)
	for name, s := range map[string]string{
		"empty":       "",
		"no prefix":   "hello",
		"bad base64":  CardPrefix + "!!!",
		"truncated":   c.String()[:len(c.String())-10],
		"not cbor":    CardPrefix + base64.RawURLEncoding.EncodeToString([]byte("{}")),
		"too long":    CardPrefix + strings.Repeat("A", 9000),
		"trailing":    c.String() + "AA",
		"old version": strings.Replace(c.String(), "-v1:", "-v0:", 1),
	} {
		if _, err := ParseCard(s); !errors.Is(err, ErrBadCard) {
			t.Errorf("%s: got %v, want ErrBadCard", name, err)
		}
	}
}

func TestNewCardValidates(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	for _, tc := range []struct{ name, role, age, want string }{
		{"", "patient", "age1x", "name is empty"},
		{"A\x00B", "patient", "age1x", "non-printable"},
		{strings.Repeat("x", 65), "patient", "age1x", "longer than 64"},
		{"A", "doctor", "age1x", "unknown role"},
		{"A", "patient", "ssh-ed25519 AAAA", "age recipient"},
	} {
		if _, err := NewCard(priv, tc.age, tc.name, tc.role, time.Now()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCard(%q, %q, %q): got %v, want %q", tc.name, tc.role, tc.age, err, tc.want)
		}
	}
}

func TestIDRoundTrip(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	id, err := IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := id.PublicKey()
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("PublicKey() = %x, %v", pub, err)
	}
	for _, bad := range []string{"", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "hello"} {
		if _, err := ParseID(bad); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseID(%q) = %v, want ErrBadID", bad, err)
		}
	}
}
