package consent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"
)

// Sub-feeds. A peer logs its decisions about patient S in a feed of its
// own for S, a sub-feed, rather than in its home feed, so that S's
// serving peers replicate and audit exactly the accesses to S's records
// and nothing about other patients. This is how Secure Scuttlebutt's
// meta-feeds split one identity's writing into several feeds.
//
// The sub-feed's key is derived from the parent's: its Ed25519 seed is
// SHA-256(Sign(parent, "medwallet sub-feed v1\n" || S)). Ed25519
// signatures are deterministic, so the parent re-derives the same key
// after a restart (or a restore from its key), and nothing new needs a
// backup. A sub-feed is an ordinary author feed: chain, heads,
// equivocation and budgets apply to it as to any feed, per (parent, S).
//
// Its first entry (seq 1) is a link (KindLink) whose body carries the
// parent's signature over (sub-feed ID, S): anyone can check that the
// parent made the sub-feed for S. A link anywhere else links nothing.

// Contexts of the two signatures a sub-feed needs from its parent.
const (
	subFeedSeedContext = "medwallet sub-feed v1\n"
	subFeedLinkContext = "medwallet sub-feed link v1\n"
)

// LinkBody is the body of a link entry, the first entry of a sub-feed: it
// names the parent identity, the subject (the patient the sub-feed's
// entries are about), the sub-feed itself (the entry's author), and the
// parent's signature over "medwallet sub-feed link v1\n" || Feed || "\n"
// || Subject.
type LinkBody struct {
	Parent  ID     `cbor:"1,keyasint" json:"parent"`
	Subject ID     `cbor:"2,keyasint" json:"subject"`
	Feed    ID     `cbor:"3,keyasint" json:"feed"`
	Sig     []byte `cbor:"4,keyasint" json:"-"`
}

func linkMessage(feed, subject ID) []byte {
	return []byte(subFeedLinkContext + string(feed) + "\n" + string(subject))
}

// Validate checks the IDs and the parent's signature.
func (b *LinkBody) Validate() error {
	for _, id := range []ID{b.Parent, b.Subject, b.Feed} {
		if _, err := cachedPublicKey(id); err != nil {
			return malformed("link body: %v", err)
		}
	}
	if b.Parent == b.Feed {
		return malformed("link body: a feed is not its own parent")
	}
	if !verifySig(b.Parent, linkMessage(b.Feed, b.Subject), b.Sig) {
		return fmt.Errorf("link body: parent's signature: %w", ErrBadSignature)
	}
	return nil
}

// SubFeed signs the entries of the sub-feed of a parent identity about
// one subject. It is a Signer.
type SubFeed struct {
	*KeySigner
	link LinkBody
}

// NewSubFeed derives the sub-feed of parent about subject. It asks parent
// for two signatures, both deterministic.
func NewSubFeed(parent Signer, subject ID) (*SubFeed, error) {
	if _, err := cachedPublicKey(subject); err != nil {
		return nil, fmt.Errorf("sub-feed subject: %w", err)
	}
	sig, err := parent.Sign([]byte(subFeedSeedContext + string(subject)))
	if err != nil {
		return nil, fmt.Errorf("derive sub-feed key: %w", err)
	}
	seed := sha256.Sum256(sig)
	ks, err := NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		return nil, err
	}
	lsig, err := parent.Sign(linkMessage(ks.ID(), subject))
	if err != nil {
		return nil, fmt.Errorf("sign sub-feed link: %w", err)
	}
	return &SubFeed{KeySigner: ks, link: LinkBody{Parent: parent.ID(), Subject: subject, Feed: ks.ID(), Sig: lsig}}, nil
}

// Parent is the identity the sub-feed belongs to.
func (f *SubFeed) Parent() ID { return f.link.Parent }

// Subject is the identity the sub-feed's entries are about.
func (f *SubFeed) Subject() ID { return f.link.Subject }

// Link returns the body of the sub-feed's first entry.
func (f *SubFeed) Link() *LinkBody {
	l := f.link
	return &l
}

