package smarthealth

// Card revocation (SMART Health Cards 1.2 and later): an issuer that may
// revoke cards signed by a key gives that key a crlVersion in its JWKS and
// publishes a card revocation list for it at
// ISS/.well-known/crl/KID.json:
//
//	{"kid": KID, "method": "rid", "ctr": N, "rids": ["RID", "RID.TIMESTAMP", ...]}
//
// A card names its revocation identifier in vc.rid (base64url, at most 24
// characters). A listed RID revokes every card carrying it; RID.TIMESTAMP
// revokes those issued (nbf) at or before TIMESTAMP (Unix seconds), so an
// issuer can revoke a person's older cards and keep the newer. ctr grows
// with each new list; the key's crlVersion is the ctr of the newest.
//
// The wallet may be offline when a card arrives, so lists are kept in the
// trust directory next to the keys (see wallet.UpdateIssuerCRL), and a
// card is checked against the list held: Verify reports whether the card
// could be checked (RevocationChecked), whether the issuer revokes cards
// of that key but no list at least as new as the key says is held
// (RevocationStale, RevocationMissing), or whether the key revokes
// nothing (RevocationNone). A listed card is refused with ErrRevoked.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxCRL bounds a revocation list document, in bytes (about 300,000
// 11-character identifiers); MaxRID the length of a revocation identifier.
const (
	MaxCRL = 4 << 20
	MaxRID = 24
)

// ErrRevoked is the reason of a card its issuer revoked; ErrBadCRL that
// of a revocation list the wallet cannot use.
var (
	ErrRevoked = errors.New("the issuer has revoked the card")
	ErrBadCRL  = errors.New("not a usable card revocation list")
)

// CRL is one key's card revocation list.
type CRL struct {
	Kid string
	Ctr int
	// rids maps a revocation identifier to the time up to which cards
	// carrying it are revoked; the zero time revokes them all.
	rids map[string]time.Time
}

// Len is the number of revocation identifiers the list names.
func (c *CRL) Len() int { return len(c.rids) }

// ParseCRL reads a card revocation list: method "rid", a kid, a ctr of at
// least 1, and rids of base64url identifiers of at most MaxRID
// characters, each optionally followed by "." and a Unix time. A repeated
// identifier keeps its widest revocation.
func ParseCRL(data []byte) (*CRL, error) {
	if len(data) > MaxCRL {
		return nil, fmt.Errorf("%w: the list is larger than %d bytes", ErrBadCRL, MaxCRL)
	}
	var doc struct {
		Kid    string   `json:"kid"`
		Method string   `json:"method"`
		Ctr    *int     `json:"ctr"`
		RIDs   []string `json:"rids"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object with kid, method, ctr and rids", ErrBadCRL)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: text after the JSON object", ErrBadCRL)
	}
	if doc.Method != "rid" {
		return nil, fmt.Errorf("%w: method %q, want \"rid\"", ErrBadCRL, clip(doc.Method))
	}
	if doc.Kid == "" || len(doc.Kid) > 256 || !isB64URL(doc.Kid) {
		return nil, fmt.Errorf("%w: no usable kid", ErrBadCRL)
	}
	if doc.Ctr == nil || *doc.Ctr < 1 {
		return nil, fmt.Errorf("%w: ctr is missing or below 1", ErrBadCRL)
	}
	c := &CRL{Kid: doc.Kid, Ctr: *doc.Ctr, rids: make(map[string]time.Time, len(doc.RIDs))}
	for i, s := range doc.RIDs {
		rid, until, err := parseRID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: rids[%d]: %w", ErrBadCRL, i, err)
		}
		if old, ok := c.rids[rid]; ok && (old.IsZero() || (!until.IsZero() && old.After(until))) {
			continue
		}
		c.rids[rid] = until
	}
	return c, nil
}

// parseRID splits "RID" or "RID.TIMESTAMP".
func parseRID(s string) (string, time.Time, error) {
	rid, ts, dated := strings.Cut(s, ".")
	if rid == "" || len(rid) > MaxRID || !isB64URL(rid) {
		return "", time.Time{}, fmt.Errorf("not a base64url identifier of 1 to %d characters", MaxRID)
	}
	if !dated {
		return rid, time.Time{}, nil
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 1 || sec > 1<<40 {
		return "", time.Time{}, errors.New("the timestamp after the identifier is not a Unix time")
	}
	return rid, time.Unix(sec, 0).UTC(), nil
}

func isB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// Revokes reports whether the list revokes a card carrying rid that was
// issued at issued (its nbf; the zero time when the card has none, which
// a dated entry then revokes, since its issuance cannot be shown to be
// later).
func (c *CRL) Revokes(rid string, issued time.Time) bool {
	until, ok := c.rids[rid]
	if !ok {
		return false
	}
	return until.IsZero() || !issued.After(until)
}

// CRLURL is where an issuer publishes the revocation list of key kid.
func CRLURL(iss, kid string) string { return NormalizeISS(iss) + "/.well-known/crl/" + kid + ".json" }

// Revocation statuses of a verified card (Verification.Revocation).
const (
	// RevocationNone: the signing key has no crlVersion, or the card no
	// rid: the issuer revokes no card of it.
	RevocationNone = "none"
	// RevocationChecked: the card is not on a list at least as new as
	// the key's crlVersion.
	RevocationChecked = "checked"
	// RevocationStale: the card is not on the list held, but the key
	// names a newer list.
	RevocationStale = "stale"
	// RevocationMissing: the issuer revokes cards of this key and the
	// wallet holds no list for it.
	RevocationMissing = "missing"
)

// RevocationLists finds the list held for an issuer's key and the key's
// crlVersion (0: the issuer revokes no card signed by it). Trust
// implements it.
type RevocationLists interface {
	RevocationList(iss, kid string) (list *CRL, keyVersion int)
}

// CheckRevocation checks the card against the list lists holds for its
// key, and returns the revocation status; a listed card is a
// *VerifyError with reason ErrRevoked.
func (c *Card) CheckRevocation(lists RevocationLists) (string, error) {
	list, version := lists.RevocationList(c.Issuer, c.Header.Kid)
	if version == 0 && list == nil || c.RevocationID == "" {
		return RevocationNone, nil
	}
	if list == nil {
		return RevocationMissing, nil
	}
	if list.Revokes(c.RevocationID, c.NotBefore) {
		return "", &VerifyError{Issuer: clip2(c.Issuer), Kid: clip(c.Header.Kid), Reason: ErrRevoked,
			Detail: fmt.Sprintf("its revocation identifier is on the issuer's list %d", list.Ctr)}
	}
	if list.Ctr < version {
		return RevocationStale, nil
	}
	return RevocationChecked, nil
}
