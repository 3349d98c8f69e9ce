package consent

import (
	"cmp"
	"fmt"
	"slices"
)

// The audit's index: every fact Decide reads, with the position (author,
// seq) of the entry it comes from, so that one index answers "as of" any
// set of feed prefixes. Grants are the exception: they are replayed into a
// grantIndex by a cursor over the owner's feed that only moves forward
// (the audit visits access entries by owner head), so an access entry
// costs O(log n + live grants) and the audit O(n log n).

// auditIndex is built once from a full view.
type auditIndex struct {
	full   *View
	nonces map[nonceKey][]authorSeq // accepted access entries carrying each nonce
	// credRevoked is the seq of the issuer's first revoke of a
	// credential, by (issuer, credential).
	credRevoked map[authorHash]uint64
	// events are each owner's grants and revocations of its own grants,
	// in feed order.
	events map[ID][]grantEvent
	ids    map[ID]ID // requesters, each once
}

type grantEvent struct {
	seq    uint64
	g      *GrantInfo
	revoke bool
	// A revocation of a grant the audit had not walked yet when it walked
	// the revocation (another feed's: a device's, device.go) names it by
	// id, for by (the identity the revoker acts for); g is nil until it
	// is resolved (grantOf).
	id Hash
	by ID
}

// grantOf returns the grant of ev, resolving a revocation walked before
// its grant: nil when there is no such grant of the revoker's owner.
func (x *auditIndex) grantOf(ev grantEvent) *GrantInfo {
	if ev.g != nil {
		return ev.g
	}
	if g, ok := x.full.grantMap()[ev.id]; ok && g.Author == ev.by {
		return g
	}
	return nil
}

func emptyAuditIndex(full *View) *auditIndex {
	return &auditIndex{full: full, nonces: map[nonceKey][]authorSeq{}, credRevoked: map[authorHash]uint64{},
		events: map[ID][]grantEvent{}, ids: map[ID]ID{}}
}

func newAuditIndex(full *View) *auditIndex {
	x := emptyAuditIndex(full)
	for _, a := range full.Authors() {
		f := full.feeds[a]
		for i, e := range full.entriesOf(a) {
			body, err := decodeBody(e.Kind, e.Body)
			if err != nil {
				continue
			}
			var req *Request
			if ab, ok := body.(*AccessBody); ok {
				if req, err = DecodeRequest(ab.Request); err != nil {
					continue
				}
			}
			x.note(e, full.feedTables(f).hashes[i], body, req)
		}
	}
	return x
}

// note indexes e, the next accepted entry of its feed (hash h, body
// decoded; req is an access entry's request, nil if it does not decode).
// The full view has accepted e already.
func (x *auditIndex) note(e *Entry, h Hash, body any, req *Request) {
	a, full := e.Author, x.full
	switch e.Kind {
	case KindGrant:
		if g, ok := full.grantMap()[h]; ok {
			x.events[a] = append(x.events[a], grantEvent{seq: e.Seq, g: g})
		}
	case KindRevoke:
		rb, ok := body.(*RevokeBody)
		if !ok {
			return
		}
		by := full.actsFor(a)
		if g, ok := full.grantMap()[rb.Grant]; ok && g.Author == by {
			x.events[a] = append(x.events[a], grantEvent{seq: e.Seq, g: g, revoke: true})
		} else if _, cred := full.creds[rb.Grant]; !ok && !cred {
			// A grant in another feed (a device's, or the owner's
			// revoked by a device), not walked yet.
			x.events[a] = append(x.events[a], grantEvent{seq: e.Seq, revoke: true, id: rb.Grant, by: by})
		}
		if c, ok := full.creds[rb.Grant]; ok && c.Issuer == a {
			k := authorHash{a, rb.Grant}
			if _, ok := x.credRevoked[k]; !ok {
				x.credRevoked[k] = e.Seq
			}
		}
	case KindAccess:
		if req == nil {
			return
		}
		// One copy of each requester's ID for all its nonces.
		r, ok := x.ids[req.Requester]
		if !ok {
			r = req.Requester
			x.ids[r] = r
		}
		k := nonceKey{r, string(req.Nonce)}
		x.nonces[k] = append(x.nonces[k], authorSeq{a, e.Seq})
	}
}

