package consent

import (
	"slices"
	"time"
)

// Reason is the machine-readable reason of a decision. The strings are
// part of the wire format (access entries) and of the CLI's JSON.
type Reason string

// Reasons. Granted, Owner and Emergency are the only reasons of an allow.
const (
	ReasonGranted      Reason = "granted"
	ReasonEmergency    Reason = "emergency"           // allowed by an emergency grant, within its time box
	ReasonOwner        Reason = "owner"               // the owner reads its own record (still logged, never a disclosure)
	ReasonNoGrant      Reason = "no-grant"            // the owner granted nothing on this record to anyone
	ReasonWrongGrantee Reason = "wrong-grantee"       // the owner granted this record, but to someone else
	ReasonRecord       Reason = "record"              // the owner granted the requester other records only
	ReasonRevoked      Reason = "revoked"             // every matching grant was revoked
	ReasonNotYetValid  Reason = "not-yet-valid"       // no matching grant has started yet
	ReasonExpired      Reason = "expired"             // every matching grant has expired
	ReasonScope        Reason = "scope"               // no grant covers the requested scope (or it is invalid)
	ReasonPurpose      Reason = "purpose"             // no grant covers the requested purpose (or it is unknown)
	ReasonBadSignature Reason = "bad-signature"       // the request's signature does not verify
	ReasonEquivocating Reason = "equivocating-author" // the owner or requester equivocated
	ReasonReplay       Reason = "replay"              // nonce already used, or request time outside the window

	ReasonNoCredential      Reason = "no-credential"      // the record is granted to a role the requester holds no credential for
	ReasonCredentialRevoked Reason = "credential-revoked" // every matching credential was revoked by its issuer
	ReasonCredentialExpired Reason = "credential-expired" // no matching credential is within its validity period
	ReasonNoBreakGlass      Reason = "no-break-glass"     // an emergency grant, but no valid break-glass entry named
	ReasonTimeBox           Reason = "time-box"           // an emergency grant, past its time box
	ReasonDeviceRevoked     Reason = "device-revoked"     // the owner revoked the device that signed the grant, or that asks
)

var reasonSet = map[Reason]struct{}{
	ReasonGranted: {}, ReasonOwner: {}, ReasonNoGrant: {}, ReasonWrongGrantee: {}, ReasonRecord: {},
	ReasonRevoked: {}, ReasonNotYetValid: {}, ReasonExpired: {}, ReasonScope: {},
	ReasonPurpose: {}, ReasonBadSignature: {}, ReasonEquivocating: {}, ReasonReplay: {},
	ReasonEmergency: {}, ReasonNoCredential: {}, ReasonCredentialRevoked: {}, ReasonCredentialExpired: {},
	ReasonNoBreakGlass: {}, ReasonTimeBox: {}, ReasonDeviceRevoked: {},
	ReasonRepair: {}, ReasonNoRepairGrant: {}, // repair.go
}

// FreshnessWindow is how far a request's time may lie from the decision
// time, either way, before the request counts as a replay.
const FreshnessWindow = 5 * time.Minute

// Decision is the outcome of Decide. Grant is the grant the decision relied
// on: for an allow, the grant that allows; for a deny after grants were
// considered, the grant that came closest (zero if none). For a role
// grant, Issuer is its credential issuer and Credential (on an allow) the
// requester's credential relied on; for an emergency allow, Until is the
// end of the time box.
type Decision struct {
	Allow      bool   `json:"allow"`
	Reason     Reason `json:"reason"`
	Grant      Hash   `json:"grant"`
	Issuer     ID     `json:"issuer,omitempty"`
	Credential Hash   `json:"credential,omitzero"`
	Until      int64  `json:"until,omitempty"`
}

func deny(r Reason) Decision { return Decision{Reason: r} }

