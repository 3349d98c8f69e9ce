package smarthealth

// SMART Health Cards (https://spec.smarthealth.cards): a FHIR Bundle in a
// W3C Verifiable Credential, as the payload of a compact JWS signed with
// ES256 and compressed with raw DEFLATE. A card reaches the wallet as a
// `.smart-health-card` file (JSON {"verifiableCredential": [JWS...]}), as
// the numeric QR payload `shc:/DIGITS` (or its chunks `shc:/i/n/DIGITS`),
// or as a bare JWS.

import (
	"bytes"
	"compress/flate"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// VCTypeHealthCard is the credential type every SMART Health Card carries.
const VCTypeHealthCard = "https://smarthealth.cards#health-card"

// MediaTypeCard is the media type of a card file (and of an SHC file in a
// SMART Health Link manifest).
const MediaTypeCard = "application/smart-health-card"

// Limits. A card file or QR text is read up to MaxCardInput bytes; a JWS
// payload inflates to at most MaxPayload bytes (the spec keeps QR payloads
// under 3 KB compressed; files may hold larger Bundles); a file holds at
// most MaxCards credentials; a QR payload has at most MaxChunks chunks.
const (
	MaxCardInput = 4 << 20
	MaxPayload   = 8 << 20
	MaxCards     = 64
	MaxChunks    = 99
)

// Errors. A refused card returns a *VerifyError whose Unwrap gives one of
// the Err* reasons below; a card that cannot be read at all is ErrMalformed.
var (
	ErrMalformed     = errors.New("not a well-formed SMART Health Card")
	ErrSignature     = errors.New("the signature does not verify")
	ErrUnknownIssuer = errors.New("the issuer is not trusted")
	ErrUnknownKey    = errors.New("the issuer's keys do not include the signing key")
	ErrExpired       = errors.New("the card has expired")
	ErrNotYetValid   = errors.New("the card is not valid yet")
	ErrWrongType     = errors.New("the credential is not a health card")
)

// VerifyError says why a card was refused. It names the issuer and key
// (public identifiers, never card contents).
type VerifyError struct {
	Issuer, Kid string
	Reason      error // one of the Err* reasons
	Detail      string
}

func (e *VerifyError) Error() string {
	s := fmt.Sprintf("smart health card from %q: %v", e.Issuer, e.Reason)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *VerifyError) Unwrap() error { return e.Reason }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Header is the protected header of a card's JWS.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Zip string `json:"zip"`
	Typ string `json:"typ,omitempty"`
}

// Card is a parsed, not yet verified, SMART Health Card.
type Card struct {
	JWS    string
	Header Header
	// Issuer is the iss claim: the issuer's base URL.
	Issuer string
	// NotBefore is the nbf claim (issuance time); Expires the exp claim,
	// zero when absent.
	NotBefore, Expires time.Time
	// Types is vc.type; FHIRVersion vc.credentialSubject.fhirVersion.
	Types       []string
	FHIRVersion string
	// Bundle is vc.credentialSubject.fhirBundle, the FHIR Bundle JSON as
	// the card carries it.
	Bundle json.RawMessage
	// RevocationID is vc.rid when present.
	RevocationID string

	signingInput []byte
	sig          []byte
}

type payload struct {
	Iss *string          `json:"iss"`
	Nbf *json.Number     `json:"nbf"`
	Exp *json.Number     `json:"exp"`
	VC  *json.RawMessage `json:"vc"`
}

type vc struct {
	Type              []string `json:"type"`
	RID               string   `json:"rid"`
	CredentialSubject *struct {
		FHIRVersion string          `json:"fhirVersion"`
		FHIRBundle  json.RawMessage `json:"fhirBundle"`
	} `json:"credentialSubject"`
}

var b64 = base64.RawURLEncoding

// ParseJWS parses a card's compact JWS: the header must say ES256 and
// zip DEF, the payload is inflated (at most MaxPayload bytes) and its
// claims read. The signature is not checked: see Verify.
func ParseJWS(jws string) (*Card, error) {
	jws = strings.TrimSpace(jws)
	if len(jws) > MaxCardInput {
		return nil, malformed("the JWS is larger than %d bytes", MaxCardInput)
	}
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, malformed("a compact JWS has three parts, this has %d", len(parts))
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, malformed("the JWS header is not base64url")
	}
	var h Header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, malformed("the JWS header is not JSON")
	}
	if h.Alg != "ES256" {
		return nil, malformed("the JWS algorithm is %q, not ES256", clip(h.Alg))
	}
	if h.Zip != "DEF" {
		return nil, malformed("the JWS payload is not compressed (zip %q, want DEF)", clip(h.Zip))
	}
	if h.Kid == "" {
		return nil, malformed("the JWS header has no kid")
	}
	compressed, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, malformed("the JWS payload is not base64url")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, malformed("the JWS signature is not a 64-byte ES256 signature")
	}
	raw, err := Inflate(compressed, MaxPayload)
	if err != nil {
		return nil, err
	}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, malformed("the JWS payload is not a JSON object")
	}
	if p.Iss == nil || *p.Iss == "" {
		return nil, malformed("the payload has no iss")
	}
	if p.VC == nil {
		return nil, malformed("the payload has no vc")
	}
	var v vc
	if err := json.Unmarshal(*p.VC, &v); err != nil {
		return nil, malformed("the payload's vc is not an object")
	}
	if v.CredentialSubject == nil || len(v.CredentialSubject.FHIRBundle) == 0 || v.CredentialSubject.FHIRBundle[0] != '{' {
		return nil, malformed("the credential has no FHIR Bundle")
	}
	c := &Card{
		JWS: jws, Header: h, Issuer: *p.Iss, Types: v.Type, RevocationID: v.RID,
		FHIRVersion: v.CredentialSubject.FHIRVersion, Bundle: v.CredentialSubject.FHIRBundle,
		signingInput: []byte(parts[0] + "." + parts[1]), sig: sig,
	}
	if p.Nbf != nil {
		if c.NotBefore, err = numericDate(*p.Nbf); err != nil {
			return nil, malformed("nbf: %v", err)
		}
	}
	if p.Exp != nil {
		if c.Expires, err = numericDate(*p.Exp); err != nil {
			return nil, malformed("exp: %v", err)
		}
	}
	return c, nil
}

