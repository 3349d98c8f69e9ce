package consent

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// IdentityBody announces the author's age recipient and role on the ledger.
// It deliberately carries no display name: names stay in contacts and in
// cards exchanged out of band, never on the replicated ledger.
type IdentityBody struct {
	AgeRecipient string `cbor:"1,keyasint" json:"age_recipient"`
	Role         string `cbor:"2,keyasint" json:"role"`
}

// AnchorBody anchors a record's encrypted manifest in the owner's feed.
// Manifest is the SHA-256 of the encrypted manifest bytes, never of
// plaintext.
type AnchorBody struct {
	Record   string `cbor:"1,keyasint" json:"record"`
	Manifest Hash   `cbor:"2,keyasint" json:"manifest"`
}

// WrappedKey is one record key, age-encrypted to the grantee. Consent never
// looks inside: the wallet wraps and unwraps.
type WrappedKey struct {
	Record string `cbor:"1,keyasint" json:"record"`
	Key    []byte `cbor:"2,keyasint" json:"key"`
}

// Grant is the body of a grant entry: the author (the records' owner)
// consents to Grantee reading Records (or all records) under Scopes for
// Purpose between NotBefore and Expires. The grant's ID is the hash of the
// entry that carries it.
//
// A role grant names Issuer and Role too: then Grantee is the issuer's
// RoleID for that role (see CredentialBody), and the grant reaches anyone
// holding a valid, unrevoked credential from Issuer for Role with that
// RoleID. A role grant with a TimeBox is an emergency (break-glass) grant:
// a request under it must name the requester's break-glass entry, and is
// allowed only within TimeBox seconds of the requester's first one.
type Grant struct {
	Grantee   ID           `cbor:"1,keyasint" json:"grantee"`
	Records   []string     `cbor:"2,keyasint,omitempty" json:"records,omitempty"`
	All       bool         `cbor:"3,keyasint,omitempty" json:"all,omitempty"`
	Scopes    []string     `cbor:"4,keyasint" json:"scopes"`  // canonical SMART v2 scopes
	Purpose   string       `cbor:"5,keyasint" json:"purpose"` // HL7 v3 PurposeOfUse code
	NotBefore int64        `cbor:"6,keyasint" json:"not_before"`
	Expires   int64        `cbor:"7,keyasint,omitempty" json:"expires,omitempty"` // 0: no expiry
	Keys      []WrappedKey `cbor:"8,keyasint,omitempty" json:"-"`
	Issuer    ID           `cbor:"9,keyasint,omitempty" json:"issuer,omitempty"`
	Role      string       `cbor:"10,keyasint,omitempty" json:"role,omitempty"`
	TimeBox   int64        `cbor:"11,keyasint,omitempty" json:"time_box,omitempty"` // seconds
}

// IsRole reports whether g is a role grant.
func (g *Grant) IsRole() bool { return g.Role != "" }

// IsEmergency reports whether g is an emergency (break-glass) grant.
func (g *Grant) IsEmergency() bool { return g.TimeBox > 0 }

// RevokeBody withdraws the grant or credential whose entry hash is Grant.
// Only the author of that entry (the grantor, or the credential's issuer)
// can revoke it; a revoke by anyone else has no effect.
type RevokeBody struct {
	Grant Hash `cbor:"1,keyasint" json:"grant"`
}

// AccessBody records a decision made by the entry's author (the decider)
// on a requester's signed request, which it carries verbatim.
//
// OwnerHead is the head of the record owner's feed that the decider held
// when it decided; an auditor re-runs Decide on that prefix of the owner's
// feed plus the decider's own feed before this entry (see AuditLedger).
type AccessBody struct {
	Request   []byte `cbor:"1,keyasint" json:"-"` // canonical encoding of the signed Request
	Allow     bool   `cbor:"2,keyasint,omitempty" json:"allow"`
	Reason    Reason `cbor:"3,keyasint" json:"reason"`
	Grant     Hash   `cbor:"4,keyasint,omitempty" json:"grant,omitempty"`
	OwnerHead Head   `cbor:"5,keyasint" json:"owner_head"`
	// For a request naming a break-glass entry: the head of the
	// requester's feed the decider held.
	RequesterHead *Head `cbor:"6,keyasint,omitempty" json:"requester_head,omitempty"`
	// For a decision on a role grant: the credential issuer, the head of
	// its feed the decider held, and the credential relied on (allow).
	Issuer     ID    `cbor:"7,keyasint,omitempty" json:"issuer,omitempty"`
	IssuerHead *Head `cbor:"8,keyasint,omitempty" json:"issuer_head,omitempty"`
	Credential Hash  `cbor:"9,keyasint,omitzero" json:"credential,omitzero"`
	// Until is the end of the time box of an emergency allow (Unix seconds).
	Until int64 `cbor:"10,keyasint,omitempty" json:"until,omitempty"`
	// Repeats, on a denial only, makes the entry a summary of repeated
	// denials the decider did not log one by one (see Repeats).
	Repeats *Repeats `cbor:"11,keyasint,omitempty" json:"repeats,omitempty"`
	// The heads of the owner's device feeds the decider held (device.go),
	// sorted by device: absent when the owner has no device.
	DeviceHeads []DeviceHead `cbor:"12,keyasint,omitempty" json:"device_heads,omitempty"`
}

