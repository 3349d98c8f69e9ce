package consent

// The reference implementation of the policy: Decide and the audit's
// as-of decisions exactly as they were before the indexes (issue 12), kept
// to check the indexed code against (TestDecideMatchesReference). It is
// deliberately simple and slow: every grant of a key, revoked ones
// included, is kept and scanned, and an as-of view is rebuilt from the
// feed prefixes for each access entry.

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// refView is the part of the old View that decide read, built from
// accepted entries in feed order.
type refView struct {
	grants       map[Hash]*GrantInfo
	byKey        map[grantKey][]*GrantInfo // sorted by ID, revoked grants included
	byOwnerRec   map[ownerRecord]int
	byOwnerTo    map[ownerGrantee]int
	roleOwnerRec map[ownerRecord]int
	revokedBy    map[Hash]map[ID]bool
	nonces       map[nonceKey]struct{}
	proofs       map[ID]bool

	credsBySubject map[ID][]*CredentialInfo // sorted by ID
	breakGlass     map[Hash]*BreakGlassInfo
	firstBG        map[requesterGrant]*BreakGlassInfo

	repairs       map[ID][]*RepairGrantInfo // owner -> repair grants, in feed order
	repairRevoked map[Hash]map[ID]bool      // repair grant -> who revoked it
	devices       map[ID]ID                 // device -> owner
	revs          []refDeviceRev
}

type refDeviceRev struct {
	by, device ID
	cut        uint64
}

// cut is the smallest cut of the owner's revocations of device.
func (v *refView) cut(device ID) (uint64, bool) {
	var cut uint64
	found := false
	for _, r := range v.revs {
		if r.device == device && r.by == v.devices[device] && (!found || r.cut < cut) {
			cut, found = r.cut, true
		}
	}
	return cut, found
}

func newRefView() *refView {
	return &refView{
		grants: map[Hash]*GrantInfo{}, byKey: map[grantKey][]*GrantInfo{}, byOwnerRec: map[ownerRecord]int{},
		byOwnerTo: map[ownerGrantee]int{}, roleOwnerRec: map[ownerRecord]int{}, revokedBy: map[Hash]map[ID]bool{},
		nonces: map[nonceKey]struct{}{}, proofs: map[ID]bool{}, credsBySubject: map[ID][]*CredentialInfo{},
		breakGlass: map[Hash]*BreakGlassInfo{}, firstBG: map[requesterGrant]*BreakGlassInfo{},
		repairs: map[ID][]*RepairGrantInfo{}, repairRevoked: map[Hash]map[ID]bool{},
		devices: map[ID]ID{},
	}
}

func (v *refView) NonceSeen(requester ID, nonce []byte) bool {
	_, ok := v.nonces[nonceKey{requester, string(nonce)}]
	return ok
}

func (v *refView) Equivocating(id ID) bool { return v.proofs[id] }

func (v *refView) noteNonce(e *Entry) {
	if e.Kind != KindAccess {
		return
	}
	b, err := decodeBody(e.Kind, e.Body)
	if err != nil {
		return
	}
	r, err := DecodeRequest(b.(*AccessBody).Request)
	if err != nil {
		return
	}
	v.nonces[nonceKey{r.Requester, string(r.Nonce)}] = struct{}{}
}

// conflict records an entry that conflicts with an accepted one: its
// author equivocated.
func (v *refView) conflict(e *Entry) {
	v.noteNonce(e)
	v.proofs[e.Author] = true
}

