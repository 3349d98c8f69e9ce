package consent

import (
	"time"
)

// Reason is the machine-readable reason of a decision. The strings are
// part of the wire format (access entries) and of the CLI's JSON.
type Reason string

// Reasons. Granted and Owner are the only reasons of an allow.
const (
	ReasonGranted      Reason = "granted"
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
)

var reasonSet = map[Reason]struct{}{
	ReasonGranted: {}, ReasonOwner: {}, ReasonNoGrant: {}, ReasonWrongGrantee: {}, ReasonRecord: {},
	ReasonRevoked: {}, ReasonNotYetValid: {}, ReasonExpired: {}, ReasonScope: {},
	ReasonPurpose: {}, ReasonBadSignature: {}, ReasonEquivocating: {}, ReasonReplay: {},
}

// FreshnessWindow is how far a request's time may lie from the decision
// time, either way, before the request counts as a replay.
const FreshnessWindow = 5 * time.Minute

// Decision is the outcome of Decide. Grant is the grant the decision relied
// on: for an allow, the grant that allows; for a deny after grants were
// considered, the grant that came closest (zero if none).
type Decision struct {
	Allow  bool   `json:"allow"`
	Reason Reason `json:"reason"`
	Grant  Hash   `json:"grant"`
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
//     (equivocating-author);
//  4. the requested scope and purpose parse (scope, purpose);
//  5. a request by the owner itself is allowed (owner): patients read
//     their own records through the same peers, logged like any access;
//  6. among the owner's grants: some name the requester (else
//     wrong-grantee if the record was granted to someone else, or
//     no-grant), some of those cover the record (record), some of those
//     are not revoked (revoked), some of those are valid at now
//     (not-yet-valid, or expired), some of those cover the scope (scope)
//     and some of those the purpose (purpose).
//
// When several grants survive, the one with the smallest ID is used.
// Only grants authored by the request's Owner count.
func Decide(v *View, r *Request, now time.Time) Decision {
	if VerifyRequest(r) != nil {
		return deny(ReasonBadSignature)
	}
	return decide(v, r, now)
}

// decide is Decide without the signature check (benchmarked on its own).
func decide(v *View, r *Request, now time.Time) Decision {
	t := now.Unix()
	w := int64(FreshnessWindow / time.Second)
	if r.Time > t+w || r.Time < t-w || v.NonceSeen(r.Requester, r.Nonce) {
		return deny(ReasonReplay)
	}
	if v.Equivocating(r.Owner) || v.Equivocating(r.Requester) {
		return deny(ReasonEquivocating)
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
	if v.byOwnerTo[ownerGrantee{r.Owner, r.Requester}] == 0 {
		if v.byOwnerRec[ownerRecord{r.Owner, r.Record}] > 0 || v.byOwnerRec[ownerRecord{r.Owner, ""}] > 0 {
			return deny(ReasonWrongGrantee)
		}
		return deny(ReasonNoGrant)
	}
	cands := mergeByID(v.byKey[grantKey{r.Owner, r.Requester, r.Record}], v.byKey[grantKey{r.Owner, r.Requester, ""}])
	if len(cands) == 0 {
		return deny(ReasonRecord)
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
	next := stage(func(g *GrantInfo) bool { return !v.revokedBy[g.ID][g.Author] })
	if len(next) == 0 {
		return Decision{Reason: ReasonRevoked, Grant: cands[0].ID}
	}
	cands = next
	next = stage(func(g *GrantInfo) bool { return g.NotBefore <= t && (g.Expires == 0 || t < g.Expires) })
	if len(next) == 0 {
		for _, g := range cands {
			if g.NotBefore > t {
				return Decision{Reason: ReasonNotYetValid, Grant: g.ID}
			}
		}
		return Decision{Reason: ReasonExpired, Grant: cands[0].ID}
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
		return Decision{Reason: ReasonScope, Grant: cands[0].ID}
	}
	cands = next
	next = stage(func(g *GrantInfo) bool { return PurposeCovers(g.Purpose, r.Purpose) })
	if len(next) == 0 {
		return Decision{Reason: ReasonPurpose, Grant: cands[0].ID}
	}
	return Decision{Allow: true, Reason: ReasonGranted, Grant: next[0].ID}
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