// Repeats is carried by an access entry that summarises a run of repeated
// denials. When a requester is denied again for the same owner, record
// and reason within RepeatWindow of the decider's access entry Of that
// logged the first such denial, the decider answers with Of's hash and
// does not append a fresh entry; it counts the denial instead. It later
// appends one summary entry for the run: the body of the run's last
// denial (that request verbatim, the heads it read, the reason), with
// Count the number of denials the entry stands for, its own included.
// The auditor re-runs Decide on the carried request at Last, the time the
// decider decided it. Allowed accesses are never summarised.
type Repeats struct {
	Count uint32 `cbor:"1,keyasint" json:"count"` // denials this entry stands for, >= 1
	First int64  `cbor:"2,keyasint" json:"first"` // when the first of them was decided (Unix s)
	Last  int64  `cbor:"3,keyasint" json:"last"`  // when the last, the one carried, was decided (Unix s)
	Of    Hash   `cbor:"4,keyasint" json:"of"`    // the entry that logged the run's first denial
}

// RepeatWindow is how long after logging a denial a decider counts the
// same denial (same requester, owner, record and reason) instead of
// logging it again.
const RepeatWindow = time.Minute

// Decisions is the number of decisions the entry records: Repeats.Count
// for a summary of repeated denials, else 1.
func (a *AccessBody) Decisions() int {
	if a.Repeats != nil {
		return int(a.Repeats.Count)
	}
	return 1
}

// DecidedAt is when the decider decided the carried request: Repeats.Last
// for a summary, else the entry's time t.
func (a *AccessBody) DecidedAt(t int64) int64 {
	if a.Repeats != nil {
		return a.Repeats.Last
	}
	return t
}

// Limits on grant bodies.
const (
	MaxGrantRecords = 1024
	MaxGrantScopes  = 64
	MaxRecordIDLen  = 128
)

// ValidateRecordID checks a record ID: 1 to 128 characters from
// [A-Za-z0-9._:-]. Record IDs are random; "all" is reserved.
func ValidateRecordID(s string) error {
	if s == "" || len(s) > MaxRecordIDLen {
		return fmt.Errorf("record ID must be 1 to %d characters", MaxRecordIDLen)
	}
	if strings.EqualFold(s, "all") {
		return fmt.Errorf("record ID %q is reserved", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '-') {
			return fmt.Errorf("record ID %q contains %q", s, r)
		}
	}
	return nil
}

