package peer

import (
	"fmt"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/serving"
)

// errNotAuthorised is what MayWrite refuses with.
var errNotAuthorised = ledgersync.ErrNotAuthorised

// authoriser decides who may read and write which feeds on this peer
// (need to know). A feed's subject is the patient it is about: the author
// itself for a home feed, S for a sub-feed about S (consent.SubFeed).
//
// This peer serves subject S when S enrolled it (serving.Set), when it
// holds S's shares or manifests, or when S's latest serve entry names it.
//
// Reads (MayRead): the feed's author itself and, for a sub-feed, its
// parent; this peer's known peers (bootstrap and network file: its fellow
// serving peers); the subject; the peers of the subject's serve entry;
// for a home feed, the parties its author's entries name (grantees, holders
// of a credential for a role ID granted) and, the other way round, the
// owners whose entries name its author (a patient reads the feed of a
// clinician it granted, with its break-glass entries); and anyone for a
// public feed (identity role issuer or peer, a known peer's home feed, this
// peer's own); a recovery requester's feed, by the owner it names and that
// owner's guardians, and a guardian's feed, by the requesters it approved
// (consent.View.RecoveryMayRead). Named parties see the subject's whole home feed, other grants
// included: a known leak (docs/network.md).
//
// Writes (MayWrite): entries of feeds whose subject this peer serves,
// handed over by a party of the feed (its author, the subject, a
// sub-feed's parent, a known or serving peer, a party the subject names);
// sub-feeds only of the subject's peers; the feeds of parties a served
// subject's entries name; known peers' home feeds; issuers' public feeds
// from their author or a known peer; a break-glass entry naming a served
// owner by a party it names; a recovery start naming a served owner,
// within the cap on strangers' recovery requests (admitRecovery). The
// rest is refused with an error wrapping errNotAuthorised.
type authoriser struct {
	self   consent.ID
	ledger *consent.Ledger
	served *serving.Set
	holds  func(consent.ID) bool
	known  map[consent.ID]bool
	now    func() time.Time
}

// Recovery requests from strangers (docs/network.md "Recovery requests
// from strangers"). A recovery start is signed by a fresh key, so anyone
// can write one naming a served owner; these bound what they make a peer
// keep.
const (
	// MaxPendingRecoveries is how many pending recovery starts naming one
	// owner, by authors that are not its known parties (the owner, its
	// devices, the guardians of its current set), a peer keeps; each such
	// author has at most one pending start per owner.
	MaxPendingRecoveries = 4
	// RecoveryGrace is how long after its waiting period a start stays
	// pending, if not refused or completed.
	RecoveryGrace = 24 * time.Hour
	// RecoveryMinHold is how long a start that reaches a peer from anyone
	// but a fellow peer (a known peer, a serving peer of the owner) must
	// still be pending: one whose waiting period plus RecoveryGrace ends
	// sooner (a backdated one) is refused, or its author could make one
	// that counts against the cap for no time at all, and another at once.
	RecoveryMinHold = 12 * time.Hour
)

func newAuthoriser(self consent.ID, l *consent.Ledger, served *serving.Set, holds func(consent.ID) bool,
	known []lpeer.ID) *authoriser {
	a := &authoriser{self: self, ledger: l, served: served, holds: holds, known: make(map[consent.ID]bool), now: time.Now}
	for _, k := range known {
		a.known[consent.ID(k.String())] = true
	}
	return a
}

// Serves reports whether this peer serves subject (see authoriser).
func (a *authoriser) Serves(v *consent.View, subject consent.ID) bool {
	if subject == a.self || a.served.Has(subject) || a.holds(subject) {
		return true
	}
	for _, p := range v.ServingPeers(subject) {
		if p == a.self {
			return true
		}
	}
	return false
}

// subject is the patient author's feed is about, and whether the feed is a
// sub-feed (then parent is its parent).
func subject(v *consent.View, author consent.ID) (subj, parent consent.ID, sub bool) {
	if p, s, ok := v.SubFeedOf(author); ok {
		return s, p, true
	}
	if o, ok := v.DeviceOwner(author); ok {
		return o, "", false // a device's feed is its owner's (consent/device.go)
	}
	return author, "", false
}