// accept adds the next entry of its author's feed.
func (v *refView) accept(e *Entry) {
	v.noteNonce(e)
	h := e.Hash()
	body, err := decodeBody(e.Kind, e.Body)
	if err != nil {
		panic(fmt.Sprintf("refView: %v", err))
	}
	switch b := body.(type) {
	case *Grant:
		gi := &GrantInfo{ID: h, Author: e.Author, Seq: e.Seq, Time: e.Time, Grant: *b}
		if o, ok := v.devices[e.Author]; ok {
			gi.Author, gi.Device = o, e.Author
		}
		for _, s := range b.Scopes {
			if sc, err := ParseScope(s); err == nil {
				gi.parsed = append(gi.parsed, sc)
			}
		}
		v.grants[h] = gi
		v.byOwnerTo[ownerGrantee{gi.Author, b.Grantee}]++
		recs := b.Records
		if b.All {
			recs = []string{""}
		}
		for _, r := range recs {
			k := grantKey{gi.Author, b.Grantee, r}
			s := v.byKey[k]
			i := sort.Search(len(s), func(i int) bool { return string(s[i].ID[:]) >= string(gi.ID[:]) })
			v.byKey[k] = slices.Insert(s, i, gi)
			v.byOwnerRec[ownerRecord{gi.Author, r}]++
			if b.IsRole() {
				v.roleOwnerRec[ownerRecord{gi.Author, r}]++
			}
		}
	case *RevokeBody:
		m := v.revokedBy[b.Grant]
		if m == nil {
			m = map[ID]bool{}
			v.revokedBy[b.Grant] = m
		}
		by := e.Author
		if o, ok := v.devices[e.Author]; ok {
			by = o
		}
		m[by] = true
	case *DeviceBody:
		if e.Seq == 1 && b.Device == e.Author {
			v.devices[e.Author] = b.Owner
		}
	case *DeviceRevokeBody:
		v.revs = append(v.revs, refDeviceRev{by: e.Author, device: b.Device, cut: b.Cut})
	case *EquivocationProof:
		v.proofs[b.Author()] = true
	case *RepairGrantBody:
		v.repairs[e.Author] = append(v.repairs[e.Author], &RepairGrantInfo{ID: h, Owner: e.Author, Seq: e.Seq, Time: e.Time, RepairGrantBody: *b})
	case *RepairRevokeBody:
		if v.repairRevoked[b.Grant] == nil {
			v.repairRevoked[b.Grant] = map[ID]bool{}
		}
		v.repairRevoked[b.Grant][e.Author] = true
	case *CredentialBody:
		ci := &CredentialInfo{ID: h, Issuer: e.Author, Time: e.Time, Seq: e.Seq, CredentialBody: *b}
		s := v.credsBySubject[b.Subject]
		i := sort.Search(len(s), func(i int) bool { return string(s[i].ID[:]) >= string(h[:]) })
		v.credsBySubject[b.Subject] = slices.Insert(s, i, ci)
	case *BreakGlassBody:
		bi := &BreakGlassInfo{ID: h, Author: e.Author, Seq: e.Seq, Time: e.Time, BreakGlassBody: *b}
		v.breakGlass[h] = bi
		if _, ok := v.firstBG[requesterGrant{e.Author, b.Grant}]; !ok {
			v.firstBG[requesterGrant{e.Author, b.Grant}] = bi
		}
	}
}

// decideRef is Decide as it was.
func decideRef(v *refView, r *Request, now time.Time) Decision {
	if VerifyRequest(r) != nil {
		return deny(ReasonBadSignature)
	}
	return decideRefPolicy(v, r, now)
}

