package consent

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// randLedger is a random ledger for TestDecideMatchesReference: owners
// grant and revoke (to people, to roles, emergency grants, all records,
// validity windows), issuers credential and revoke, clinicians break the
// glass, a peer logs accesses (with heads of earlier positions) and
// equivocation proofs, and some authors equivocate.
type randLedger struct {
	tb       testing.TB
	rng      *rand.Rand
	at       time.Time
	owners   []*KeySigner
	people   []*KeySigner // requesters
	issuers  []*KeySigner
	roleIDs  map[ID][]ID // issuer -> its role IDs
	peer     *KeySigner
	view     *View
	ref      *refView
	feeds    refFeeds
	entries  []*Entry // accepted entries, in the order made
	extra    []*Entry // entries conflicting with accepted ones
	grants   map[ID][]Hash
	creds    map[ID][]Hash
	bgs      []Hash
	emGrants []Hash

	// Repairs (repair.go) draw from a random stream of their own, so that
	// they leave the rest of the generated ledgers as they were.
	rrng     *rand.Rand
	repairs  map[ID][]Hash       // owner -> its repair grants
	requests []*Request          // requests logged in access entries
	devices  map[ID][]*KeySigner // owner -> the devices it enrolled
	ndev     int
}

var randRoles = []string{"physician", "emergency-physician"}

var randScopes = []string{"patient/*.rs", "patient/Observation.rs", "patient/Observation.rs?category=laboratory", "patient/Condition.r"}

var randPurposes = []string{"TREAT", "ETREAT", "HPAYMT", "BTG"}

func newRandLedger(tb testing.TB, seed uint64) *randLedger {
	l := &randLedger{tb: tb, rng: rand.New(rand.NewPCG(seed, 12)), at: t0.Add(-48 * time.Hour),
		roleIDs: map[ID][]ID{}, view: NewView(), ref: newRefView(), feeds: refFeeds{},
		grants: map[ID][]Hash{}, creds: map[ID][]Hash{}, devices: map[ID][]*KeySigner{},
		rrng: rand.New(rand.NewPCG(seed, 13)), repairs: map[ID][]Hash{}}
	for _, n := range []string{"alice", "carol"} {
		l.owners = append(l.owners, testSigner(tb, n))
	}
	for _, n := range []string{"bob", "erin", "frank"} {
		l.people = append(l.people, testSigner(tb, n))
	}
	for _, n := range []string{"mercy", "iris"} {
		s := testSigner(tb, n)
		l.issuers = append(l.issuers, s)
		for _, r := range randRoles {
			l.roleIDs[s.ID()] = append(l.roleIDs[s.ID()], testSigner(tb, n+" role "+r).ID())
		}
	}
	l.peer = testSigner(tb, "dave")
	return l
}

func pick[T any](l *randLedger, xs []T) T { return xs[l.rng.IntN(len(xs))] }

func (l *randLedger) head(id ID) Head {
	f := l.feeds[id]
	if len(f) == 0 {
		return Head{}
	}
	x := f[len(f)-1]
	return Head{Seq: x.e.Seq, Hash: x.h, Time: x.e.Time}
}

// randHead returns the head of a random prefix of id's feed (often the
// whole feed).
func (l *randLedger) randHead(id ID) Head {
	f := l.feeds[id]
	if len(f) == 0 || l.rng.IntN(3) > 0 {
		return l.head(id)
	}
	n := l.rng.IntN(len(f) + 1)
	if n == 0 {
		return Head{}
	}
	return Head{Seq: f[n-1].e.Seq, Hash: f[n-1].h}
}

func (l *randLedger) add(s Signer, kind Kind, body any) *Entry {
	l.tb.Helper()
	l.at = l.at.Add(time.Duration(l.rng.IntN(600)) * time.Second)
	e, err := NewEntry(s, l.head(s.ID()), l.at, kind, body)
	if err != nil {
		l.tb.Fatal(err)
	}
	h := e.Hash()
	if _, err := l.view.Ingest(e); err != nil {
		l.tb.Fatal(err)
	}
	l.ref.accept(e)
	l.feeds[e.Author] = append(l.feeds[e.Author], refEntry{e, h})
	l.entries = append(l.entries, e)
	return e
}