// actsFor reports whether r is s, or a device s enrolled and has not
// revoked: such a device reads and hands over what s may.
func actsFor(v *consent.View, r, s consent.ID) bool {
	if r == s {
		return true
	}
	o, ok := v.DeviceOwner(r)
	_, revoked := v.DeviceCut(r)
	return ok && o == s && !revoked
}

func (a *authoriser) public(v *consent.View, author consent.ID) bool {
	if author == a.self || a.known[author] {
		return true
	}
	if id, ok := v.Identity(author); ok && (id.Role == "issuer" || id.Role == "peer") {
		return true
	}
	return false
}

// MayRead reports whether remote may read author's feed.
func (a *authoriser) MayRead(remote lpeer.ID, author consent.ID) bool {
	r := consent.ID(remote.String())
	ok := r == author || a.known[r]
	if !ok {
		a.ledger.View(func(v *consent.View) { ok = a.mayRead(v, r, author) })
	}
	return ok
}

func (a *authoriser) mayRead(v *consent.View, r, author consent.ID) bool {
	s, parent, sub := subject(v, author)
	if actsFor(v, r, s) || sub && r == parent {
		return true
	}
	for _, p := range v.ServingPeers(s) {
		if p == r {
			return true
		}
	}
	if sub {
		return false // access sub-feeds: the subject and its peers only
	}
	if o, ok := v.DeviceOwner(r); ok && actsFor(v, r, o) {
		r = o // a device reads the feeds its owner's entries name
	}
	return a.public(v, author) || v.Names(s, r) || v.Names(r, author) || v.RecoveryMayRead(r, author)
}

// MayWrite accepts e from remote, or refuses it with an error wrapping
// errNotAuthorised.
func (a *authoriser) MayWrite(remote lpeer.ID, e *consent.Entry) error {
	r := consent.ID(remote.String())
	var ok bool
	var err error
	a.ledger.View(func(v *consent.View) {
		if ok = a.mayWrite(v, r, e); ok {
			err = a.admitRecovery(v, r, e)
		}
	})
	if !ok {
		return fmt.Errorf("%w: this peer keeps only the feeds of the patients it serves and of the parties they name", errNotAuthorised)
	}
	return err
}

// admitRecovery applies the limits on strangers' recovery requests to e,
// which mayWrite accepted from r: a recovery start naming an owner, by an
// author that is not a known party of the owner, is refused when it asks
// a guardian set other than the owner's current one (it could never be
// approved), when it would be pending for less than RecoveryMinHold and
// comes from anyone but a fellow peer, and, with ErrRecoveryCap, when its author has a
// pending start for that owner already or MaxPendingRecoveries others are
// pending. A start this peer holds already passes (a repeated push, a
// sync). The answer depends only on the view and the clock, so peers
// with the same ledger agree.
func (a *authoriser) admitRecovery(v *consent.View, r consent.ID, e *consent.Entry) error {
	if e.Kind != consent.KindRecovery {
		return nil
	}
	body, err := e.DecodedBody()
	if err != nil {
		return fmt.Errorf("%w: %w", errNotAuthorised, err)
	}
	b, ok := body.(*consent.RecoveryBody)
	if !ok || b.Op != consent.RecoveryStart || a.knownParty(v, b.Owner, e.Author) {
		return nil
	}
	if _, held := v.Recovery(e.Hash()); held {
		return nil
	}
	now := a.now()
	if !a.isPeerOf(v, r, b.Owner) {
		if set, ok := v.GuardianSet(b.Owner); !ok || set.Set != b.Set {
			return fmt.Errorf("%w: the recovery request does not ask the identity's current guardian set", errNotAuthorised)
		}
		if e.Time+b.Delay+int64(RecoveryGrace/time.Second) < now.Add(RecoveryMinHold).Unix() {
			return fmt.Errorf("%w: the recovery request is dated too far back (its waiting period ended more than %v ago)",
				errNotAuthorised, RecoveryGrace-RecoveryMinHold)
		}
	}
	pending := v.PendingRecoveries(b.Owner, now.Unix(), int64(RecoveryGrace/time.Second),
		func(id consent.ID) bool { return !a.knownParty(v, b.Owner, id) })
	for _, p := range pending {
		if p.Requester == e.Author {
			return fmt.Errorf("%w: this key has a pending recovery request of the identity already", ledgersync.ErrRecoveryCap)
		}
	}
	if len(pending) >= MaxPendingRecoveries {
		return fmt.Errorf("%w: %d are pending, the most a peer keeps from new keys", ledgersync.ErrRecoveryCap, len(pending))
	}
	return nil
}

