package consent

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
)

// Age-key rotation. An identity's age recipient is the one its card and
// identity entry (the first entry of its feed) carry, until the identity
// appends an age-key entry (KindAgeKey) in its own home feed: from then on
// the newest age-key entry's recipient is the one to encrypt to. The card
// and the identity entry never change (a restore of an older key export
// rebuilds the very same first entry); the signing key, and so the ID,
// never changes either.
//
// Only the identity signs an age-key entry that counts: the entry's author
// is the identity whose recipient it names. One in a device feed (a paired
// device signs its own feed) is accepted as an entry but changes no one's
// recipient. Whoever encrypts to an identity asks the view
// (View.AgeRecipient) and falls back on the card when the view holds
// nothing newer. Items encrypted to an older recipient stay readable to the
// identity: it keeps its retired age identities to decrypt with.

// KindAgeKey is the kind of an age-key entry (AgeKeyBody).
const KindAgeKey Kind = 24

// Reasons an age-key entry gives (AgeKeyBody.Reason). Others up to
// MaxAgeKeyReason characters are accepted and shown as they are.
const (
	AgeKeyDeviceRevoke = "device-revoke" // a device was revoked (AgeKeyBody.Device)
	AgeKeyRotate       = "rotate"        // the patient chose to rotate
)

// MaxAgeKeyReason bounds an age-key entry's reason in bytes.
const MaxAgeKeyReason = 64

// AgeKeyBody is the body of an age-key entry, in the identity's own home
// feed: the identity's new age recipient (an X25519 recipient, "age1..."),
// why it rotated, and the device whose revocation made it rotate, if any.
type AgeKeyBody struct {
	AgeRecipient string `cbor:"1,keyasint" json:"age_recipient"`
	Reason       string `cbor:"2,keyasint" json:"reason"`
	Device       ID     `cbor:"3,keyasint,omitempty" json:"device,omitempty"`
}

// ValidateAgeRecipient checks an age recipient as a card's is checked
// (age1..., at most 4096 bytes) and, since every party encrypts to it with
// age's X25519, that it parses as one.
func ValidateAgeRecipient(r string) error {
	if !strings.HasPrefix(r, "age1") || len(r) > 4096 {
		return malformed("age recipient is malformed")
	}
	if _, err := age.ParseX25519Recipient(r); err != nil {
		return malformed("age recipient is not an X25519 recipient")
	}
	return nil
}

// Validate checks the recipient, the reason (1 to MaxAgeKeyReason bytes of
// printable UTF-8) and the device's ID when there is one.
func (b *AgeKeyBody) Validate() error {
	if err := ValidateAgeRecipient(b.AgeRecipient); err != nil {
		return malformed("age-key body: %v", err)
	}
	if b.Reason == "" || len(b.Reason) > MaxAgeKeyReason || !utf8.ValidString(b.Reason) ||
		strings.ContainsFunc(b.Reason, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return malformed("age-key body: reason is 1 to %d printable bytes", MaxAgeKeyReason)
	}
	if b.Device != "" {
		if _, err := cachedPublicKey(b.Device); err != nil {
			return malformed("age-key body: device: %v", err)
		}
	}
	return nil
}

// decodeAgeKey decodes and checks an age-key body.
func decodeAgeKey(b []byte) (any, error) {
	var v AgeKeyBody
	if err := Unmarshal(b, &v); err != nil {
		return nil, malformed("age-key body: %v", err)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

// AgeKeyInfo is an identity's newest age-key entry a view holds.
type AgeKeyInfo struct {
	AgeKeyBody
	Seq  uint64 `json:"seq"`  // its seq in the identity's feed
	Time int64  `json:"time"` // its time
}

// acceptAgeKey records an age-key entry: the newest of the author's feed
// counts (entries join a feed in seq order). A device's own are ignored
// when asked (AgeRecipient), since its device entry may come later.
func (v *View) acceptAgeKey(e *Entry, b *AgeKeyBody) {
	if v.ageKeys == nil {
		v.ageKeys = make(map[ID]*AgeKeyInfo)
	}
	author := v.intern(e.Author)
	if old, ok := v.ageKeys[author]; ok && old.Seq >= e.Seq {
		return
	}
	v.ageKeys[author] = &AgeKeyInfo{AgeKeyBody: *b, Seq: e.Seq, Time: e.Time}
}

// AgeKey returns id's newest age-key entry, if the view holds one and id
// is not a device (a device's age-key entries count for nobody).
func (v *View) AgeKey(id ID) (*AgeKeyInfo, bool) {
	if _, isDevice := v.devices[id]; isDevice {
		return nil, false
	}
	k, ok := v.ageKeys[id]
	return k, ok
}

// AgeRecipient is the recipient to encrypt to id with: the newest age-key
// entry's, else the identity entry's; "" when the view holds neither (then
// the caller uses id's card).
func (v *View) AgeRecipient(id ID) string {
	if k, ok := v.AgeKey(id); ok {
		return k.AgeRecipient
	}
	if b, ok := v.identities[id]; ok {
		return b.AgeRecipient
	}
	return ""
}

// stateAgeKey is an age-key entry of a saved view state (state.go).
type stateAgeKey struct {
	_      struct{} `cbor:",toarray"`
	Author ID
	Seq    uint64
	Time   int64
	Body   AgeKeyBody
}

// ageKeyState lists the view's newest age-key entries by author.
func (v *View) ageKeyState() []stateAgeKey {
	var out []stateAgeKey
	for a, k := range v.ageKeys {
		out = append(out, stateAgeKey{Author: a, Seq: k.Seq, Time: k.Time, Body: k.AgeKeyBody})
	}
	slices.SortFunc(out, func(a, b stateAgeKey) int { return cmp.Compare(a.Author, b.Author) })
	return out
}

// restoreAgeKeys fills the view's age keys from a saved state.
func (v *View) restoreAgeKeys(ks []stateAgeKey) error {
	for _, k := range ks {
		if err := k.Body.Validate(); err != nil {
			return err
		}
		if v.ageKeys == nil {
			v.ageKeys = make(map[ID]*AgeKeyInfo)
		}
		v.ageKeys[v.intern(k.Author)] = &AgeKeyInfo{AgeKeyBody: k.Body, Seq: k.Seq, Time: k.Time}
	}
	return nil
}
