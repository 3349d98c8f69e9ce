package consent

import (
	"encoding/base64"
	"fmt"
	"sort"
	"time"
)

// SMART Health Links shared by a patient and served by its peers over
// HTTPS (p2p/shlserve). Two kinds:
//
//   - KindShl, in the owner's home feed: the owner opened a link. The body
//     names the link's random ID (the last segment of its manifest URL),
//     the records behind it, the size of each encrypted file, the flags,
//     the expiry and, for a passcode link, how many wrong passcodes a peer
//     takes before the link is dead. The link's key and passcode are never
//     on the ledger. A revoke entry by the owner naming the shl entry's
//     hash closes the link.
//   - KindShlAccess, in a serving peer's sub-feed about the owner: the
//     peer decided a manifest request on the link (DecideShl) and logs
//     the outcome before it answers. The recipient string the requester
//     gave is free text, so it is on the ledger only as age ciphertext to
//     the owner.
const (
	KindShl       Kind = 22 // ShlBody: the owner opens a SMART Health Link
	KindShlAccess Kind = 23 // ShlAccessBody: a peer's decision on a link's manifest request
)

// Reasons of a decision on a link's manifest request besides ReasonGranted
// (the only allow), ReasonRevoked, ReasonExpired and ReasonEquivocating.
const (
	ReasonNoLink        Reason = "no-link"        // the shl entry is not in the decider's view, or not the owner's
	ReasonWrongPasscode Reason = "wrong-passcode" // a passcode link, asked without its passcode
	ReasonLocked        Reason = "locked"         // the link took its last wrong passcode: dead
)

var shlReasons = map[Reason]struct{}{
	ReasonGranted: {}, ReasonNoLink: {}, ReasonRevoked: {}, ReasonExpired: {},
	ReasonEquivocating: {}, ReasonWrongPasscode: {}, ReasonLocked: {},
}

// Limits of a link.
const (
	MaxShlFiles     = 16       // records (one file each) behind one link
	MaxShlAttempts  = 100      // wrong passcodes a link may allow
	MaxShlRecipient = 4096     // bytes of the recipient's age ciphertext
	MaxShlFileSize  = 16 << 20 // bytes of one encrypted file (its JWE text)
	shlLinkIDBytes  = 32
)

// Link flags the body may carry (the SHL payload's L and P; U, a link to a
// single file without a manifest, is not shared by peers).
const (
	ShlFlagLongTerm = "L"
	ShlFlagPasscode = "P"
)

// ShlBody is the body of a shl entry: the author (the records' owner)
// opens a SMART Health Link.
type ShlBody struct {
	Link    string   `cbor:"1,keyasint" json:"link"`              // 43 characters: base64url of 32 random bytes
	Records []string `cbor:"2,keyasint" json:"records"`           // sorted, unique: one file each
	Files   []uint64 `cbor:"3,keyasint" json:"files"`             // the size of each record's encrypted file, in Records' order
	Flags   string   `cbor:"4,keyasint,omitempty" json:"flags"`   // "", "L", "P" or "LP"
	Expires int64    `cbor:"5,keyasint,omitempty" json:"expires"` // Unix s; 0: none
	// Attempts is how many wrong passcodes a deciding peer takes before
	// the link is dead: present exactly on a passcode link.
	Attempts uint32 `cbor:"6,keyasint,omitempty" json:"attempts,omitempty"`
}

// Passcode reports whether the link needs a passcode.
func (b *ShlBody) Passcode() bool { return b.Flags == "P" || b.Flags == "LP" }

