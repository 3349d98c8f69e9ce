package smarthealth

import (
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxJWE bounds the compact JWE text Decrypt reads: 64 MiB of ciphertext in
// base64url, more than any record a wallet shares behind a link.
const MaxJWE = 64 << 20 * 4 / 3

// Content types the specification allows behind a link.
const (
	ContentFHIR      = "application/fhir+json"
	ContentCard      = "application/smart-health-card"
	ContentAPIAccess = "application/smart-api-access"
)

// ErrDecrypt is what every refusal of Decrypt wraps. Its text never holds
// the key or the content.
var ErrDecrypt = errors.New("cannot decrypt SMART Health Link file")

// EncryptOptions are the choices of Encrypt.
type EncryptOptions struct {
	ContentType string // the "cty" header; required
	Compress    bool   // "zip": "DEF"
}

// Encrypt returns plaintext as a compact JWE for the link's key:
// alg dir, enc A256GCM, cty set, zip DEF if asked.
func Encrypt(key Key, plaintext []byte, opts EncryptOptions) (string, error) {
	if opts.ContentType == "" {
		return "", errors.New("smarthealth: encrypt: no content type")
	}
	eo := (&jose.EncrypterOptions{}).WithContentType(jose.ContentType(opts.ContentType))
	if opts.Compress {
		eo.Compression = jose.DEFLATE
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key[:]}, eo)
	if err != nil {
		return "", fmt.Errorf("smarthealth: encrypt: %w", err)
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("smarthealth: encrypt: %w", err)
	}
	text, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("smarthealth: encrypt: %w", err)
	}
	return text, nil
}

// Decrypted is a file's content and its "cty" header ("" when the file
// has none, as older links' files may).
type Decrypted struct {
	ContentType string
	Content     []byte
}

// Decrypt opens a compact JWE with the link's key. Only alg dir and enc
// A256GCM are accepted; the JWE is at most MaxJWE characters.
func Decrypt(key Key, jwe string) (Decrypted, error) {
	if len(jwe) > MaxJWE {
		return Decrypted{}, fmt.Errorf("%w: longer than %d characters", ErrDecrypt, MaxJWE)
	}
	obj, err := jose.ParseEncryptedCompact(jwe, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return Decrypted{}, fmt.Errorf("%w: not a compact JWE with alg dir and enc A256GCM", ErrDecrypt)
	}
	plain, err := obj.Decrypt(key[:])
	if err != nil {
		return Decrypted{}, fmt.Errorf("%w: wrong key, damaged file or content too large", ErrDecrypt)
	}
	cty, _ := obj.Header.ExtraHeaders[jose.HeaderContentType].(string)
	return Decrypted{ContentType: cty, Content: plain}, nil
}
