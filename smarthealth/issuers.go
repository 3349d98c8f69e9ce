package smarthealth

// Trusted issuers: the JWKS of the issuers whose cards the wallet accepts
// as verified. The wallet keeps them in a local trust directory (a wallet
// may be offline); this file parses and looks them up.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxJWKS bounds a JWKS document, in bytes; MaxKeys the keys kept from one.
const (
	MaxJWKS = 1 << 20
	MaxKeys = 64
)

// JWK is the part of a JSON Web Key (RFC 7517) a card issuer's key uses.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	// CrlVersion, when above 0, says the issuer may revoke cards signed
	// by this key, in the list at CRLURL whose ctr is this number.
	CrlVersion int `json:"crlVersion,omitempty"`
}

// IssuerKey is one verified issuer key: an ES256 P-256 public key and its kid.
type IssuerKey struct {
	Kid string
	JWK JWK
	Pub *ecdsa.PublicKey
}

// ParseJWKS reads a JWKS document and keeps its ES256 signing keys (kty
// EC, crv P-256, use sig or absent, alg ES256 or absent) whose kid is the
// key's RFC 7638 thumbprint, as the SMART Health Cards spec requires.
// Other keys are skipped and counted. At least one key must be usable.
func ParseJWKS(data []byte) (keys []IssuerKey, skipped int, err error) {
	if len(data) > MaxJWKS {
		return nil, 0, fmt.Errorf("%w: the JWKS is larger than %d bytes", ErrBadJWKS, MaxJWKS)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, 0, fmt.Errorf("%w: not a JSON object with a keys array", ErrBadJWKS)
	}
	for _, raw := range doc.Keys {
		var j JWK
		if json.Unmarshal(raw, &j) != nil {
			skipped++
			continue
		}
		k, err := ParseJWK(j)
		if err != nil || len(keys) == MaxKeys {
			skipped++
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("%w: no ES256 P-256 signing key whose kid is its thumbprint", ErrBadJWKS)
	}
	return keys, skipped, nil
}

// ErrBadJWKS reports a JWKS the wallet cannot use.
var ErrBadJWKS = errors.New("not a usable issuer key set")

// ParseJWK checks one key and decodes its point.
func ParseJWK(j JWK) (IssuerKey, error) {
	if j.Kty != "EC" || j.Crv != "P-256" || (j.Use != "" && j.Use != "sig") || (j.Alg != "" && j.Alg != "ES256") {
		return IssuerKey{}, fmt.Errorf("%w: not an ES256 P-256 signing key", ErrBadJWKS)
	}
	x, errX := b64.DecodeString(j.X)
	y, errY := b64.DecodeString(j.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return IssuerKey{}, fmt.Errorf("%w: bad coordinates", ErrBadJWKS)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return IssuerKey{}, fmt.Errorf("%w: the point is not on P-256", ErrBadJWKS)
	}
	if j.Kid != Thumbprint(j) {
		return IssuerKey{}, fmt.Errorf("%w: the kid is not the key's thumbprint", ErrBadJWKS)
	}
	if j.CrlVersion < 0 {
		return IssuerKey{}, fmt.Errorf("%w: a negative crlVersion", ErrBadJWKS)
	}
	return IssuerKey{Kid: j.Kid, JWK: JWK{Kty: j.Kty, Kid: j.Kid, Use: j.Use, Alg: j.Alg, Crv: j.Crv, X: j.X, Y: j.Y,
		CrlVersion: j.CrlVersion}, Pub: pub}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an EC key: base64url of the
// SHA-256 of {"crv","kty","x","y"} in that order, without spaces.
func Thumbprint(j JWK) string {
	canon := `{"crv":` + quote(j.Crv) + `,"kty":` + quote(j.Kty) + `,"x":` + quote(j.X) + `,"y":` + quote(j.Y) + `}`
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Issuer is a trusted issuer: its local name, its iss URL, its keys and
// the card revocation lists held for them, by kid.
type Issuer struct {
	Name string
	ISS  string
	Keys []IssuerKey
	CRLs map[string]*CRL
}

// Trust is a set of trusted issuers; it implements KeyFinder.
type Trust []Issuer

// FindKey implements KeyFinder: the issuer whose iss is iss (compared
// after normalising a trailing slash), and its key kid.
func (t Trust) FindKey(iss, kid string) (string, *ecdsa.PublicKey, error) {
	want := NormalizeISS(iss)
	for _, is := range t {
		if NormalizeISS(is.ISS) != want {
			continue
		}
		for _, k := range is.Keys {
			if k.Kid == kid {
				return is.Name, k.Pub, nil
			}
		}
		return is.Name, nil, ErrUnknownKey
	}
	return "", nil, ErrUnknownIssuer
}

// RevocationList implements RevocationLists: the list held for key kid of
// the issuer iss, and the key's crlVersion.
func (t Trust) RevocationList(iss, kid string) (*CRL, int) {
	want := NormalizeISS(iss)
	for _, is := range t {
		if NormalizeISS(is.ISS) != want {
			continue
		}
		version := 0
		for _, k := range is.Keys {
			if k.Kid == kid {
				version = k.JWK.CrlVersion
			}
		}
		return is.CRLs[kid], version
	}
	return nil, 0
}

// NormalizeISS drops a trailing slash: the spec forbids one, some issuers
// add it.
func NormalizeISS(iss string) string { return strings.TrimRight(iss, "/") }

// CheckISS checks an issuer URL: absolute https (http only for a loopback
// host, for tests), no query or fragment, at most 512 bytes.
func CheckISS(iss string) error {
	if len(iss) > 512 {
		return errors.New("the issuer URL is longer than 512 bytes")
	}
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("the issuer is not an absolute URL without query or fragment")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return errors.New("the issuer URL is not https")
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// JWKSURL is where an issuer publishes its keys: ISS/.well-known/jwks.json.
func JWKSURL(iss string) string { return NormalizeISS(iss) + "/.well-known/jwks.json" }

// FindKid returns the trusted issuers' key whose kid is kid, whatever the
// issuer (a kid is a key's thumbprint, so it names one key).
func (t Trust) FindKid(kid string) (Issuer, *ecdsa.PublicKey, bool) {
	for _, is := range t {
		for _, k := range is.Keys {
			if k.Kid == kid {
				return is, k.Pub, true
			}
		}
	}
	return Issuer{}, nil, false
}