// Validate checks the body's fields and bounds.
func (b *ShlBody) Validate() error {
	if err := ValidateShlLinkID(b.Link); err != nil {
		return err
	}
	if len(b.Records) == 0 || len(b.Records) > MaxShlFiles {
		return malformed("shl body: %d records, want 1 to %d", len(b.Records), MaxShlFiles)
	}
	for i, r := range b.Records {
		if err := ValidateRecordID(r); err != nil {
			return malformed("shl body: record %d: %v", i, err)
		}
		if i > 0 && b.Records[i-1] >= r {
			return malformed("shl body: records are not sorted and unique")
		}
	}
	if len(b.Files) != len(b.Records) {
		return malformed("shl body: %d file sizes for %d records", len(b.Files), len(b.Records))
	}
	for i, n := range b.Files {
		if n == 0 || n > MaxShlFileSize {
			return malformed("shl body: file %d is %d bytes, want 1 to %d", i, n, MaxShlFileSize)
		}
	}
	switch b.Flags {
	case "", ShlFlagLongTerm, ShlFlagPasscode, ShlFlagLongTerm + ShlFlagPasscode:
	default:
		return malformed("shl body: flags %q, want L, P, LP or none", b.Flags)
	}
	if b.Expires < 0 {
		return malformed("shl body: negative expiry")
	}
	if b.Passcode() != (b.Attempts > 0) || b.Attempts > MaxShlAttempts {
		return malformed("shl body: a passcode link allows 1 to %d wrong passcodes, any other link none", MaxShlAttempts)
	}
	return nil
}

// ValidateShlLinkID checks a link ID: base64url, no padding, of 32 bytes.
func ValidateShlLinkID(s string) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != shlLinkIDBytes {
		return malformed("shl link ID is not base64url of %d bytes", shlLinkIDBytes)
	}
	return nil
}

// ShlAccessBody is the body of a shl-access entry: the author (a peer's
// sub-feed about Owner) decided a manifest request on the link opened by
// Owner's shl entry Link, and logged it before answering.
type ShlAccessBody struct {
	Owner ID   `cbor:"1,keyasint" json:"owner"`
	Link  Hash `cbor:"2,keyasint" json:"link"` // the shl entry
	// Recipient is the requester's self-description (the SHL request's
	// "recipient", at most 200 bytes, control characters removed),
	// age-encrypted to the owner: a name may be health information.
	Recipient []byte `cbor:"3,keyasint" json:"-"`
	Allow     bool   `cbor:"4,keyasint,omitempty" json:"allow"`
	Reason    Reason `cbor:"5,keyasint" json:"reason"`
	OwnerHead Head   `cbor:"6,keyasint" json:"owner_head"` // the owner's feed head the decider held
	// Failures is the count of wrong passcodes the decider had taken on the
	// link, this request's included; 0 on a link without passcode.
	Failures uint32 `cbor:"7,keyasint,omitempty" json:"failures,omitempty"`
}

// Validate checks the body's fields and that decision and reason agree.
func (b *ShlAccessBody) Validate() error {
	if _, err := cachedPublicKey(b.Owner); err != nil {
		return malformed("shl-access body: owner: %v", err)
	}
	if b.Link.IsZero() {
		return malformed("shl-access body: no link")
	}
	if len(b.Recipient) == 0 || len(b.Recipient) > MaxShlRecipient {
		return malformed("shl-access body: recipient ciphertext of %d bytes, want 1 to %d", len(b.Recipient), MaxShlRecipient)
	}
	if _, ok := shlReasons[b.Reason]; !ok {
		return malformed("shl-access body: unknown reason %q", b.Reason)
	}
	if b.Allow != (b.Reason == ReasonGranted) {
		return malformed("shl-access body: decision and reason disagree")
	}
	if b.Failures > MaxShlAttempts {
		return malformed("shl-access body: more than %d failures", MaxShlAttempts)
	}
	return nil
}

func decodeShlBody(k Kind, b []byte) (any, error) {
	switch k {
	case KindShl:
		var v ShlBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("shl body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, err
		}
		return &v, nil
	case KindShlAccess:
		var v ShlAccessBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("shl-access body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, err
		}
		return &v, nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnknownKind, k)
}

// ShlLink is a shl entry as the view holds it.
type ShlLink struct {
	ShlBody
	ID     Hash  // the shl entry's hash: what a revoke names
	Author ID    // the owner
	Time   int64 // when it was opened (Unix s)
}

// ShlLink returns the shl entry with hash id, if the view holds it.
func (v *View) ShlLink(id Hash) (*ShlLink, bool) {
	e, ok := v.Entry(id)
	if !ok || e.Kind != KindShl {
		return nil, false
	}
	b, err := e.DecodedBody()
	if err != nil {
		return nil, false
	}
	return &ShlLink{ShlBody: *b.(*ShlBody), ID: id, Author: e.Author, Time: e.Time}, true
}