func (l *randLedger) window() (nb, exp int64) {
	nb = l.at.Add(time.Duration(l.rng.IntN(72)-36) * time.Hour).Unix()
	if nb <= 0 {
		nb = 1
	}
	if l.rng.IntN(2) == 0 {
		exp = nb + int64(l.rng.IntN(72*3600)) + 1
	}
	return nb, exp
}

func (l *randLedger) grant() {
	o := pick(l, l.owners)
	g := Grant{Scopes: []string{pick(l, randScopes)}, Purpose: pick(l, randPurposes[:3])}
	g.NotBefore, g.Expires = l.window()
	switch l.rng.IntN(4) {
	case 0:
		g.All = true
	case 1:
		g.Records = []string{"rec-1", "rec-2"}
	default:
		g.Records = []string{pick(l, []string{"rec-1", "rec-2"})}
	}
	if l.rng.IntN(2) == 0 {
		g.Grantee = pick(l, l.people).ID()
	} else {
		iss := pick(l, l.issuers).ID()
		i := l.rng.IntN(len(randRoles))
		g.Issuer, g.Role, g.Grantee = iss, randRoles[i], l.roleIDs[iss][i]
		if l.rng.IntN(4) == 0 {
			g.Grantee = pick(l, l.roleIDs[iss]) // a role ID that does not match the role
		}
		if l.rng.IntN(2) == 0 {
			g.Purpose, g.TimeBox = pick(l, []string{"BTG", "ETREAT"}), int64(1+l.rng.IntN(12*3600))
		}
	}
	h := l.add(l.orDevice(o), KindGrant, &g).Hash()
	l.grants[o.ID()] = append(l.grants[o.ID()], h)
	if g.IsEmergency() {
		l.emGrants = append(l.emGrants, h)
	}
}

func (l *randLedger) revoke() {
	o := pick(l, l.owners)
	gs := l.grants[o.ID()]
	if len(gs) == 0 {
		return
	}
	by := o
	if l.rng.IntN(6) == 0 {
		by = pick(l, l.owners) // perhaps not the grant's author
	}
	l.add(l.orDevice(by), KindRevoke, &RevokeBody{Grant: pick(l, gs)})
}

func (l *randLedger) credential() {
	iss := pick(l, l.issuers)
	i := l.rng.IntN(len(randRoles))
	c := CredentialBody{Subject: pick(l, l.people).ID(), Role: randRoles[i], RoleID: l.roleIDs[iss.ID()][i],
		Details: []byte("ciphertext"), RoleRecipient: "age1role"}
	c.NotBefore, c.Expires = l.window()
	l.creds[iss.ID()] = append(l.creds[iss.ID()], l.add(iss, KindCredential, &c).Hash())
}

func (l *randLedger) revokeCredential() {
	iss := pick(l, l.issuers)
	if cs := l.creds[iss.ID()]; len(cs) > 0 {
		l.add(iss, KindRevoke, &RevokeBody{Grant: pick(l, cs)})
	}
}

func (l *randLedger) breakGlass() {
	if len(l.emGrants) == 0 {
		return
	}
	p := pick(l, l.people)
	g := pick(l, l.emGrants)
	owner := pick(l, l.owners).ID()
	if gi, ok := l.view.Grant(g); ok && l.rng.IntN(4) > 0 {
		owner = gi.Author
	}
	l.bgs = append(l.bgs, l.add(p, KindBreakGlass, &BreakGlassBody{Owner: owner, Grant: g, Reason: []byte("ciphertext")}).Hash())
}

