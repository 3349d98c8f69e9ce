package smarthealth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a link payload. MaxURL and MaxLabel are the specification's.
const (
	MaxLinkText = 4096 // the whole "shlink:/..." text, viewer prefix included
	MaxURL      = 128
	MaxLabel    = 80
	KeySize     = 32
	keyText     = 43 // base64url characters of a 32-byte key, no padding
	// maxExp is 9999-12-31T23:59:59Z: a later expiry is a mistake, not a wish.
	maxExp = 253402300799
)

// LinkScheme starts every link.
const LinkScheme = "shlink:/"

// Flags of a link, as the specification spells them.
const (
	FlagLongTerm = 'L'
	FlagPasscode = 'P'
	FlagDirect   = 'U'
)

// ErrInvalidLink is what every refusal of [ParseLink] and [Link.Encode]
// wraps: errors.Is(err, ErrInvalidLink).
var ErrInvalidLink = errors.New("invalid SMART Health Link")

// LinkError says which field of a link is wrong. It never holds the key.
type LinkError struct {
	Field  string // "url", "key", "exp", "flag", "label", "v" or "" for the whole text
	Reason string
}

func (e *LinkError) Error() string {
	if e.Field == "" {
		return "invalid SMART Health Link: " + e.Reason
	}
	return fmt.Sprintf("invalid SMART Health Link: %s: %s", e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidLink) hold.
func (e *LinkError) Unwrap() error { return ErrInvalidLink }

func linkErr(field, format string, args ...any) error {
	return &LinkError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Key is a link's content key: 32 bytes for A256GCM. Its text form is
// secret; Key has no String method so that it is never printed by accident.
type Key [KeySize]byte

// NewKey returns a fresh random key.
func NewKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("smarthealth: random key: %w", err)
	}
	return k, nil
}

// Text is the key's base64url text, as a link carries it.
func (k Key) Text() string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// ParseKey reads a key's base64url text: exactly 43 characters, no padding.
func ParseKey(s string) (Key, error) {
	if len(s) != keyText {
		return Key{}, linkErr("key", "%d characters, want %d", len(s), keyText)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != KeySize {
		return Key{}, linkErr("key", "not base64url of %d bytes", KeySize)
	}
	var k Key
	copy(k[:], b)
	return k, nil
}

// Link is a decoded SMART Health Link payload.
type Link struct {
	URL   string    // manifest URL (or the file's URL with flag U)
	Key   Key       // content key of every file
	Exp   time.Time // zero: no expiry; else whole seconds, UTC
	Flag  string    // "", or letters of L, P, U in order
	Label string
	V     int // 0 (absent) or 1
}

// Has reports whether the link carries flag f.
func (l Link) Has(f byte) bool { return strings.IndexByte(l.Flag, f) >= 0 }

// wireLink is the JSON object. Pointers and RawMessage tell absent fields
// from zero ones and let ParseLink check each JSON type.
type wireLink struct {
	URL   json.RawMessage `json:"url"`
	Flag  json.RawMessage `json:"flag,omitempty"`
	Key   json.RawMessage `json:"key"`
	Exp   json.RawMessage `json:"exp,omitempty"`
	Label json.RawMessage `json:"label,omitempty"`
	V     json.RawMessage `json:"v,omitempty"`
}

// encodedLink is what Encode writes, in the specification's field order.
type encodedLink struct {
	URL   string `json:"url"`
	Flag  string `json:"flag,omitempty"`
	Key   string `json:"key"`
	Exp   int64  `json:"exp,omitempty"`
	Label string `json:"label,omitempty"`
	V     int    `json:"v,omitempty"`
}

// Validate checks every field as ParseLink does.
func (l Link) Validate() error {
	if err := checkURL(l.URL); err != nil {
		return err
	}
	if err := checkFlag(l.Flag); err != nil {
		return err
	}
	if err := checkLabel(l.Label); err != nil {
		return err
	}
	if !l.Exp.IsZero() {
		if s := l.Exp.Unix(); s <= 0 || s > maxExp {
			return linkErr("exp", "out of range")
		}
	}
	if l.V != 0 && l.V != 1 {
		return linkErr("v", "version %d is not known", l.V)
	}
	return nil
}

// Encode returns the link's "shlink:/..." text.
func (l Link) Encode() (string, error) {
	if err := l.Validate(); err != nil {
		return "", err
	}
	e := encodedLink{URL: l.URL, Flag: l.Flag, Key: l.Key.Text(), Label: l.Label, V: l.V}
	if !l.Exp.IsZero() {
		e.Exp = l.Exp.Unix()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return "", fmt.Errorf("smarthealth: encode link: %w", err)
	}
	text := LinkScheme + base64.RawURLEncoding.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if len(text) > MaxLinkText {
		return "", linkErr("", "encoded link is %d characters, at most %d", len(text), MaxLinkText)
	}
	return text, nil
}

// ViewerURL returns the link behind a viewer: viewer + "#" + the link text.
func (l Link) ViewerURL(viewer string) (string, error) {
	text, err := l.Encode()
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(viewer, "#") + "#" + text, nil
}

// ParseLink reads a link: "shlink:/..." alone or behind a viewer URL
// ("https://viewer.example/#shlink:/..."). Surrounding white space is
// ignored. Every refusal wraps ErrInvalidLink.
func ParseLink(text string) (Link, error) {
	text = strings.TrimSpace(text)
	if len(text) > MaxLinkText {
		return Link{}, linkErr("", "longer than %d characters", MaxLinkText)
	}
	if i := strings.Index(text, "#"+LinkScheme); i >= 0 {
		text = text[i+1:]
	}
	payload, ok := strings.CutPrefix(text, LinkScheme)
	if !ok {
		return Link{}, linkErr("", "does not start with %q", LinkScheme)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return Link{}, linkErr("", "payload is not base64url")
	}
	var w wireLink
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&w); err != nil {
		return Link{}, linkErr("", "payload is not a JSON object")
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) != 0 {
		return Link{}, linkErr("", "payload has data after the JSON object")
	}
	var l Link
	if l.URL, err = requiredString("url", w.URL); err != nil {
		return Link{}, err
	}
	keyText, err := requiredString("key", w.Key)
	if err != nil {
		return Link{}, err
	}
	if l.Key, err = ParseKey(keyText); err != nil {
		return Link{}, err
	}
	if l.Flag, err = optionalString("flag", w.Flag); err != nil {
		return Link{}, err
	}
	if l.Label, err = optionalString("label", w.Label); err != nil {
		return Link{}, err
	}
	if l.Exp, err = parseExp(w.Exp); err != nil {
		return Link{}, err
	}
	if w.V != nil && !isNull(w.V) {
		var v float64
		if err := json.Unmarshal(w.V, &v); err != nil || v != math.Trunc(v) || v < 0 || v > 1<<20 {
			return Link{}, linkErr("v", "not a small whole number")
		}
		l.V = int(v)
	}
	if err := l.Validate(); err != nil {
		return Link{}, err
	}
	return l, nil
}