// ShlRevoked reports whether the owner revoked the link of shl entry id.
func (v *View) ShlRevoked(id Hash, owner ID) bool { return v.revokers(id).has(owner) }

// ShlDecision is the outcome of DecideShl.
type ShlDecision struct {
	Allow  bool   `json:"allow"`
	Reason Reason `json:"reason"`
	// Failures is the count of wrong passcodes on the link once this
	// request is counted; Left how many more the link takes (0 once it is
	// locked, and on a link without passcode).
	Failures, Left uint32
}

// DecideShl decides a manifest request on the link of owner's shl entry
// link, at now. failures is how many wrong passcodes the decider had
// taken on the link before; passcodeOK whether this request gave the
// right one (ignored on a link without passcode). The checks, in order:
// the view holds the shl entry, by owner (no-link); the owner did not
// equivocate (equivocating-author); the owner did not revoke it
// (revoked); now is before its expiry (expired); a passcode link has
// allowed wrong passcodes left (locked) and was given its passcode
// (wrong-passcode, and the count goes up: the last one allowed locks
// it). Else granted. It is pure: the passcode check is the decider's,
// the rest is the ledger's.
func DecideShl(v *View, link Hash, owner ID, now time.Time, passcodeOK bool, failures uint32) ShlDecision {
	deny := func(r Reason) ShlDecision { return ShlDecision{Reason: r, Failures: failures} }
	l, ok := v.ShlLink(link)
	switch {
	case !ok || l.Author != owner:
		return deny(ReasonNoLink)
	case v.Equivocating(owner):
		return deny(ReasonEquivocating)
	case v.ShlRevoked(link, owner):
		return deny(ReasonRevoked)
	case l.Expires != 0 && now.Unix() >= l.Expires:
		return deny(ReasonExpired)
	}
	if !l.Passcode() {
		return ShlDecision{Allow: true, Reason: ReasonGranted}
	}
	if failures >= l.Attempts {
		return deny(ReasonLocked)
	}
	if !passcodeOK {
		failures++
		return ShlDecision{Reason: ReasonWrongPasscode, Failures: failures, Left: l.Attempts - failures}
	}
	return ShlDecision{Allow: true, Reason: ReasonGranted, Failures: failures, Left: l.Attempts - failures}
}

// ShlAccess is one shl-access entry about owner's links, as ShlAccesses
// lists it.
type ShlAccess struct {
	ShlAccessBody
	Entry   Hash  // the shl-access entry
	Decider ID    // the peer (the sub-feed's parent)
	Time    int64 // Unix s
}

// ShlAccesses lists the shl-access entries about owner's links in the
// view at or after since, oldest first (by time, then entry hash): those
// in the sub-feeds about owner whose body names owner. It reads only
// those sub-feeds.
func ShlAccesses(v *View, owner ID, since time.Time) []ShlAccess {
	out := []ShlAccess{}
	subs := v.SubFeeds(owner)
	authors := make([]ID, 0, len(subs))
	for _, feed := range subs { // parent -> sub-feed
		authors = append(authors, feed)
	}
	sort.Slice(authors, func(i, j int) bool { return authors[i] < authors[j] })
	for _, a := range authors {
		_ = v.FeedFrom(a, 1, func(e *Entry) error {
			if e.Kind != KindShlAccess || e.Time < since.Unix() {
				return nil
			}
			b, err := e.DecodedBody()
			if err != nil {
				return nil
			}
			ab := b.(*ShlAccessBody)
			if ab.Owner != owner {
				return nil
			}
			out = append(out, ShlAccess{ShlAccessBody: *ab, Entry: e.Hash(), Decider: v.Decider(e.Author), Time: e.Time})
			return nil
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return string(out[i].Entry[:]) < string(out[j].Entry[:])
	})
	return out
}

// ShlLinks lists owner's shl entries in the view, oldest first.
func ShlLinks(v *View, owner ID) []*ShlLink {
	var out []*ShlLink
	_ = v.FeedFrom(owner, 1, func(e *Entry) error {
		if e.Kind != KindShl {
			return nil
		}
		if l, ok := v.ShlLink(e.Hash()); ok {
			out = append(out, l)
		}
		return nil
	})
	return out
}
