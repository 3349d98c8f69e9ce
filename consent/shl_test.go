package consent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testLinkID = "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q"

func TestShlBodyValidate(t *testing.T) {
	ok := func() ShlBody {
		return ShlBody{Link: testLinkID, Records: []string{"a", "b"}, Files: []uint64{10, 20}, Flags: "LP", Expires: t0.Unix(), Attempts: 5}
	}
	b := ok()
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*ShlBody){
		"bad link":         func(b *ShlBody) { b.Link = "abc" },
		"no records":       func(b *ShlBody) { b.Records, b.Files = nil, nil },
		"unsorted":         func(b *ShlBody) { b.Records = []string{"b", "a"} },
		"duplicate":        func(b *ShlBody) { b.Records = []string{"a", "a"} },
		"bad record":       func(b *ShlBody) { b.Records = []string{"a", "b c"} },
		"sizes":            func(b *ShlBody) { b.Files = []uint64{1} },
		"empty file":       func(b *ShlBody) { b.Files = []uint64{0, 1} },
		"flag U":           func(b *ShlBody) { b.Flags = "LU" },
		"flag order":       func(b *ShlBody) { b.Flags = "PL" },
		"no attempts":      func(b *ShlBody) { b.Attempts = 0 },
		"attempts no P":    func(b *ShlBody) { b.Flags = "L" },
		"too many tries":   func(b *ShlBody) { b.Attempts = MaxShlAttempts + 1 },
		"negative expires": func(b *ShlBody) { b.Expires = -1 },
	} {
		b := ok()
		mod(&b)
		if err := b.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDecideShl(t *testing.T) {
	w := newWorld(t)
	alice, mallory, peer := testSigner(t, "alice"), testSigner(t, "mallory"), testSigner(t, "peer")
	open := func(s Signer, b ShlBody) Hash {
		return w.add(s, t0.Add(-time.Hour), KindShl, &b).Hash()
	}
	plain := open(alice, ShlBody{Link: testLinkID, Records: []string{"r1"}, Files: []uint64{100}})
	pass := open(alice, ShlBody{Link: testLinkID, Records: []string{"r1"}, Files: []uint64{100}, Flags: "P", Attempts: 3, Expires: t0.Add(time.Hour).Unix()})
	revoked := open(alice, ShlBody{Link: testLinkID, Records: []string{"r1"}, Files: []uint64{100}, Flags: "L"})
	w.add(alice, t0.Add(-time.Hour), KindRevoke, &RevokeBody{Grant: revoked})
	// A revoke by someone else closes nothing.
	w.add(mallory, t0.Add(-time.Hour), KindRevoke, &RevokeBody{Grant: plain})
	theirs := open(mallory, ShlBody{Link: testLinkID, Records: []string{"r1"}, Files: []uint64{100}})

	cases := []struct {
		name     string
		link     Hash
		now      time.Time
		ok       bool
		failures uint32
		want     ShlDecision
	}{
		{"plain", plain, t0, false, 0, ShlDecision{Allow: true, Reason: ReasonGranted}},
		{"unknown", Hash{1}, t0, true, 0, ShlDecision{Reason: ReasonNoLink}},
		{"another owner's", theirs, t0, true, 0, ShlDecision{Reason: ReasonNoLink}},
		{"revoked", revoked, t0, true, 0, ShlDecision{Reason: ReasonRevoked}},
		{"passcode", pass, t0, true, 1, ShlDecision{Allow: true, Reason: ReasonGranted, Failures: 1, Left: 2}},
		{"wrong passcode", pass, t0, false, 1, ShlDecision{Reason: ReasonWrongPasscode, Failures: 2, Left: 1}},
		{"last wrong passcode", pass, t0, false, 2, ShlDecision{Reason: ReasonWrongPasscode, Failures: 3, Left: 0}},
		{"locked", pass, t0, true, 3, ShlDecision{Reason: ReasonLocked, Failures: 3}},
		{"expired", pass, t0.Add(time.Hour), true, 0, ShlDecision{Reason: ReasonExpired}},
	}
	for _, c := range cases {
		if got := DecideShl(w.view, c.link, alice.ID(), c.now, c.ok, c.failures); got != c.want {
			t.Errorf("%s: DecideShl = %+v, want %+v", c.name, got, c.want)
		}
	}
	if l, ok := w.view.ShlLink(pass); !ok || l.Author != alice.ID() || l.Attempts != 3 {
		t.Fatalf("ShlLink = %+v, %v", l, ok)
	}
	if n := len(ShlLinks(w.view, alice.ID())); n != 3 {
		t.Fatalf("ShlLinks: %d", n)
	}

	// The peer logs decisions in its sub-feed about alice; ShlAccesses
	// lists them for alice and for no one else.
	sub, err := NewSubFeed(peer, alice.ID())
	if err != nil {
		t.Fatal(err)
	}
	w.add(sub, t0, KindLink, sub.Link())
	body := ShlAccessBody{Owner: alice.ID(), Link: pass, Recipient: []byte("age ciphertext"), Reason: ReasonWrongPasscode, OwnerHead: w.view.Head(alice.ID()), Failures: 2}
	w.add(sub, t0, KindShlAccess, &body)
	body.Allow, body.Reason = true, ReasonGranted
	w.add(sub, t0.Add(time.Second), KindShlAccess, &body)
	got := ShlAccesses(w.view, alice.ID(), time.Time{})
	if len(got) != 2 || got[0].Reason != ReasonWrongPasscode || !got[1].Allow || got[1].Decider != peer.ID() {
		t.Fatalf("ShlAccesses = %+v", got)
	}
	if n := len(ShlAccesses(w.view, mallory.ID(), time.Time{})); n != 0 {
		t.Fatalf("ShlAccesses(mallory) = %d", n)
	}
}

func TestShlAccessBodyValidate(t *testing.T) {
	alice := testSigner(t, "alice")
	ok := ShlAccessBody{Owner: alice.ID(), Link: Hash{1}, Recipient: []byte("x"), Reason: ReasonGranted, Allow: true}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*ShlAccessBody){
		"owner":        func(b *ShlAccessBody) { b.Owner = "nobody" },
		"link":         func(b *ShlAccessBody) { b.Link = Hash{} },
		"no recipient": func(b *ShlAccessBody) { b.Recipient = nil },
		"big recipient": func(b *ShlAccessBody) {
			b.Recipient = []byte(strings.Repeat("x", MaxShlRecipient+1))
		},
		"reason":         func(b *ShlAccessBody) { b.Reason = ReasonScope },
		"allow disagree": func(b *ShlAccessBody) { b.Reason = ReasonLocked },
	} {
		b := ok
		mod(&b)
		if err := b.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// shlKinds adds to a rich ledger (state_test.go) a link opened by an
// owner, now and then revoked, and a peer's decision on it.
func (l *randLedger) shlKinds() {
	o := pick(l, l.owners)
	b := ShlBody{Link: testLinkID, Records: []string{pick(l, []string{"rec-1", "rec-2"})}, Files: []uint64{uint64(1 + l.rng.IntN(1000))}}
	if l.rng.IntN(2) == 0 {
		b.Flags, b.Attempts = "LP", uint32(1+l.rng.IntN(5))
	}
	link := l.add(o, KindShl, &b).Hash()
	if l.rng.IntN(3) == 0 {
		l.add(o, KindRevoke, &RevokeBody{Grant: link})
	}
	sf, err := NewSubFeed(l.peer, o.ID())
	if err != nil {
		l.tb.Fatal(err)
	}
	if l.head(sf.ID()).Seq == 0 {
		l.add(sf, KindLink, sf.Link())
	}
	d := DecideShl(l.view, link, o.ID(), l.at, l.rng.IntN(2) == 0, 0)
	l.add(sf, KindShlAccess, &ShlAccessBody{Owner: o.ID(), Link: link, Recipient: []byte("ct"), Allow: d.Allow,
		Reason: d.Reason, OwnerHead: l.head(o.ID()), Failures: d.Failures})
}

// The audit re-checks every allowed link request against the ledger as of
// the owner's head it names.
func TestAuditShl(t *testing.T) {
	w := newWorld(t)
	alice, peer := testSigner(t, "alice"), testSigner(t, "peer")
	w.add(alice, t0.Add(-2*time.Hour), KindIdentity, &IdentityBody{AgeRecipient: "age1x", Role: "patient"})
	link := w.add(alice, t0.Add(-2*time.Hour), KindShl, &ShlBody{Link: testLinkID, Records: []string{"r1"}, Files: []uint64{9},
		Flags: "P", Attempts: 2, Expires: t0.Add(time.Hour).Unix()}).Hash()
	before := w.view.Head(alice.ID())
	w.add(alice, t0.Add(-time.Hour), KindRevoke, &RevokeBody{Grant: link})
	after := w.view.Head(alice.ID())
	sub, err := NewSubFeed(peer, alice.ID())
	if err != nil {
		t.Fatal(err)
	}
	w.add(sub, t0, KindLink, sub.Link())
	log := func(at time.Time, allow bool, head Head, failures uint32) {
		r := ReasonGranted
		if !allow {
			r = ReasonRevoked
		}
		w.add(sub, at, KindShlAccess, &ShlAccessBody{Owner: alice.ID(), Link: link, Recipient: []byte("ct"), Allow: allow, Reason: r,
			OwnerHead: head, Failures: failures})
	}
	log(t0, true, before, 0)                      // fine: the decider did not hold the revocation
	log(t0, false, after, 0)                      // a denial: nothing to check
	log(t0, true, after, 0)                       // violation: revoked as of its head
	log(t0.Add(time.Hour), true, before, 0)       // violation: expired
	log(t0.Add(time.Hour), true, before, 2)       // violation: expired, and locked
	log(t0.Add(time.Hour), true, Head{Seq: 2}, 0) // violation: a head not in the feed

	rep := AuditLedger(w.entries)
	var got []string
	for _, f := range rep.Findings {
		if f.Kind == FindingViolation {
			got = append(got, f.Detail)
		}
	}
	want := []string{
		"link request allowed after the owner's revocation of the link, which the decider held",
		"link request allowed after the link expired",
		"link request allowed after the link expired",
		"link request allowed after the link's last allowed wrong passcode",
		"link request allowed naming an owner's feed head that is not in the owner's feed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