// Decide is the consent policy every peer runs: a pure, deterministic
// function of the view, the request and the time. Checks run in this
// order, and the first that fails gives the reason:
//
//  1. the requester's signature (bad-signature);
//  2. freshness: |request time - now| <= FreshnessWindow, and the
//     requester's nonce not seen in any access entry (replay);
//  3. neither the owner nor the requester has equivocated
//     (equivocating-author): the view was handed two entries of one of
//     them with one seq, or holds an equivocation entry proving it, so
//     no grant of an owner that equivocated is honoured;
//  4. the requested scope and purpose parse (scope, purpose);
//  5. a request by the owner itself is allowed (owner): patients read
//     their own records through the same peers, logged like any access;
//     so is one by a device the owner enrolled (device.go), unless the
//     owner revoked it (device-revoked);
//  6. among the owner's grants: some name the requester, or a role the
//     requester holds a credential for from the grant's issuer (else
//     no-credential if the record is granted to a role, wrong-grantee if
//     it was granted to someone else, or no-grant); some of those cover
//     the record (record); some of those are not revoked (revoked);
//     some were signed by the owner, or by a device of the owner within
//     its cut that did not equivocate (device-revoked, equivocating-author); for
//     role grants, the requester has a matching credential its issuer has
//     not revoked (credential-revoked) and that is valid at now
//     (credential-expired); some are valid at now (not-yet-valid, or
//     expired), cover the scope (scope) and the purpose (purpose);
//     emergency grants need the request to name the requester's
//     break-glass entry for that owner and grant, not dated more than
//     FreshnessWindow ahead of now (no-break-glass), and now before the
//     end of the time box, which starts at the requester's first
//     break-glass entry for the grant (time-box).
//
// When several grants survive, an ordinary grant is preferred to an
// emergency one, then the one with the smallest ID is used. Only grants
// authored by the request's Owner count, and only credentials authored by
// the role grant's issuer; credentials whose issuer equivocated do not
// count at all (as if never issued: no-credential).
func Decide(v *View, r *Request, now time.Time) Decision {
	if VerifyRequest(r) != nil {
		return deny(ReasonBadSignature)
	}
	return decide(v, r, now)
}

// facts is what the policy reads: the View for a live decision, or the
// audit's cursor for a decision as of an access entry.
type facts interface {
	// NonceSeen reports whether an access entry already carried a request
	// by requester with this nonce.
	NonceSeen(requester ID, nonce []byte) bool
	// Equivocating reports whether author is known to have equivocated.
	Equivocating(author ID) bool
	// grantIndex holds the owner's grants (only the owner's count).
	grantIndex() *grantIndex
	// credentialsOf returns the credentials whose subject is id, by ID.
	credentialsOf(id ID) []*CredentialInfo
	// credentialRevoked reports whether c's issuer revoked it.
	credentialRevoked(c *CredentialInfo) bool
	// breakGlassEntry returns a break-glass entry by hash.
	breakGlassEntry(id Hash) (*BreakGlassInfo, bool)
	// firstBreakGlass returns requester's first break-glass entry
	// invoking grant; only asked when one such entry is held.
	firstBreakGlassOf(requester ID, grant Hash) *BreakGlassInfo
	// repairGrantsOf returns owner's repair grants (repair.go).
	repairGrantsOf(owner ID) []*RepairGrantInfo
	// deviceOwner returns the owner that enrolled device (device.go).
	deviceOwner(device ID) (ID, bool)
	// deviceCut returns the cut of the owner's revocation of device.
	deviceCut(device ID) (uint64, bool)
}