func decideRefPolicy(v *refView, r *Request, now time.Time) Decision {
	t := now.Unix()
	w := int64(FreshnessWindow / time.Second)
	if r.Time > t+w || r.Time < t-w || v.NonceSeen(r.Requester, r.Nonce) {
		return deny(ReasonReplay)
	}
	if v.Equivocating(r.Owner) || v.Equivocating(r.Requester) {
		return deny(ReasonEquivocating)
	}
	if r.Purpose == PurposeRepair {
		return decideRepairRef(v, r)
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
	if o, ok := v.devices[r.Requester]; ok && o == r.Owner {
		if _, revoked := v.cut(r.Requester); revoked {
			return deny(ReasonDeviceRevoked)
		}
		return Decision{Allow: true, Reason: ReasonOwner}
	}
	// Candidates: grants to the requester, and role grants to a role the
	// requester holds a credential for (in any state, so that a deny can
	// say why) from the grant's issuer.
	creds := v.credsBySubject[r.Requester]
	for i, c := range creds {
		if v.Equivocating(c.Issuer) {
			// An issuer that equivocated vouches for no one: drop its
			// credentials (copying only when there is one to drop).
			creds = honestIssuersRef(v, creds, i)
			break
		}
	}
	reach := v.byOwnerTo[ownerGrantee{r.Owner, r.Requester}] > 0
	var via ID // the issuer of the first credential that reaches a role grant
	for _, c := range creds {
		if v.byOwnerTo[ownerGrantee{r.Owner, c.RoleID}] > 0 {
			reach = true
			if via == "" {
				via = c.Issuer
			}
		}
	}
	if !reach {
		switch {
		case v.roleOwnerRec[ownerRecord{r.Owner, r.Record}] > 0 || v.roleOwnerRec[ownerRecord{r.Owner, ""}] > 0:
			return deny(ReasonNoCredential)
		case v.byOwnerRec[ownerRecord{r.Owner, r.Record}] > 0 || v.byOwnerRec[ownerRecord{r.Owner, ""}] > 0:
			return deny(ReasonWrongGrantee)
		}
		return deny(ReasonNoGrant)
	}
	cands := mergeByIDRef(v.byKey[grantKey{r.Owner, r.Requester, r.Record}], v.byKey[grantKey{r.Owner, r.Requester, ""}])
	matching := func(g *GrantInfo) []*CredentialInfo {
		var out []*CredentialInfo
		for _, c := range creds {
			if c.Reaches(&g.Grant) {
				out = append(out, c)
			}
		}
		return out
	}
	for _, c := range creds {
		for _, k := range []grantKey{{r.Owner, c.RoleID, r.Record}, {r.Owner, c.RoleID, ""}} {
			var role []*GrantInfo
			for _, g := range v.byKey[k] {
				if c.Reaches(&g.Grant) {
					role = append(role, g)
				}
			}
			cands = mergeByIDRef(cands, role)
		}
	}
	if len(cands) == 0 {
		if v.byOwnerTo[ownerGrantee{r.Owner, r.Requester}] == 0 &&
			(v.roleOwnerRec[ownerRecord{r.Owner, r.Record}] > 0 || v.roleOwnerRec[ownerRecord{r.Owner, ""}] > 0) {
			return deny(ReasonNoCredential) // credentials for other roles or issuers only
		}
		if v.byOwnerTo[ownerGrantee{r.Owner, r.Requester}] == 0 {
			// Only a credential made the owner's grants reach the
			// requester: name its issuer, so the audit reads that feed.
			return Decision{Reason: ReasonRecord, Issuer: via}
		}
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
	denied := func(reason Reason, g *GrantInfo) Decision {
		return Decision{Reason: reason, Grant: g.ID, Issuer: g.Issuer}
	}
	next := stage(func(g *GrantInfo) bool { return !v.revokedBy[g.ID][g.Author] })
	if len(next) == 0 {
		return denied(ReasonRevoked, cands[0])
	}
	cands = next
	var dropped Reason
	next = stage(func(g *GrantInfo) bool {
		if g.Device == "" {
			return true
		}
		why := Reason("")
		if v.Equivocating(g.Device) {
			why = ReasonEquivocating
		} else if cut, ok := v.cut(g.Device); ok && g.Seq > cut {
			why = ReasonDeviceRevoked
		}
		if why != "" && dropped == "" {
			dropped = why
		}
		return why == ""
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
			if !v.revokedBy[c.ID][c.Issuer] {
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
			if !v.revokedBy[c.ID][c.Issuer] && c.ValidAt(t) {
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
		b, ok := v.breakGlass[r.BreakGlass]
		return ok && b.Author == r.Requester && b.Owner == r.Owner && b.Grant == g.ID && b.Time <= t+w
	})
	if len(next) == 0 {
		return denied(ReasonNoBreakGlass, cands[0])
	}
	cands = next
	until := func(g *GrantInfo) int64 {
		first := v.firstBG[requesterGrant{r.Requester, g.ID}]
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
func honestIssuersRef(v *refView, creds []*CredentialInfo, first int) []*CredentialInfo {
	out := slices.Clone(creds[:first])
	for _, c := range creds[first+1:] {
		if !v.Equivocating(c.Issuer) {
			out = append(out, c)
		}
	}
	return out
}
func mergeByIDRef(a, b []*GrantInfo) []*GrantInfo {
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

// refFeeds is the accepted feeds of a ledger, each in order, with hashes.
type refFeeds map[ID][]refEntry

type refEntry struct {
	e *Entry
	h Hash
}

// refDecideAsOf is the audit's old re-run of Decide for access entry e
// (carrying req): a view built afresh from the prefixes of the feeds e
// names.
func refDecideAsOf(feeds refFeeds, e *Entry, req *Request) (Decision, error) {
	body, err := e.DecodedBody()
	if err != nil {
		return Decision{}, err
	}
	ab, ok := body.(*AccessBody)
	if !ok {
		return Decision{}, malformed("not an access entry")
	}
	want := map[ID]int{e.Author: int(e.Seq - 1)}
	prefix := func(role string, author ID, h Head) error {
		f := feeds[author]
		if h.Seq == 0 {
			if !h.Hash.IsZero() {
				return fmt.Errorf("%s head: %w", role, ErrUnknownHead)
			}
			return nil
		}
		if f == nil || h.Seq > uint64(len(f)) || f[h.Seq-1].h != h.Hash {
			return fmt.Errorf("%s head: %w", role, ErrUnknownHead)
		}
		if author == e.Author {
			if h.Seq > e.Seq-1 {
				return fmt.Errorf("%s head: %w", role, ErrUnknownHead)
			}
			return nil
		}
		if int(h.Seq) > want[author] {
			want[author] = int(h.Seq)
		}
		return nil
	}
	if err := prefix("owner", req.Owner, ab.OwnerHead); err != nil {
		return Decision{}, err
	}
	if ab.RequesterHead != nil {
		if err := prefix("requester", req.Requester, *ab.RequesterHead); err != nil {
			return Decision{}, err
		}
	}
	if ab.IssuerHead != nil {
		if err := prefix("issuer", ab.Issuer, *ab.IssuerHead); err != nil {
			return Decision{}, err
		}
	}
	for _, d := range ab.DeviceHeads {
		if err := prefix("device", d.Device, d.Head); err != nil {
			return Decision{}, err
		}
	}
	v := newRefView()
	for id, n := range want {
		for _, x := range feeds[id][:n] {
			v.accept(x.e)
		}
	}
	return decideRef(v, req, TimeOf(ab.DecidedAt(e.Time))), nil
}

// decideRepairRef is the repair policy (repair.go) written out again.
func decideRepairRef(v *refView, r *Request) Decision {
	if r.Scope != RepairScope {
		return deny(ReasonScope)
	}
	if r.Requester == r.Owner {
		return Decision{Allow: true, Reason: ReasonOwner}
	}
	var firstRevoked *RepairGrantInfo
	named := false
	for _, g := range v.repairs[r.Owner] {
		if g.Repairer != r.Requester {
			continue
		}
		named = true
		if !g.All && !slices.Contains(g.Records, r.Record) {
			continue
		}
		if v.repairRevoked[g.ID][r.Owner] {
			if firstRevoked == nil {
				firstRevoked = g
			}
			continue
		}
		return Decision{Allow: true, Reason: ReasonRepair, Grant: g.ID}
	}
	if firstRevoked != nil {
		return Decision{Reason: ReasonRevoked, Grant: firstRevoked.ID}
	}
	if named {
		return deny(ReasonRecord)
	}
	return deny(ReasonNoRepairGrant)
}