func isNull(m json.RawMessage) bool { return string(bytes.TrimSpace(m)) == "null" }

func requiredString(field string, m json.RawMessage) (string, error) {
	if m == nil || isNull(m) {
		return "", linkErr(field, "missing")
	}
	return optionalString(field, m)
}

func optionalString(field string, m json.RawMessage) (string, error) {
	if m == nil || isNull(m) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m, &s); err != nil {
		return "", linkErr(field, "not a string")
	}
	return s, nil
}

func parseExp(m json.RawMessage) (time.Time, error) {
	if m == nil || isNull(m) {
		return time.Time{}, nil
	}
	var n json.Number
	if err := json.Unmarshal(m, &n); err != nil || bytes.HasPrefix(bytes.TrimSpace(m), []byte(`"`)) {
		return time.Time{}, linkErr("exp", "not a number of seconds")
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > maxExp {
		return time.Time{}, linkErr("exp", "out of range")
	}
	return time.Unix(int64(f), 0).UTC(), nil
}

func checkURL(s string) error {
	if s == "" {
		return linkErr("url", "missing")
	}
	if len(s) > MaxURL {
		return linkErr("url", "%d characters, at most %d", len(s), MaxURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return linkErr("url", "not a URL")
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return linkErr("url", "not an absolute https URL without user or fragment")
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return linkErr("url", "has a space, control or non-ASCII character")
		}
	}
	return nil
}

func checkFlag(f string) error {
	prev := byte(0)
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != FlagLongTerm && c != FlagPasscode && c != FlagDirect {
			return linkErr("flag", "unknown letter %q", c)
		}
		if c <= prev {
			return linkErr("flag", "letters not in order or repeated")
		}
		prev = c
	}
	if strings.IndexByte(f, FlagDirect) >= 0 && strings.IndexByte(f, FlagPasscode) >= 0 {
		return linkErr("flag", "U (direct file) cannot be combined with P (passcode)")
	}
	return nil
}

func checkLabel(s string) error {
	if !utf8.ValidString(s) {
		return linkErr("label", "not UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxLabel {
		return linkErr("label", "%d characters, at most %d", n, MaxLabel)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return linkErr("label", "has a control character")
		}
	}
	return nil
}