// knownParty reports whether id is owner, an unrevoked device of owner, or
// a guardian of owner's current set.
func (a *authoriser) knownParty(v *consent.View, owner, id consent.ID) bool {
	if actsFor(v, id, owner) {
		return true
	}
	set, ok := v.GuardianSet(owner)
	return ok && set.Guards(id)
}

func (a *authoriser) mayWrite(v *consent.View, r consent.ID, e *consent.Entry) bool {
	author := e.Author
	if author == a.self {
		return true
	}
	s, parent, sub := subject(v, author)
	var link *consent.LinkBody
	if e.Kind == consent.KindLink && e.Seq == 1 {
		// A sub-feed's link is the entry that says what it is about.
		b, err := e.DecodedBody()
		if err != nil {
			return false
		}
		link = b.(*consent.LinkBody)
		s, parent, sub = link.Subject, link.Parent, true
	}
	if e.Kind == consent.KindDevice && e.Seq == 1 {
		// A device feed's first entry names its owner.
		b, err := e.DecodedBody()
		if err != nil {
			return false
		}
		s = b.(*consent.DeviceBody).Owner
	}
	if !sub && !a.known[author] && e.Kind == consent.KindAccess && e.Seq > 1 && v.Head(author).Seq == 0 {
		// An access entry of a sub-feed whose link has not arrived yet
		// (gossip reorders): a fellow peer may hand it over, to wait for
		// the link, when it is about a served subject.
		if b, err := e.DecodedBody(); err == nil {
			if req, err := consent.DecodeRequest(b.(*consent.AccessBody).Request); err == nil {
				return a.Serves(v, req.Owner) && r != author && a.isPeerOf(v, r, req.Owner)
			}
		}
		return false
	}
	if !a.party(v, r, author, s, parent, sub) {
		return false
	}
	if sub {
		// Sub-feeds of the peers serving s (and of s itself) only, or
		// any stranger could log "accesses" about a served patient.
		return a.Serves(v, s) && (parent == s || a.isPeerOf(v, parent, s))
	}
	if a.known[author] || a.Serves(v, s) {
		return true
	}
	// A feed a served subject's entries name (grantee, role holder).
	for _, owner := range v.Grantors(author) {
		if a.Serves(v, owner) {
			return true
		}
	}
	// Public feeds (issuers', peers'), from their author or a known peer.
	from := r == author || a.known[r]
	switch b, _ := e.DecodedBody(); b := b.(type) {
	case *consent.BreakGlassBody:
		// Only a holder of a credential for a role the owner granted can
		// use one (consent.Decide), and the owner's entries name it
		// already (Grantors, above): a stranger's break-glass entries are
		// not kept, or any key could make this peer keep feeds of them
		// about a served patient without bound.
		return a.Serves(v, b.Owner) && v.Names(b.Owner, author)
	case *consent.RecoveryBody:
		return b.Op == consent.RecoveryStart && a.Serves(v, b.Owner) // a recovery of a served owner
	case *consent.EquivocationProof:
		return a.Serves(v, b.Author()) // a proof against a served subject
	case *consent.CredentialBody:
		return from // only an issuer's credentials count
	case *consent.IdentityBody:
		return from && (b.Role == "issuer" || b.Role == "peer")
	}
	return from && a.public(v, author)
}

// isPeerOf reports whether p is this peer, a known peer or a peer of
// subject s's serve entry.
func (a *authoriser) isPeerOf(v *consent.View, p, s consent.ID) bool {
	if p == a.self || a.known[p] {
		return true
	}
	for _, q := range v.ServingPeers(s) {
		if q == p {
			return true
		}
	}
	return false
}

// party reports whether r may hand this peer entries of author's feed,
// about subject s: the author, the subject, a sub-feed's parent, a known
// peer, a serving peer of s, or a party s's entries name.
func (a *authoriser) party(v *consent.View, r, author, s, parent consent.ID, sub bool) bool {
	if r == author || actsFor(v, r, s) || sub && r == parent || a.isPeerOf(v, r, s) {
		return true
	}
	return v.Names(s, r)
}