// limits is a set of feed prefixes: limit[author] entries of each named
// author, none of any other.
type limits []authorSeq

func (l limits) of(a ID) uint64 {
	for _, x := range l {
		if x.author == a {
			return x.seq
		}
	}
	return 0
}

func (l limits) visible(p authorSeq) bool { return p.seq <= l.of(p.author) }

// raise makes the prefix of a at least n entries.
func (l limits) raise(a ID, n uint64) limits {
	for i, x := range l {
		if x.author == a {
			l[i].seq = max(x.seq, n)
			return l
		}
	}
	return append(l, authorSeq{a, n})
}

// accessLimits returns the feed prefixes the decider of access entry e
// relied on (see AuditLedger): its own feed before e, the owner's feed up
// to the head e names, and the requester's and the issuer's when named. A
// head that is not part of its feed is an error wrapping ErrUnknownHead.
func accessLimits(full *View, e *Entry, ab *AccessBody, req *Request) (limits, error) {
	lim := limits{{e.Author, e.Seq - 1}}
	prefix := func(role string, author ID, h Head) error {
		if h.Seq == 0 {
			if !h.Hash.IsZero() {
				return fmt.Errorf("%s head: %w", role, ErrUnknownHead)
			}
			return nil
		}
		f := full.feeds[author]
		if f == nil || h.Seq > f.hd.Seq || full.feedTables(f).hashes[h.Seq-1] != h.Hash {
			return fmt.Errorf("%s head: %w", role, ErrUnknownHead)
		}
		if author == e.Author {
			if h.Seq > e.Seq-1 {
				return fmt.Errorf("%s head: %w", role, ErrUnknownHead)
			}
			return nil
		}
		lim = lim.raise(author, h.Seq)
		return nil
	}
	if err := prefix("owner", req.Owner, ab.OwnerHead); err != nil {
		return nil, err
	}
	if ab.RequesterHead != nil {
		if err := prefix("requester", req.Requester, *ab.RequesterHead); err != nil {
			return nil, err
		}
	}
	if ab.IssuerHead != nil {
		if err := prefix("issuer", ab.Issuer, *ab.IssuerHead); err != nil {
			return nil, err
		}
	}
	for _, d := range ab.DeviceHeads {
		if err := prefix("device", d.Device, d.Head); err != nil {
			return nil, err
		}
	}
	return lim, nil
}

// grantCursor replays one owner's grants and revocations into a
// grantIndex, forward only.
type grantCursor struct {
	x      *auditIndex
	owner  ID
	events []grantEvent
	next   int // events[:next] are applied
	gx     *grantIndex
	revs   map[Hash]bool
}

func (x *auditIndex) cursor(owner ID) *grantCursor {
	return &grantCursor{x: x, owner: owner, events: x.events[owner], gx: newGrantIndex(), revs: map[Hash]bool{}}
}

// advance applies the owner's events up to seq; seq never decreases.
func (c *grantCursor) advance(seq uint64) {
	for c.next < len(c.events) && c.events[c.next].seq <= seq {
		ev := c.events[c.next]
		c.next++
		g := c.x.grantOf(ev)
		switch {
		case g == nil:
		case !ev.revoke:
			c.gx.add(g, !c.revs[g.ID])
		case !c.revs[g.ID]:
			c.revs[g.ID] = true
			c.gx.revoke(g)
		}
	}
}

// asOf answers the policy's questions as of a set of feed prefixes; the
// owner's grants come from a cursor advanced to the owner's prefix.
type asOf struct {
	x   *auditIndex
	lim limits
	gc  *grantCursor

	merged *grantIndex // the cursor's, or with the owner's device grants (device_audit.go)
}

