package consent

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// CredentialBody is the body of a credential entry: its author, the
// issuer (a hospital, a licensing body: any identity), vouches that
// Subject holds Role between NotBefore and Expires. The credential's ID is
// the hash of the entry that carries it; the issuer withdraws it with a
// revoke entry naming that hash.
//
// RoleID is the issuer's pseudonymous ID for the role: a grant to "any
// emergency-physician credentialed by this issuer" names RoleID as its
// grantee and the issuer and role beside it, and the record keys in such a
// grant are wrapped to the role's age key. Details is age ciphertext to the
// subject and the issuer: the organisation, a licence number and that role
// key. Names and licence numbers never reach the ledger in the clear.
type CredentialBody struct {
	Subject   ID     `cbor:"1,keyasint" json:"subject"`
	Role      string `cbor:"2,keyasint" json:"role"`
	RoleID    ID     `cbor:"3,keyasint" json:"role_id"`
	NotBefore int64  `cbor:"4,keyasint" json:"not_before"`
	Expires   int64  `cbor:"5,keyasint,omitempty" json:"expires,omitempty"` // 0: no expiry
	Details   []byte `cbor:"6,keyasint" json:"-"`
	// RoleRecipient is the age recipient of the role's key: the owner
	// wraps record keys in a role grant to it.
	RoleRecipient string `cbor:"7,keyasint" json:"role_recipient"`
}

// BreakGlassBody is the body of a break-glass entry: its author, a
// credentialed clinician, declares an emergency and invokes the owner's
// emergency grant. Reason is the stated reason, age-encrypted to the owner
// and the author (free text may be health information, so it never goes on
// the ledger in the clear). Requests under an emergency grant name this
// entry; the grant's time box runs from the author's first break-glass
// entry for that grant.
type BreakGlassBody struct {
	Owner  ID     `cbor:"1,keyasint" json:"owner"`
	Grant  Hash   `cbor:"2,keyasint" json:"grant"`
	Reason []byte `cbor:"3,keyasint" json:"-"`
}

// Review outcomes.
const (
	ReviewOK      = "ok"
	ReviewDispute = "dispute"
)

// ReviewBody is the body of a review entry: the owner's verdict on an
// emergency access (the break-glass entry Access). Note is optional age
// ciphertext to the owner. Only the owner's reviews count; the latest wins.
type ReviewBody struct {
	Access  Hash   `cbor:"1,keyasint" json:"access"`
	Outcome string `cbor:"2,keyasint" json:"outcome"`
	Note    []byte `cbor:"3,keyasint,omitempty" json:"-"`
}

// Limits on the new bodies.
const (
	MaxDetailsSize = 8192
	MaxReasonSize  = 4096
	// MaxTimeBox bounds an emergency grant's time box.
	MaxTimeBox = 7 * 24 * 3600
)

var credentialRoleRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,47}$`)

// ValidateCredentialRole checks a credential role: 2 to 48 characters,
// lower-case letters, digits and dashes, starting with a letter
// ("physician", "emergency-physician", "insurer-agent").
func ValidateCredentialRole(role string) error {
	if !credentialRoleRE.MatchString(role) {
		return fmt.Errorf("credential role %q must be 2 to 48 lower-case letters, digits or dashes, starting with a letter", role)
	}
	return nil
}

// Validate checks a credential body as its issuer would before signing.
func (c *CredentialBody) Validate() error {
	if _, err := cachedPublicKey(c.Subject); err != nil {
		return malformed("credential subject: %v", err)
	}
	if _, err := cachedPublicKey(c.RoleID); err != nil {
		return malformed("credential role ID: %v", err)
	}
	if c.RoleID == c.Subject {
		return malformed("credential role ID is its subject")
	}
	if err := ValidateCredentialRole(c.Role); err != nil {
		return malformed("%v", err)
	}
	if c.NotBefore <= 0 {
		return malformed("credential has no start time")
	}
	if c.Expires != 0 && c.Expires <= c.NotBefore {
		return malformed("credential expires before it starts")
	}
	if !strings.HasPrefix(c.RoleRecipient, "age1") || len(c.RoleRecipient) > 4096 {
		return malformed("credential role recipient is malformed")
	}
	if len(c.Details) == 0 || len(c.Details) > MaxDetailsSize {
		return malformed("credential details have a bad size")
	}
	return nil
}

// Validate checks a break-glass body.
func (b *BreakGlassBody) Validate() error {
	if _, err := cachedPublicKey(b.Owner); err != nil {
		return malformed("break-glass owner: %v", err)
	}
	if b.Grant.IsZero() {
		return malformed("break-glass names no grant")
	}
	if len(b.Reason) == 0 || len(b.Reason) > MaxReasonSize {
		return malformed("break-glass reason is missing or too long")
	}
	return nil
}

// Validate checks a review body.
func (r *ReviewBody) Validate() error {
	if r.Access.IsZero() {
		return malformed("review names no access")
	}
	if r.Outcome != ReviewOK && r.Outcome != ReviewDispute {
		return malformed("review outcome %q is not %q or %q", r.Outcome, ReviewOK, ReviewDispute)
	}
	if len(r.Note) > MaxReasonSize {
		return malformed("review note is too long")
	}
	return nil
}

// CredentialInfo is a credential accepted into a view.
type CredentialInfo struct {
	ID     Hash   `json:"id"`
	Issuer ID     `json:"issuer"`
	Time   int64  `json:"time"`
	Seq    uint64 `json:"seq"`
	CredentialBody
}

// Reaches reports whether holding this credential makes grant g reach its
// subject: g is a role grant of the credential's issuer, for its role, to
// its role ID. Validity and revocation are checked separately.
func (c *CredentialInfo) Reaches(g *Grant) bool {
	return g.IsRole() && c.Issuer == g.Issuer && c.Role == g.Role && c.RoleID == g.Grantee
}

// ValidAt reports whether the credential's validity period holds t (Unix
// seconds). Revocation is checked separately (View.Revoked).
func (c *CredentialInfo) ValidAt(t int64) bool {
	return c.NotBefore <= t && (c.Expires == 0 || t < c.Expires)
}

// BreakGlassInfo is a break-glass entry accepted into a view.
type BreakGlassInfo struct {
	ID     Hash   `json:"id"`
	Author ID     `json:"author"`
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"`
	BreakGlassBody
}