// numericDate reads a JWT NumericDate: seconds since the epoch, possibly
// with a fraction (the spec's examples have milliseconds).
func numericDate(n json.Number) (time.Time, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, errors.New("not a time")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

func clip(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return strings.ToValidUTF8(s, "?")
}

// Inflate decompresses raw DEFLATE (RFC 1951) data, refusing output over
// limit bytes.
func Inflate(data []byte, limit int64) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(data))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, malformed("the payload does not inflate: %v", err)
	}
	if int64(len(out)) > limit {
		return nil, malformed("the payload inflates to more than %d bytes", limit)
	}
	return out, nil
}

// KeyFinder finds the public key that signs for an issuer: the trusted
// issuer's local name and the key, or ErrUnknownIssuer or ErrUnknownKey.
type KeyFinder interface {
	FindKey(iss, kid string) (name string, key *ecdsa.PublicKey, err error)
}

// Verification is what Verify established about a card.
type Verification struct {
	// IssuerName is the local name of the trusted issuer whose key signed.
	IssuerName string
	// Revocation is the card's revocation status (RevocationNone, ...
	// Checked, ...Stale or ...Missing), when keys hold revocation lists.
	Revocation string
}

// Verify checks the card at time now: the signature (ES256 over the JWS
// signing input, by the key kid of the issuer iss), the credential type,
// and nbf and exp. The signature is checked first, so a forged card is
// reported as forged even when it also expired, and a revoked card as
// revoked. When keys also hold revocation lists (RevocationLists, as
// Trust does), the card is checked against the list of its key. Errors
// are *VerifyError.
func (c *Card) Verify(keys KeyFinder, now time.Time) (Verification, error) {
	name, err := c.CheckSignature(keys)
	if err != nil {
		return Verification{}, err
	}
	v := Verification{IssuerName: name}
	if lists, ok := keys.(RevocationLists); ok {
		if v.Revocation, err = c.CheckRevocation(lists); err != nil {
			return v, err
		}
	}
	return v, c.CheckClaims(now)
}

// CheckSignature checks only the signature, and returns the local name of
// the trusted issuer whose key made it.
func (c *Card) CheckSignature(keys KeyFinder) (string, error) {
	name, pub, err := keys.FindKey(c.Issuer, c.Header.Kid)
	if err != nil {
		return "", &VerifyError{Issuer: clip2(c.Issuer), Kid: clip(c.Header.Kid), Reason: err}
	}
	sum := sha256.Sum256(c.signingInput)
	r, s := new(big.Int).SetBytes(c.sig[:32]), new(big.Int).SetBytes(c.sig[32:])
	if !ecdsa.Verify(pub, sum[:], r, s) {
		return "", &VerifyError{Issuer: clip2(c.Issuer), Kid: clip(c.Header.Kid), Reason: ErrSignature}
	}
	return name, nil
}

// CheckClaims checks the credential type and the validity period at now.
func (c *Card) CheckClaims(now time.Time) error {
	fail := func(reason error, detail string) error {
		return &VerifyError{Issuer: clip2(c.Issuer), Kid: clip(c.Header.Kid), Reason: reason, Detail: detail}
	}
	if !slices.Contains(c.Types, VCTypeHealthCard) {
		return fail(ErrWrongType, "vc.type lacks "+VCTypeHealthCard)
	}
	if !c.NotBefore.IsZero() && now.Add(clockSkew).Before(c.NotBefore) {
		return fail(ErrNotYetValid, "valid from "+c.NotBefore.Format(time.RFC3339))
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return fail(ErrExpired, "expired "+c.Expires.Format(time.RFC3339))
	}
	return nil
}

// clockSkew tolerates an issuer's clock running ahead of ours for nbf.
const clockSkew = 5 * time.Minute

// clip2 bounds an issuer URL for messages.
func clip2(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?")
}

// CheckCompactSignature checks the signature of a compact JWS that may not
// parse as a card (a payload that no longer inflates, say), with the
// trusted key its header's kid names. It returns ErrSignature when that
// key does not verify it, ErrUnknownKey when no trusted key has the kid,
// and ErrMalformed when the header or signature cannot be read. A card
// changed in transit is then reported as changed rather than as garbage.
func CheckCompactSignature(jws string, trust Trust) error {
	parts := strings.Split(strings.TrimSpace(jws), ".")
	if len(parts) != 3 {
		return malformed("a compact JWS has three parts")
	}
	hb, err := b64.DecodeString(parts[0])
	var h Header
	if err != nil || json.Unmarshal(hb, &h) != nil || h.Alg != "ES256" {
		return malformed("the JWS header is not an ES256 header")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return malformed("the JWS signature is not a 64-byte ES256 signature")
	}
	is, pub, ok := trust.FindKid(h.Kid)
	if !ok {
		return ErrUnknownKey
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return &VerifyError{Issuer: clip2(is.ISS), Kid: clip(h.Kid), Reason: ErrSignature}
	}
	return nil
}