// request signs a random request at about time at.
func (l *randLedger) request(at time.Time) *Request {
	p := pick(l, append(slices.Clone(l.people), l.owners[0]))
	if l.rng.IntN(6) == 0 {
		p = l.orDevice(pick(l, l.owners)) // an owner's device
	}
	r := Request{Owner: pick(l, l.owners).ID(), Record: pick(l, []string{"rec-1", "rec-2", "rec-3"}),
		Scope: pick(l, append(slices.Clone(randScopes), "patient/Nope.rs")), Purpose: pick(l, append(slices.Clone(randPurposes), "NOPE")),
		Time: at.Add(time.Duration(l.rng.IntN(400)-200) * time.Second).Unix(), Nonce: []byte(fmt.Sprintf("nonce-%020d", l.rng.Uint64()))}
	if len(l.bgs) > 0 && l.rng.IntN(2) == 0 {
		r.BreakGlass = pick(l, l.bgs)
		if b, ok := l.view.BreakGlass(r.BreakGlass); ok && l.rng.IntN(4) > 0 {
			// Mostly a request that fits the break-glass entry it names.
			p, r.Owner, r.Purpose = l.signerOf(b.Author), b.Owner, PurposeEmergency
		}
	}
	if len(l.requests) > 0 && l.rng.IntN(10) == 0 {
		old := pick(l, l.requests)
		p, r.Nonce = l.signerOf(old.Requester), old.Nonce
	}
	if l.rrng.IntN(8) == 0 {
		r.Purpose, r.Scope = PurposeRepair, RepairScope
		if l.rrng.IntN(6) == 0 {
			r.Scope = "patient/*.rs"
		}
	}
	sr, err := SignRequest(p, r)
	if err != nil {
		l.tb.Fatal(err)
	}
	if l.rng.IntN(20) == 0 {
		sr.Record = "rec-tampered"
	}
	return sr
}

func (l *randLedger) signerOf(id ID) *KeySigner {
	all := append(append(slices.Clone(l.people), l.owners...), l.issuers...)
	for _, ds := range l.devices {
		all = append(all, ds...)
	}
	for _, s := range all {
		if s.ID() == id {
			return s
		}
	}
	l.tb.Fatalf("no signer %s", id)
	return nil
}

// access logs a decision on a random request, naming heads of random
// prefixes of the feeds involved.
func (l *randLedger) access() {
	r := l.request(l.at)
	d := Decide(l.view, r, l.at)
	body := AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant, OwnerHead: l.randHead(r.Owner),
		Issuer: d.Issuer, Credential: d.Credential, Until: d.Until}
	if !r.BreakGlass.IsZero() || l.rng.IntN(4) == 0 {
		h := l.randHead(r.Requester)
		body.RequesterHead = &h
	}
	if d.Issuer != "" || l.rng.IntN(4) == 0 {
		if body.Issuer == "" {
			body.Issuer = pick(l, l.issuers).ID()
		}
		h := l.randHead(body.Issuer)
		body.IssuerHead = &h
	}
	for _, dev := range l.devices[r.Owner] {
		if h := l.randHead(dev.ID()); h.Seq > 0 {
			body.DeviceHeads = append(body.DeviceHeads, DeviceHead{Device: dev.ID(), Head: h})
		}
	}
	slices.SortFunc(body.DeviceHeads, func(a, b DeviceHead) int { return strings.Compare(string(a.Device), string(b.Device)) })
	decider := l.peer
	if l.rng.IntN(5) == 0 {
		decider = l.signerOf(r.Owner) // the owner's own box decides
		body.OwnerHead = Head{}
	}
	l.add(decider, KindAccess, &body)
	l.requests = append(l.requests, r)
}