// Validate checks a grant body as an entry author would before signing it.
func (g *Grant) Validate() error {
	if _, err := cachedPublicKey(g.Grantee); err != nil {
		return malformed("grantee: %v", err)
	}
	if (g.Issuer == "") != (g.Role == "") {
		return malformed("a role grant names both an issuer and a role")
	}
	if g.IsRole() {
		if _, err := cachedPublicKey(g.Issuer); err != nil {
			return malformed("issuer: %v", err)
		}
		if err := ValidateCredentialRole(g.Role); err != nil {
			return malformed("%v", err)
		}
	}
	if g.TimeBox < 0 || g.TimeBox > MaxTimeBox {
		return malformed("time box must be 1 second to %d hours", MaxTimeBox/3600)
	}
	if g.IsEmergency() && (!g.IsRole() || !PurposeCovers(PurposeEmergency, g.Purpose)) {
		return malformed("an emergency grant must be a role grant for emergency treatment (%s)", PurposeEmergency)
	}
	switch {
	case g.All && len(g.Records) > 0:
		return malformed("grant names records and all records")
	case !g.All && len(g.Records) == 0:
		return malformed("grant names no record")
	case len(g.Records) > MaxGrantRecords:
		return malformed("grant names more than %d records", MaxGrantRecords)
	}
	recs := make(map[string]bool, len(g.Records))
	for i, r := range g.Records {
		if err := ValidateRecordID(r); err != nil {
			return malformed("%v", err)
		}
		if i > 0 && g.Records[i-1] >= r {
			return malformed("grant records are not sorted and unique")
		}
		recs[r] = true
	}
	if len(g.Scopes) == 0 || len(g.Scopes) > MaxGrantScopes {
		return malformed("grant needs 1 to %d scopes", MaxGrantScopes)
	}
	for i, s := range g.Scopes {
		sc, err := ParseScope(s)
		if err != nil {
			return malformed("%v", err)
		}
		if sc.String() != s {
			return malformed("scope %q is not in canonical form %q", s, sc.String())
		}
		if i > 0 && g.Scopes[i-1] >= s {
			return malformed("grant scopes are not sorted and unique")
		}
	}
	if _, err := LookupPurpose(g.Purpose); err != nil {
		return malformed("%v", err)
	}
	if g.NotBefore <= 0 {
		return malformed("grant has no start time")
	}
	if g.Expires != 0 && g.Expires <= g.NotBefore {
		return malformed("grant expires before it starts")
	}
	seen := make(map[string]bool, len(g.Keys))
	for _, k := range g.Keys {
		if !g.All && !recs[k.Record] {
			return malformed("wrapped key for a record the grant does not name")
		}
		if err := ValidateRecordID(k.Record); err != nil {
			return malformed("%v", err)
		}
		if seen[k.Record] {
			return malformed("two wrapped keys for one record")
		}
		seen[k.Record] = true
		if len(k.Key) == 0 || len(k.Key) > 4096 {
			return malformed("wrapped key has a bad size")
		}
	}
	return nil
}

// Covers reports whether the grant names record.
func (g *Grant) Covers(record string) bool {
	if g.All {
		return true
	}
	for _, r := range g.Records {
		if r == record {
			return true
		}
	}
	return false
}

func decodeBody(k Kind, b []byte) (any, error) {
	switch k {
	case KindIdentity:
		var v IdentityBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("identity body: %v", err)
		}
		if !strings.HasPrefix(v.AgeRecipient, "age1") || len(v.AgeRecipient) > 4096 {
			return nil, malformed("identity body: age recipient is malformed")
		}
		if err := ValidateRole(v.Role); err != nil {
			return nil, malformed("identity body: %v", err)
		}
		return &v, nil
	case KindAnchor:
		var v AnchorBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("anchor body: %v", err)
		}
		if err := ValidateRecordID(v.Record); err != nil {
			return nil, malformed("anchor body: %v", err)
		}
		if v.Manifest.IsZero() {
			return nil, malformed("anchor body: manifest hash is missing")
		}
		return &v, nil
	case KindGrant:
		var v Grant
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("grant body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("grant body: %w", err)
		}
		return &v, nil
	case KindRevoke:
		var v RevokeBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("revoke body: %v", err)
		}
		if v.Grant.IsZero() {
			return nil, malformed("revoke body: grant is missing")
		}
		return &v, nil
	case KindAccess:
		var v AccessBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("access body: %v", err)
		}
		if _, err := DecodeRequest(v.Request); err != nil {
			return nil, fmt.Errorf("access body: %w", err)
		}
		if _, ok := reasonSet[v.Reason]; !ok {
			return nil, malformed("access body: unknown reason %q", v.Reason)
		}
		if v.Allow != (v.Reason == ReasonGranted || v.Reason == ReasonOwner || v.Reason == ReasonEmergency || v.Reason == ReasonRepair) {
			return nil, malformed("access body: decision and reason disagree")
		}
		if (v.Reason == ReasonGranted || v.Reason == ReasonEmergency || v.Reason == ReasonRepair) && v.Grant.IsZero() {
			return nil, malformed("access body: an allow names no grant")
		}
		if (v.Reason == ReasonEmergency) != (v.Until != 0) || v.Until < 0 {
			return nil, malformed("access body: only an emergency allow has a time box")
		}
		if (v.Issuer == "") != (v.IssuerHead == nil) {
			return nil, malformed("access body: issuer and issuer head disagree")
		}
		if v.Issuer != "" {
			if _, err := cachedPublicKey(v.Issuer); err != nil {
				return nil, malformed("access body: issuer: %v", err)
			}
		}
		if !v.Credential.IsZero() && (!v.Allow || v.Issuer == "") {
			return nil, malformed("access body: a credential without an allow by an issuer")
		}
		if v.Reason == ReasonOwner && !v.Grant.IsZero() {
			return nil, malformed("access body: an owner's access names a grant")
		}
		if r := v.Repeats; r != nil && (v.Allow || r.Count == 0 || r.First > r.Last || r.Of.IsZero()) {
			return nil, malformed("access body: repeats only on a denial, with a count, times in order and the entry repeated")
		}
		if err := checkDeviceHeads(v.DeviceHeads); err != nil {
			return nil, err
		}
		return &v, nil
	case KindCredential:
		var v CredentialBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("credential body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("credential body: %w", err)
		}
		return &v, nil
	case KindBreakGlass:
		var v BreakGlassBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("break-glass body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("break-glass body: %w", err)
		}
		return &v, nil
	case KindReview:
		var v ReviewBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("review body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("review body: %w", err)
		}
		return &v, nil
	case KindServe:
		var v ServeBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("serve body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, err
		}
		return &v, nil
	case KindLink:
		var v LinkBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("link body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, err
		}
		return &v, nil
	case KindRepairGrant: // repair.go
		return decodeRepairGrant(b)
	case KindRepairRevoke:
		return decodeRepairRevoke(b)
	case KindRetire:
		return decodeRetire(b)
	case KindGuardianSet, KindRecovery, KindRecoveryApproval:
		return decodeGuardianBody(k, b)
	case KindDevice, KindDeviceRevoke:
		return decodeDeviceBody(k, b)
	case KindShl, KindShlAccess:
		return decodeShlBody(k, b)
	case KindAgeKey:
		return decodeAgeKey(b)
	case KindEquivocation:
		var v EquivocationProof
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("equivocation body: %v", err)
		}
		if err := VerifyEquivocation(&v); err != nil {
			return nil, err
		}
		return &v, nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnknownKind, k)
}