// EnsureLinked appends the sub-feed's link entry to l, dated t, if the
// sub-feed is still empty there, and returns it (nil if l held the
// sub-feed already). Callers serialise it with their own appends to the
// sub-feed.
func (f *SubFeed) EnsureLinked(l *Ledger, t time.Time) (*Entry, error) {
	var empty bool
	l.View(func(v *View) { empty = v.Head(f.ID()).Seq == 0 })
	if !empty {
		return nil, nil
	}
	e, err := l.Append(f, t, KindLink, f.Link())
	if err != nil {
		return nil, fmt.Errorf("link sub-feed: %w", err)
	}
	return e, nil
}

// SubFeedOf reports the parent and subject of a sub-feed the view holds
// the link of; ok is false for any other author (a home feed).
func (v *View) SubFeedOf(author ID) (parent, subject ID, ok bool) {
	b, ok := v.links[author]
	if !ok {
		return "", "", false
	}
	return b.Parent, b.Subject, true
}

// Decider is the identity that decides through author's feed: the parent
// of a sub-feed, or author itself.
func (v *View) Decider(author ID) ID {
	if p, _, ok := v.SubFeedOf(author); ok {
		return p
	}
	return author
}

// SubFeeds returns the sub-feeds the view holds about subject, by parent.
func (v *View) SubFeeds(subject ID) map[ID]ID {
	out := make(map[ID]ID)
	for feed, b := range v.links {
		if b.Subject == subject {
			out[b.Parent] = feed
		}
	}
	return out
}

// acceptLink records a link that opens its own feed.
func (v *View) acceptLink(e *Entry, b *LinkBody) {
	if e.Seq != 1 || b.Feed != e.Author {
		return
	}
	if v.links == nil {
		v.links = make(map[ID]*LinkBody)
	}
	v.links[e.Author] = b
}

// CheckAccessIn is CheckAccess for an entry of v: an access entry in a
// sub-feed must be about the sub-feed's subject, and c.Decider is asked
// about the sub-feed's parent.
func CheckAccessIn(v *View, e *Entry, c AccessCheck) (*AccessBody, *Request, error) {
	return checkAccessIn(v, e, c, nil)
}

// checkAccessIn is CheckAccessIn with what checkAccess may be given.
func checkAccessIn(v *View, e *Entry, c AccessCheck, pre *accessPre) (*AccessBody, *Request, error) {
	parent, subject, sub := v.SubFeedOf(e.Author)
	if sub && c.Decider != nil {
		d := c.Decider
		c.Decider = func(id ID) bool {
			if id == e.Author {
				id = parent
			}
			return d(id)
		}
	}
	ab, r, err := checkAccess(e, c, pre)
	if err == nil && sub && r.Owner != subject {
		return ab, r, &SuspiciousAccessError{Author: e.Author, Seq: e.Seq, Reason: SuspectDecider,
			Err: fmt.Errorf("a sub-feed about %s logs an access to another owner's record", subject.Short())}
	}
	return ab, r, err
}

// acceptServe records the author's latest serve entry.
func (v *View) acceptServe(e *Entry, b *ServeBody) {
	if v.serving == nil {
		v.serving = make(map[ID]*ServeBody)
	}
	v.serving[e.Author] = b
}

// ServingPeers returns the peers of subject's latest serve entry the view
// holds (nil if none).
func (v *View) ServingPeers(subject ID) []ID {
	if b, ok := v.serving[subject]; ok {
		return append([]ID(nil), b.Peers...)
	}
	return nil
}

// Names reports whether owner's entries name party: party is the grantee
// of one of owner's grants, or holds a credential (from any issuer) for a
// role ID one of owner's grants goes to. It is what lets a grantee read,
// and a peer serving owner keep, the party's feed and owner's.
func (v *View) Names(owner, party ID) bool {
	return slices.Contains(v.Grantors(party), owner)
}

// noteGrantor records that owner granted grantee something.
func (v *View) noteGrantor(owner, grantee ID) {
	if slices.Contains(v.grantors[grantee], owner) {
		return
	}
	if v.grantors == nil {
		v.grantors = make(map[ID][]ID)
	}
	v.grantors[grantee] = append(v.grantors[grantee], owner)
}

// Grantors returns the owners whose entries name party (see Names): the
// owners of grants to party, and of grants to a role ID party holds a
// credential for.
func (v *View) Grantors(party ID) []ID {
	out := append([]ID(nil), v.grantors[party]...)
	for _, c := range v.credsBySubject[party] {
		out = append(out, v.grantors[c.RoleID]...)
	}
	return out
}