// equivocate makes an issuer or a person sign a second entry at its head's
// seq; the view is handed it (and so knows), and sometimes the peer logs
// the proof.
func (l *randLedger) equivocate() {
	s := pick(l, append(slices.Clone(l.people), l.issuers...))
	if l.rng.IntN(4) == 0 {
		s = l.orDevice(pick(l, l.owners))
	}
	f := l.feeds[s.ID()]
	if len(f) == 0 {
		return
	}
	last := f[len(f)-1].e
	prev := Head{}
	if len(f) > 1 {
		p := f[len(f)-2]
		prev = Head{Seq: p.e.Seq, Hash: p.h, Time: p.e.Time}
	}
	e, err := NewEntry(s, prev, TimeOf(last.Time), KindAnchor, &AnchorBody{Record: "fork", Manifest: HashBytes([]byte(fmt.Sprint(l.rng.Uint64())))})
	if err != nil {
		l.tb.Fatal(err)
	}
	if l.rng.IntN(2) == 0 {
		p, err := NewEquivocationProof(last, e)
		if err != nil {
			l.tb.Fatal(err)
		}
		l.add(l.peer, KindEquivocation, p)
		return
	}
	l.extra = append(l.extra, e)
	l.view.Ingest(e) // an equivocation error, recorded
	l.ref.conflict(e)
}

func (l *randLedger) step() {
	switch n := l.rng.IntN(100); {
	case n < 25:
		l.grant()
	case n < 37:
		l.revoke()
	case n < 47:
		l.credential()
	case n < 52:
		l.revokeCredential()
	case n < 60:
		l.breakGlass()
	case n < 64:
		l.device()
	case n < 98:
		l.access()
	default:
		l.equivocate()
	}
	if l.rrng.IntN(10) == 0 {
		l.repair()
	}
}

// repair makes an owner grant a person the repair of some records, or
// revoke one of its repair grants (sometimes another owner revokes it).
func (l *randLedger) repair() {
	rp := func(n int) int { return l.rrng.IntN(n) }
	o := l.owners[rp(len(l.owners))]
	add := func(s Signer, kind Kind, body any) *Entry {
		l.at = l.at.Add(time.Duration(rp(600)) * time.Second)
		e, err := NewEntry(s, l.head(s.ID()), l.at, kind, body)
		if err != nil {
			l.tb.Fatal(err)
		}
		if _, err := l.view.Ingest(e); err != nil {
			l.tb.Fatal(err)
		}
		l.ref.accept(e)
		l.feeds[e.Author] = append(l.feeds[e.Author], refEntry{e, e.Hash()})
		l.entries = append(l.entries, e)
		return e
	}
	if gs := l.repairs[o.ID()]; len(gs) > 0 && rp(3) == 0 {
		by := o
		if rp(4) == 0 {
			by = l.owners[rp(len(l.owners))]
		}
		add(by, KindRepairRevoke, &RepairRevokeBody{Grant: gs[rp(len(gs))]})
		return
	}
	b := RepairGrantBody{Repairer: l.people[rp(len(l.people))].ID()}
	if rp(3) == 0 {
		b.All = true
	} else {
		b.Records = []string{[]string{"rec-1", "rec-2"}[rp(2)]}
	}
	l.repairs[o.ID()] = append(l.repairs[o.ID()], add(o, KindRepairGrant, &b).Hash())
}

// orDevice returns o or, often, one of the devices o enrolled.
func (l *randLedger) orDevice(o *KeySigner) *KeySigner {
	if ds := l.devices[o.ID()]; len(ds) > 0 && l.rng.IntN(2) == 0 {
		return pick(l, ds)
	}
	return o
}

// device enrols a device for an owner (at most two each), or has an owner
// revoke one of its devices (or another owner's) at a cut around its head.
func (l *randLedger) device() {
	o := pick(l, l.owners)
	ds := l.devices[o.ID()]
	if len(ds) < 2 && l.rng.IntN(2) == 0 {
		l.ndev++
		dev := testSigner(l.tb, fmt.Sprint("device ", l.ndev))
		b, err := NewDeviceBody(o, dev.ID(), testDeviceAge, []byte("label"))
		if err != nil {
			l.tb.Fatal(err)
		}
		l.add(dev, KindDevice, b)
		l.devices[o.ID()] = append(ds, dev)
		return
	}
	var all []*KeySigner
	for _, ds := range l.devices {
		all = append(all, ds...)
	}
	if len(all) == 0 {
		return
	}
	dev := pick(l, all)
	cut := l.head(dev.ID()).Seq
	if cut > 0 && l.rng.IntN(2) == 0 {
		cut -= uint64(l.rng.IntN(int(cut)))
	}
	l.add(o, KindDeviceRevoke, &DeviceRevokeBody{Device: dev.ID(), Cut: cut})
}

