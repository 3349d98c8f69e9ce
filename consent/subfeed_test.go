package consent

import (
	"errors"
	"testing"
	"time"
)

// A sub-feed's key is a function of the parent's key and the subject:
// the same after a restart, different per subject and per parent.
func TestSubFeedDerivation(t *testing.T) {
	dave, alice, carol := testSigner(t, "dave"), testSigner(t, "alice"), testSigner(t, "carol")
	a1, err := NewSubFeed(dave, alice.ID())
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := NewSubFeed(testSigner(t, "dave"), alice.ID())
	c, _ := NewSubFeed(dave, carol.ID())
	o, _ := NewSubFeed(carol, alice.ID())
	if a1.ID() != a2.ID() {
		t.Fatal("the sub-feed of one parent about one subject changed between derivations")
	}
	if a1.ID() == c.ID() || a1.ID() == o.ID() || a1.ID() == dave.ID() {
		t.Fatal("sub-feeds of different subjects or parents share a key")
	}
	if a1.Parent() != dave.ID() || a1.Subject() != alice.ID() {
		t.Fatalf("parent %s subject %s", a1.Parent().Short(), a1.Subject().Short())
	}
	if err := a1.Link().Validate(); err != nil {
		t.Fatal(err)
	}
}

// A link must carry the parent's signature over this sub-feed and this
// subject; one copied to another feed or subject, or signed by another
// key, does not decode.
func TestSubFeedLinkForged(t *testing.T) {
	dave, alice, mallory := testSigner(t, "dave"), testSigner(t, "alice"), testSigner(t, "mallory")
	sf, _ := NewSubFeed(dave, alice.ID())
	ms, _ := NewSubFeed(mallory, alice.ID())
	for name, mut := range map[string]func(b *LinkBody){
		"other subject": func(b *LinkBody) { b.Subject = mallory.ID() },
		"other feed":    func(b *LinkBody) { b.Feed = ms.ID() },
		"other parent":  func(b *LinkBody) { b.Parent = mallory.ID() },
		"no signature":  func(b *LinkBody) { b.Sig = nil },
		"own parent":    func(b *LinkBody) { b.Parent = b.Feed },
	} {
		t.Run(name, func(t *testing.T) {
			b := sf.Link()
			mut(b)
			if _, err := NewEntry(sf, Head{}, t0, KindLink, b); !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("forged link: %v, want refused", err)
			}
		})
	}
}

// A view maps a sub-feed to its parent and subject only from a link at
// seq 1 of the sub-feed itself. Access entries in the sub-feed name the
// parent as the decider (log, accounting of disclosures), and one about
// another owner is suspicious.
func TestSubFeedView(t *testing.T) {
	w := newAuditWorld(t)
	sf, err := NewSubFeed(w.dave, w.alice.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := w.view.SubFeedOf(sf.ID()); ok {
		t.Fatal("a sub-feed known before its link")
	}
	w.add(sf, t0, KindLink, sf.Link())
	if p, s, ok := w.view.SubFeedOf(sf.ID()); !ok || p != w.dave.ID() || s != w.alice.ID() {
		t.Fatalf("SubFeedOf = %s %s %v", p, s, ok)
	}
	if got := w.view.SubFeeds(w.alice.ID()); len(got) != 1 || got[w.dave.ID()] != sf.ID() {
		t.Fatalf("SubFeeds = %v", got)
	}
	r := newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	d := Decide(w.view, r, t0)
	e := w.add(sf, t0, KindAccess, &AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason,
		Grant: d.Grant, OwnerHead: w.view.Head(w.alice.ID())})
	if w.view.Decider(e.Author) != w.dave.ID() || w.view.Decider(w.dave.ID()) != w.dave.ID() {
		t.Fatal("the decider of a sub-feed's entry is not its parent")
	}
	network := AccessCheck{Decider: func(id ID) bool { return id == w.dave.ID() }}
	if _, _, err := CheckAccessIn(w.view, e, network); err != nil {
		t.Fatalf("CheckAccessIn: %v", err)
	}
	if _, _, err := CheckAccess(e, network); err == nil {
		t.Fatal("the sub-feed itself passed as a known decider")
	}
	ds := DisclosuresWith(w.view, w.alice.ID(), time.Time{}, network)
	if len(ds) != 1 || ds[0].Decider != w.dave.ID() || ds[0].Entry != e.Hash() {
		t.Fatalf("disclosures = %+v, want dave's one", ds)
	}
	rep := AuditLedgerWith(w.entries, network)
	if !rep.OK() || rep.Accesses != 1 || rep.Suspicious != 0 {
		t.Fatalf("audit: ok=%v accesses=%d suspicious=%d findings=%s", rep.OK(), rep.Accesses, rep.Suspicious, kinds(rep))
	}

	// An access to carol's records in dave's sub-feed about alice.
	other := newRequest(t, w.bob, w.carol.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	bad := w.add(sf, t0, KindAccess, &AccessBody{Request: other.Encode(), Reason: ReasonNoGrant})
	var se *SuspiciousAccessError
	if _, _, err := CheckAccessIn(w.view, bad, network); !errors.As(err, &se) || se.Reason != SuspectDecider {
		t.Fatalf("CheckAccessIn = %v, want %s", err, SuspectDecider)
	}

	// A link that is not its feed's first entry links nothing.
	late, _ := NewSubFeed(w.carol, w.alice.ID())
	w.add(late, t0, KindIdentity, &IdentityBody{AgeRecipient: "age1example", Role: "peer"})
	w.add(late, t0, KindLink, late.Link())
	if _, _, ok := w.view.SubFeedOf(late.ID()); ok {
		t.Fatal("a link at seq 2 opened a sub-feed")
	}
}

// The latest serve entry of a feed names its serving peers; a malformed
// list is refused.
func TestServeEntry(t *testing.T) {
	w := newWorld(t)
	alice, p1, p2 := testSigner(t, "alice"), testSigner(t, "p1"), testSigner(t, "p2")
	sorted := func(a, b ID) []ID {
		if a > b {
			a, b = b, a
		}
		return []ID{a, b}
	}
	w.add(alice, t0, KindServe, &ServeBody{Peers: []ID{p1.ID()}})
	w.add(alice, t0, KindServe, &ServeBody{Peers: sorted(p1.ID(), p2.ID())})
	if got := w.view.ServingPeers(alice.ID()); len(got) != 2 {
		t.Fatalf("serving peers %v, want the latest two", got)
	}
	if got := w.view.ServingPeers(p1.ID()); got != nil {
		t.Fatalf("serving peers of a feed without a serve entry: %v", got)
	}
	s := sorted(p1.ID(), p2.ID())
	for name, b := range map[string]*ServeBody{
		"empty":     {},
		"unsorted":  {Peers: []ID{s[1], s[0]}},
		"twice":     {Peers: []ID{s[0], s[0]}},
		"not an ID": {Peers: []ID{"peer"}},
	} {
		if _, err := NewEntry(alice, Head{}, t0, KindServe, b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
}