// ServeBody is the body of a serve entry, in the author's home feed: the
// peers that serve the author (hold its shares and manifests and keep its
// feeds), sorted and without duplicates. The author's latest serve entry
// is the one that counts.
type ServeBody struct {
	Peers []ID `cbor:"1,keyasint" json:"peers"`
}

// MaxServePeers bounds the peers one serve entry names.
const MaxServePeers = 64

// Validate checks that Peers holds 1 to MaxServePeers valid IDs, sorted and
// unique.
func (b *ServeBody) Validate() error {
	if len(b.Peers) == 0 || len(b.Peers) > MaxServePeers {
		return malformed("serve body: %d peers, want 1 to %d", len(b.Peers), MaxServePeers)
	}
	for i, p := range b.Peers {
		if _, err := cachedPublicKey(p); err != nil {
			return malformed("serve body: peer %d: %v", i, err)
		}
		if i > 0 && b.Peers[i-1] >= p {
			return malformed("serve body: peers are not sorted and unique")
		}
	}
	return nil
}

// EquivocationProof holds two different, validly signed encodings of
// entries with the same author and seq, in bytewise order. It is the body
// of an equivocation entry and stands on its own: VerifyEquivocation needs
// nothing else.
type EquivocationProof struct {
	A []byte `cbor:"1,keyasint"`
	B []byte `cbor:"2,keyasint"`

	a, b *Entry
}

// NewEquivocationProof builds the proof that x and y equivocate.
func NewEquivocationProof(x, y *Entry) (*EquivocationProof, error) {
	a, b := x.Encode(), y.Encode()
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	p := &EquivocationProof{A: a, B: b}
	if err := VerifyEquivocation(p); err != nil {
		return nil, err
	}
	return p, nil
}

// VerifyEquivocation checks a proof: two distinct canonical entries, in
// bytewise order, by one author with one seq, both validly signed.
func VerifyEquivocation(p *EquivocationProof) error {
	bad := func(why string) error { return fmt.Errorf("%w: equivocation proof %s", ErrMalformed, why) }
	if bytes.Compare(p.A, p.B) >= 0 {
		return bad("entries are equal or out of order")
	}
	a, err := DecodeEntry(p.A)
	if err != nil {
		return bad("entry A does not decode")
	}
	b, err := DecodeEntry(p.B)
	if err != nil {
		return bad("entry B does not decode")
	}
	if a.Author != b.Author || a.Seq != b.Seq {
		return bad("entries differ in author or seq")
	}
	if a.verifySig() != nil || b.verifySig() != nil {
		return bad("entry signature does not verify")
	}
	p.a, p.b = a, b
	return nil
}

// Author is the equivocating author (valid after VerifyEquivocation).
func (p *EquivocationProof) Author() ID {
	if p.a == nil {
		return ""
	}
	return p.a.Author
}

// Seq is the seq at which the author equivocated.
func (p *EquivocationProof) Seq() uint64 {
	if p.a == nil {
		return 0
	}
	return p.a.Seq
}