// TestDecideMatchesReference checks the indexed policy against the
// reference (decideRef): on random ledgers, for random requests at random
// times, and as of every access entry the way the audit re-runs it.
func TestDecideMatchesReference(t *testing.T) {
	seeds, steps := 30, 150
	if testing.Short() {
		seeds = 15
	}
	reached := map[Reason]int{}
	for seed := range uint64(seeds) {
		l := newRandLedger(t, seed)
		for range steps {
			l.step()
			for range 3 {
				now := l.at.Add(time.Duration(l.rng.IntN(600)-300) * time.Second)
				if l.rng.IntN(3) == 0 {
					now = l.at.Add(time.Duration(l.rng.IntN(48*3600)-24*3600) * time.Second)
				}
				r := l.request(now)
				// Decide and decideRef both start with VerifyRequest:
				// check it once, and compare the policies behind it.
				got, want := deny(ReasonBadSignature), deny(ReasonBadSignature)
				if VerifyRequest(r) == nil {
					got, want = decide(l.view, r, now), decideRefPolicy(l.ref, r, now)
				}
				reached[want.Reason]++
				if got != want {
					t.Fatalf("seed %d: Decide = %+v, reference %+v (request %+v)", seed, got, want, r)
				}
			}
		}
		checkAsOf(t, l, reached)
	}
	for r := range reasonSet {
		if reached[r] == 0 {
			t.Errorf("reason %s never reached", r)
		}
	}
	t.Logf("reasons reached: %v", reached)
}

// checkAsOf compares the audit's decision as of each access entry with
// the reference's.
func checkAsOf(t *testing.T, l *randLedger, reached map[Reason]int) {
	t.Helper()
	x := newAuditIndex(l.view)
	type ref struct {
		d   Decision
		err error
	}
	want := map[int]ref{}
	var jobs []asOfJob
	for i, e := range l.entries {
		if e.Kind != KindAccess {
			continue
		}
		b, err := e.DecodedBody()
		if err != nil {
			t.Fatal(err)
		}
		ab := b.(*AccessBody)
		req, err := DecodeRequest(ab.Request)
		if err != nil {
			t.Fatal(err)
		}
		d, err := refDecideAsOf(l.feeds, e, req)
		want[i] = ref{d, err}
		reached[d.Reason]++
		lim, lerr := accessLimits(l.view, e, ab, req)
		if (lerr == nil) != (err == nil) || lerr != nil && lerr.Error() != err.Error() {
			t.Fatalf("entry %d: heads: %v, reference %v", i, lerr, err)
		}
		if i%7 == 0 {
			// The exported, unindexed way.
			got, gerr := DecideAsOf(l.view, e, req)
			if got != d || (gerr == nil) != (err == nil) {
				t.Fatalf("entry %d: DecideAsOf = %+v, %v; reference %+v, %v", i, got, gerr, d, err)
			}
		}
		if lerr != nil || VerifyRequest(req) != nil {
			continue
		}
		jobs = append(jobs, asOfJob{i: i, e: e, ab: ab, req: req, owner: req.Owner, at: lim.of(req.Owner), lim: lim})
	}
	n := 0
	x.decideJobs(jobs, func(j *asOfJob, d Decision) {
		n++
		if w := want[j.i].d; d != w {
			t.Fatalf("access entry %d (%s#%d): as of its heads %+v, reference %+v", j.i, j.e.Author.Short(), j.e.Seq, d, w)
		}
	})
	if n != len(jobs) {
		t.Fatalf("%d of %d jobs decided", n, len(jobs))
	}
}