func (a *asOf) NonceSeen(requester ID, nonce []byte) bool {
	for _, p := range a.x.nonces[nonceKey{requester, string(nonce)}] {
		if a.lim.visible(p) {
			return true
		}
	}
	return false
}

// Equivocating is true when an equivocation entry in the prefixes proves
// it: two conflicting entries are not part of any feed prefix.
func (a *asOf) Equivocating(author ID) bool {
	for _, p := range a.x.full.proofLogs[author] {
		if a.lim.visible(authorSeq{p.Logger, p.Seq}) {
			return true
		}
	}
	return false
}

func (a *asOf) grantIndex() *grantIndex {
	if a.merged == nil {
		a.merged = a.withDevices()
	}
	return a.merged
}

func (a *asOf) credentialsOf(id ID) []*CredentialInfo {
	all := a.x.full.credsBySubject[id]
	for i, c := range all {
		if !a.lim.visible(authorSeq{c.Issuer, c.Seq}) {
			out := slices.Clone(all[:i])
			for _, c := range all[i+1:] {
				if a.lim.visible(authorSeq{c.Issuer, c.Seq}) {
					out = append(out, c)
				}
			}
			return out
		}
	}
	return all
}

func (a *asOf) credentialRevoked(c *CredentialInfo) bool {
	s, ok := a.x.credRevoked[authorHash{c.Issuer, c.ID}]
	return ok && a.lim.visible(authorSeq{c.Issuer, s})
}

func (a *asOf) breakGlassEntry(id Hash) (*BreakGlassInfo, bool) {
	b, ok := a.x.full.breakGlass[id]
	if !ok || !a.lim.visible(authorSeq{b.Author, b.Seq}) {
		return nil, false
	}
	return b, true
}

// firstBreakGlassOf is only asked after breakGlassEntry found one of
// requester's entries for grant within the prefixes: the first one comes
// earlier in the same feed, so it is within them too.
func (a *asOf) firstBreakGlassOf(requester ID, grant Hash) *BreakGlassInfo {
	return a.x.full.firstBG[requesterGrant{requester, grant}]
}

// asOfJob is one access entry to re-decide: its position in the audit's
// walk, its owner and the owner's prefix it names. Its body, request and
// the prefixes it names are decoded when its turn comes (decideJobs), so
// that waiting jobs hold no copies.
type asOfJob struct {
	i     int
	e     *Entry
	owner ID
	at    uint64 // the owner's prefix

	ab  *AccessBody
	req *Request
	lim limits
}

// decideJobs re-runs the policy for each job, owner by owner in order of
// the owner's prefix so that each owner's grant cursor only moves
// forward, and calls done with each decision.
func (x *auditIndex) decideJobs(jobs []asOfJob, done func(j *asOfJob, d Decision)) {
	slices.SortFunc(jobs, func(a, b asOfJob) int {
		if c := cmp.Compare(a.owner, b.owner); c != 0 {
			return c
		}
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	var gc *grantCursor
	for k := range jobs {
		j := &jobs[k]
		if gc == nil || gc.owner != j.owner {
			gc = x.cursor(j.owner)
		}
		gc.advance(j.at)
		if j.ab == nil {
			// Checked before (CheckAccess, accessLimits): cannot fail.
			body, err := j.e.DecodedBody()
			if err != nil {
				panic(fmt.Sprintf("audit: access entry no longer decodes: %v", err))
			}
			j.ab = body.(*AccessBody)
			if j.req, err = DecodeRequest(j.ab.Request); err != nil {
				panic(fmt.Sprintf("audit: request no longer decodes: %v", err))
			}
			if j.lim, err = accessLimits(x.full, j.e, j.ab, j.req); err != nil {
				panic(fmt.Sprintf("audit: heads no longer found: %v", err))
			}
		}
		// The request was verified by CheckAccess.
		done(j, decide(&asOf{x: x, lim: j.lim, gc: gc}, j.req, TimeOf(j.ab.DecidedAt(j.e.Time))))
		j.ab, j.req, j.lim = nil, nil, nil
	}
}