// decide is Decide without the signature check (benchmarked on its own).
func decide(v facts, r *Request, now time.Time) Decision {
	t := now.Unix()
	w := int64(FreshnessWindow / time.Second)
	if r.Time > t+w || r.Time < t-w || v.NonceSeen(r.Requester, r.Nonce) {
		return deny(ReasonReplay)
	}
	if v.Equivocating(r.Owner) || v.Equivocating(r.Requester) {
		return deny(ReasonEquivocating)
	}
	if r.Purpose == PurposeRepair {
		return decideRepair(v, r) // repair.go
	}
	req, err := ParseScope(r.Scope)
	if err != nil {
		return deny(ReasonScope)
	}
	if _, ok := purposeIndex[r.Purpose]; !ok {
		return deny(ReasonPurpose)
	}
	if r.Requester == r.Owner {
		return Decision{Allow: true, Reason: ReasonOwner}
	}
	if o, ok := v.deviceOwner(r.Requester); ok && o == r.Owner {
		// One of the owner's devices: the owner itself, until revoked.
		if _, revoked := v.deviceCut(r.Requester); revoked {
			return deny(ReasonDeviceRevoked)
		}
		return Decision{Allow: true, Reason: ReasonOwner}
	}
	ix := v.grantIndex()
	// Candidates: grants to the requester, and role grants to a role the
	// requester holds a credential for (in any state, so that a deny can
	// say why) from the grant's issuer.
	creds := v.credentialsOf(r.Requester)
	for i, c := range creds {
		if v.Equivocating(c.Issuer) {
			// An issuer that equivocated vouches for no one: drop its
			// credentials (copying only when there is one to drop).
			creds = honestIssuers(v, creds, i)
			break
		}
	}
	reach := ix.byOwnerTo[ownerGrantee{r.Owner, r.Requester}] > 0
	var via ID // the issuer of the first credential that reaches a role grant
	for _, c := range creds {
		if ix.byOwnerTo[ownerGrantee{r.Owner, c.RoleID}] > 0 {
			reach = true
			if via == "" {
				via = c.Issuer
			}
		}
	}
	if !reach {
		switch {
		case ix.roleOwnerRec[ownerRecord{r.Owner, r.Record}] > 0 || ix.roleOwnerRec[ownerRecord{r.Owner, ""}] > 0:
			return deny(ReasonNoCredential)
		case ix.byOwnerRec[ownerRecord{r.Owner, r.Record}] > 0 || ix.byOwnerRec[ownerRecord{r.Owner, ""}] > 0:
			return deny(ReasonWrongGrantee)
		}
		return deny(ReasonNoGrant)
	}
	// The index keeps unrevoked grants apart, so the stages below run
	// over those only; first is the smallest ID of every candidate, which
	// a revoked deny names.
	cands, first := ix.candidates(r.Owner, r.Requester, r.Record, creds)
	if first == nil {
		if ix.byOwnerTo[ownerGrantee{r.Owner, r.Requester}] == 0 &&
			(ix.roleOwnerRec[ownerRecord{r.Owner, r.Record}] > 0 || ix.roleOwnerRec[ownerRecord{r.Owner, ""}] > 0) {
			return deny(ReasonNoCredential) // credentials for other roles or issuers only
		}
		if ix.byOwnerTo[ownerGrantee{r.Owner, r.Requester}] == 0 {
			// Only a credential made the owner's grants reach the
			// requester: name its issuer, so the audit reads that feed.
			return Decision{Reason: ReasonRecord, Issuer: via}
		}
		return deny(ReasonRecord)
	}
	matching := func(g *GrantInfo) []*CredentialInfo {
		var out []*CredentialInfo
		for _, c := range creds {
			if c.Reaches(&g.Grant) {
				out = append(out, c)
			}
		}
		return out
	}
	// Each stage keeps the grants that pass it; the first stage that
	// leaves none gives the reason, and the first grant that reached it is
	// the one the decision relied on.
	stage := func(keep func(g *GrantInfo) bool) []*GrantInfo {
		out := cands[:0:0]
		for _, g := range cands {
			if keep(g) {
				out = append(out, g)
			}
		}
		return out
	}
	denied := func(reason Reason, g *GrantInfo) Decision {
		return Decision{Reason: reason, Grant: g.ID, Issuer: g.Issuer}
	}
	if len(cands) == 0 {
		return denied(ReasonRevoked, first)
	}
	// Grants a device signed count within its cut only (device.go).
	var dropped Reason
	next := stage(func(g *GrantInfo) bool {
		ok, why := deviceGrantCounts(v, g)
		if !ok && dropped == "" {
			dropped = why
		}
		return ok
	})
	if len(next) == 0 {
		return denied(dropped, cands[0])
	}
	cands = next
	next = stage(func(g *GrantInfo) bool {
		if !g.IsRole() {
			return true
		}
		for _, c := range matching(g) {
			if !v.credentialRevoked(c) {
				return true
			}
		}
		return false
	})
	if len(next) == 0 {
		return denied(ReasonCredentialRevoked, cands[0])
	}
	cands = next
	valid := func(g *GrantInfo) *CredentialInfo {
		for _, c := range matching(g) {
			if !v.credentialRevoked(c) && c.ValidAt(t) {
				return c
			}
		}
		return nil
	}
	next = stage(func(g *GrantInfo) bool { return !g.IsRole() || valid(g) != nil })
	if len(next) == 0 {
		return denied(ReasonCredentialExpired, cands[0])
	}
	cands = next
	next = stage(func(g *GrantInfo) bool { return g.NotBefore <= t && (g.Expires == 0 || t < g.Expires) })
	if len(next) == 0 {
		for _, g := range cands {
			if g.NotBefore > t {
				return denied(ReasonNotYetValid, g)
			}
		}
		return denied(ReasonExpired, cands[0])
	}
	cands = next
	next = stage(func(g *GrantInfo) bool {
		for _, gs := range g.parsed {
			if gs.Covers(req) {
				return true
			}
		}
		return false
	})
	if len(next) == 0 {
		return denied(ReasonScope, cands[0])
	}
	cands = next
	next = stage(func(g *GrantInfo) bool { return PurposeCovers(g.Purpose, r.Purpose) })
	if len(next) == 0 {
		return denied(ReasonPurpose, cands[0])
	}
	cands = next
	// Emergency grants need the requester's break-glass entry for this
	// owner and grant, not dated ahead of now, and the time box, counted
	// from the requester's first break-glass entry for the grant, open.
	next = stage(func(g *GrantInfo) bool {
		if !g.IsEmergency() {
			return true
		}
		b, ok := v.breakGlassEntry(r.BreakGlass)
		return ok && b.Author == r.Requester && b.Owner == r.Owner && b.Grant == g.ID && b.Time <= t+w
	})
	if len(next) == 0 {
		return denied(ReasonNoBreakGlass, cands[0])
	}
	cands = next
	until := func(g *GrantInfo) int64 {
		first := v.firstBreakGlassOf(r.Requester, g.ID)
		return first.Time + g.TimeBox
	}
	next = stage(func(g *GrantInfo) bool { return !g.IsEmergency() || t < until(g) })
	if len(next) == 0 {
		return denied(ReasonTimeBox, cands[0])
	}
	// Prefer an ordinary grant over an emergency one.
	g := next[0]
	for _, c := range next {
		if !c.IsEmergency() {
			g = c
			break
		}
	}
	d := Decision{Allow: true, Reason: ReasonGranted, Grant: g.ID, Issuer: g.Issuer}
	if g.IsRole() {
		d.Credential = valid(g).ID
	}
	if g.IsEmergency() {
		d.Reason, d.Until = ReasonEmergency, until(g)
	}
	return d
}

// honestIssuers returns creds without the credentials whose issuer
// equivocated; creds[first] is the first of those.
func honestIssuers(v facts, creds []*CredentialInfo, first int) []*CredentialInfo {
	out := slices.Clone(creds[:first])
	for _, c := range creds[first+1:] {
		if !v.Equivocating(c.Issuer) {
			out = append(out, c)
		}
	}
	return out
}

// mergeByID merges two slices sorted by ID, dropping duplicates.
func mergeByID(a, b []*GrantInfo) []*GrantInfo {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]*GrantInfo, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && string(a[i].ID[:]) < string(b[j].ID[:]):
			out = append(out, a[i])
			i++
		case i == len(a) || string(b[j].ID[:]) < string(a[i].ID[:]):
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