// ReviewInfo is an owner's latest review of an emergency access.
type ReviewInfo struct {
	ID      Hash  `json:"id"`
	Time    int64 `json:"time"`
	Author  ID    `json:"author"`
	Outcome string
	Note    []byte
}

type requesterGrant struct {
	requester ID
	grant     Hash
}

type authorHash struct {
	author ID
	h      Hash
}

// Credential returns an accepted credential by ID.
func (v *View) Credential(id Hash) (*CredentialInfo, bool) {
	c, ok := v.creds[id]
	return c, ok
}

// Credentials returns every accepted credential, oldest first (by time,
// then ID).
func (v *View) Credentials() []*CredentialInfo {
	out := make([]*CredentialInfo, 0, len(v.creds))
	for _, c := range v.creds {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return string(out[i].ID[:]) < string(out[j].ID[:])
	})
	return out
}

// CredentialsOf returns the credentials whose subject is id, by ID.
func (v *View) CredentialsOf(id ID) []*CredentialInfo { return v.credsBySubject[id] }

// BreakGlass returns an accepted break-glass entry by hash.
func (v *View) BreakGlass(id Hash) (*BreakGlassInfo, bool) {
	b, ok := v.breakGlass[id]
	return b, ok
}

// BreakGlasses returns every accepted break-glass entry, oldest first.
func (v *View) BreakGlasses() []*BreakGlassInfo {
	out := make([]*BreakGlassInfo, 0, len(v.breakGlass))
	for _, b := range v.breakGlass {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return string(out[i].ID[:]) < string(out[j].ID[:])
	})
	return out
}

// FirstBreakGlass returns requester's first break-glass entry invoking
// grant: the start of its time box.
func (v *View) FirstBreakGlass(requester ID, grant Hash) (*BreakGlassInfo, bool) {
	b, ok := v.firstBG[requesterGrant{requester, grant}]
	return b, ok
}

// Review returns the owner's latest review of the break-glass entry
// access, if the owner has reviewed it.
func (v *View) Review(access Hash) (*ReviewInfo, bool) {
	b, ok := v.breakGlass[access]
	if !ok {
		return nil, false
	}
	r, ok := v.reviews[authorHash{b.Owner, access}]
	return r, ok
}

func (v *View) acceptCredential(e *Entry, h Hash, b *CredentialBody) {
	ci := &CredentialInfo{ID: h, Issuer: e.Author, Time: e.Time, Seq: e.Seq, CredentialBody: *b}
	v.creds[h] = ci
	s := v.credsBySubject[b.Subject]
	i := sort.Search(len(s), func(i int) bool { return string(s[i].ID[:]) >= string(h[:]) })
	v.credsBySubject[b.Subject] = slices.Insert(s, i, ci)
}

func (v *View) acceptBreakGlass(e *Entry, h Hash, b *BreakGlassBody) {
	bi := &BreakGlassInfo{ID: h, Author: e.Author, Seq: e.Seq, Time: e.Time, BreakGlassBody: *b}
	v.breakGlass[h] = bi
	k := requesterGrant{e.Author, b.Grant}
	if _, ok := v.firstBG[k]; !ok {
		// A feed's entries are accepted in order, so the first kept is the
		// author's first.
		v.firstBG[k] = bi
	}
}

func (v *View) acceptReview(e *Entry, h Hash, b *ReviewBody) {
	v.reviews[authorHash{e.Author, b.Access}] = &ReviewInfo{ID: h, Time: e.Time, Author: e.Author, Outcome: b.Outcome, Note: b.Note}
}

// CredentialRevoked reports whether credential id has been revoked by its
// issuer.
func (v *View) CredentialRevoked(id Hash) bool {
	c, ok := v.creds[id]
	return ok && v.revokers(id)[c.Issuer]
}

// The View answers the policy's questions (facts) from its own state.

func (v *View) grantIndex() *grantIndex {
	v.loadGrants()
	return v.gx
}

func (v *View) credentialsOf(id ID) []*CredentialInfo { return v.credsBySubject[id] }

func (v *View) credentialRevoked(c *CredentialInfo) bool { return v.revokers(c.ID)[c.Issuer] }

func (v *View) breakGlassEntry(id Hash) (*BreakGlassInfo, bool) {
	b, ok := v.breakGlass[id]
	return b, ok
}

func (v *View) firstBreakGlassOf(requester ID, grant Hash) *BreakGlassInfo {
	return v.firstBG[requesterGrant{requester, grant}]
}
