package smarthealth

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// The specification's example: IPS_IG-bundle-01-enc.txt decrypts with the
// key of IPS_IG-bundle-01-shl-details.json to IPS_IG-bundle-01.json.
func TestDecryptSpecExample(t *testing.T) {
	l, err := ParseLink(string(readShared(t, "IPS_IG-bundle-01-shl.txt")))
	if err != nil {
		t.Fatal(err)
	}
	jwe := strings.TrimSpace(string(readShared(t, "IPS_IG-bundle-01-enc.txt")))
	d, err := Decrypt(l.Key, jwe)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	want := readShared(t, "IPS_IG-bundle-01.json")
	if !bytes.Equal(bytes.TrimSpace(d.Content), bytes.TrimSpace(want)) {
		t.Fatalf("content differs from IPS_IG-bundle-01.json (%d vs %d bytes)", len(d.Content), len(want))
	}

	// One flipped character of the ciphertext, or another key, fails.
	i := strings.LastIndexByte(jwe, '.') - 5
	flipped := jwe[:i] + string(jwe[i]^1) + jwe[i+1:]
	if _, err := Decrypt(l.Key, flipped); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("flipped: %v", err)
	}
	other, _ := NewKey()
	if _, err := Decrypt(other, jwe); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other key: %v", err)
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte(`{"resourceType":"Bundle"}`), 1000)
	for _, compress := range []bool{false, true} {
		jwe, err := Encrypt(key, plain, EncryptOptions{ContentType: ContentFHIR, Compress: compress})
		if err != nil {
			t.Fatal(err)
		}
		// Any JWE library reads it: go-jose directly, as a viewer would.
		obj, err := jose.ParseEncryptedCompact(jwe, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatal(err)
		}
		if obj.Header.ExtraHeaders[jose.HeaderContentType] != ContentFHIR {
			t.Fatalf("cty = %v", obj.Header.ExtraHeaders)
		}
		if compress && len(jwe) > len(plain)/4 {
			t.Fatalf("compressed JWE is %d characters for %d bytes", len(jwe), len(plain))
		}
		d, err := Decrypt(key, jwe)
		if err != nil {
			t.Fatal(err)
		}
		if d.ContentType != ContentFHIR || !bytes.Equal(d.Content, plain) {
			t.Fatalf("round trip: %q, %d bytes", d.ContentType, len(d.Content))
		}
	}
	if _, err := Encrypt(key, plain, EncryptOptions{}); err == nil {
		t.Fatal("Encrypt without a content type")
	}
}

func TestDecryptRefusals(t *testing.T) {
	key, _ := NewKey()
	// alg A256KW with the same bytes: refused by the algorithm list.
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.A256KW, Key: key[:]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := enc.Encrypt([]byte("x"))
	kw, _ := obj.CompactSerialize()
	enc, err = jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key[:16]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, _ = enc.Encrypt([]byte("x"))
	a128, _ := obj.CompactSerialize()
	for name, jwe := range map[string]string{
		"A256KW":   kw,
		"A128GCM":  a128,
		"empty":    "",
		"garbage":  "a.b.c.d.e",
		"too long": strings.Repeat("a", MaxJWE+1),
	} {
		if _, err := Decrypt(key, jwe); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A zip bomb: more than 250 kB and ten times the compressed size.
	bomb, err := Encrypt(key, make([]byte, 4<<20), EncryptOptions{ContentType: ContentFHIR, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(key, bomb); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("zip bomb: %v", err)
	}
}
