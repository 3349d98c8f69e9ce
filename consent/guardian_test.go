package consent

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// guardianKinds adds a guardian-set, recovery or recovery-approval entry
// to the random ledger (otherKinds, state_test.go).
func (l *randLedger) guardianKinds(o *KeySigner) {
	var recs []*RecoveryInfo
	if l.view.rec != nil {
		recs = l.view.AllRecoveries()
	}
	switch l.rng.IntN(4) {
	case 0:
		gs := []ID{pick(l, l.people).ID(), pick(l, l.people).ID()}
		slices.Sort(gs)
		gs = slices.Compact(gs)
		b := &GuardianSetBody{Set: HashBytes([]byte{byte(l.rng.IntN(256)), 1}), Threshold: uint64(len(gs)), Blob: HashBytes([]byte("blob"))}
		for i, g := range gs {
			b.Guardians = append(b.Guardians, GuardianPiece{Guardian: g, Index: uint64(i + 1), Piece: []byte("age piece")})
			b.Commitments = append(b.Commitments, make([]byte, CommitmentSize))
		}
		l.add(o, KindGuardianSet, b)
	case 1:
		set := HashBytes([]byte("set"))
		if s, ok := l.view.GuardianSet(o.ID()); ok {
			set = s.Set
		}
		l.add(pick(l, l.people), KindRecovery, &RecoveryBody{Op: RecoveryStart, Owner: o.ID(), Set: set,
			Recipient: "age1recipient", Delay: int64(l.rng.IntN(2) * 3600)})
	case 2:
		if len(recs) == 0 {
			return
		}
		r := pick(l, recs)
		l.add(l.signerOf(r.Owner), KindRecovery, &RecoveryBody{Op: pick(l, []string{RecoveryRefuse, RecoveryComplete}), Request: r.ID})
	case 3:
		if len(recs) == 0 {
			return
		}
		r := pick(l, recs)
		l.add(pick(l, l.people), KindRecoveryApproval, &RecoveryApprovalBody{Request: r.ID, Set: r.Set, Piece: []byte("age piece")})
	}
}

// sameRecoveryAnswers compares what two views say of guardians and
// recoveries (sameAnswers, state_test.go).
func sameRecoveryAnswers(t *testing.T, ids []ID, want, got *View) {
	t.Helper()
	if !reflect.DeepEqual(got.AllRecoveries(), want.AllRecoveries()) {
		t.Fatalf("recoveries differ")
	}
	for _, r := range want.AllRecoveries() {
		if !reflect.DeepEqual(got.RecoveryApprovals(r.ID), want.RecoveryApprovals(r.ID)) ||
			!reflect.DeepEqual(got.ApprovalsFor(r.ID), want.ApprovalsFor(r.ID)) {
			t.Fatalf("approvals of %s differ", r.ID)
		}
	}
	for _, a := range ids {
		gs, gok := got.GuardianSet(a)
		ws, wok := want.GuardianSet(a)
		if gok != wok || !reflect.DeepEqual(gs, ws) {
			t.Fatalf("guardian set of %s differs", a.Short())
		}
		if !reflect.DeepEqual(got.GuardedBy(a), want.GuardedBy(a)) {
			t.Fatalf("owners guarded by %s differ", a.Short())
		}
		for _, b := range ids {
			if got.RecoveryMayRead(a, b) != want.RecoveryMayRead(a, b) {
				t.Fatalf("RecoveryMayRead(%s, %s) differs", a.Short(), b.Short())
			}
		}
	}
}

func TestGuardianBodiesValidate(t *testing.T) {
	owner, g1, g2 := testSigner(t, "owner"), testSigner(t, "g1"), testSigner(t, "g2")
	gs := []ID{g1.ID(), g2.ID()}
	slices.Sort(gs)
	good := func() *GuardianSetBody {
		return &GuardianSetBody{Set: HashBytes([]byte("s")), Threshold: 2, Blob: HashBytes([]byte("b")),
			Guardians:   []GuardianPiece{{Guardian: gs[0], Index: 2, Piece: []byte("p")}, {Guardian: gs[1], Index: 1, Piece: []byte("p")}},
			Commitments: [][]byte{make([]byte, 32), make([]byte, 32)}}
	}
	cases := map[string]func(b *GuardianSetBody){
		"no set":             func(b *GuardianSetBody) { b.Set = Hash{} },
		"no blob":            func(b *GuardianSetBody) { b.Blob = Hash{} },
		"threshold 0":        func(b *GuardianSetBody) { b.Threshold = 0 },
		"threshold too high": func(b *GuardianSetBody) { b.Threshold = 3 },
		"unsorted":           func(b *GuardianSetBody) { b.Guardians[0], b.Guardians[1] = b.Guardians[1], b.Guardians[0] },
		"index twice":        func(b *GuardianSetBody) { b.Guardians[1].Index = 2 },
		"index 0":            func(b *GuardianSetBody) { b.Guardians[1].Index = 0 },
		"short commitment":   func(b *GuardianSetBody) { b.Commitments[0] = b.Commitments[0][:31] },
		"commitment count":   func(b *GuardianSetBody) { b.Commitments = b.Commitments[:1] },
		"empty piece":        func(b *GuardianSetBody) { b.Guardians[0].Piece = nil },
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range cases {
		b := good()
		f(b)
		if err := b.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
		// And on the wire: an entry carrying it does not decode.
		e, err := NewEntry(owner, Head{}, t0, KindGuardianSet, b)
		if err == nil {
			if _, err := DecodeEntry(e.Encode()); err == nil {
				t.Errorf("%s: an entry with the body decodes", name)
			}
		}
	}
	rb := []*RecoveryBody{
		{Op: "steal", Request: HashBytes(nil)},
		{Op: RecoveryStart, Owner: owner.ID(), Recipient: "age1x"},                            // no set
		{Op: RecoveryStart, Owner: owner.ID(), Set: HashBytes(nil), Recipient: "ssh-ed25519"}, // not age
		{Op: RecoveryStart, Owner: owner.ID(), Set: HashBytes(nil), Recipient: "age1x", Delay: MaxRecoveryDelay + 1},
		{Op: RecoveryRefuse},
		{Op: RecoveryComplete, Request: HashBytes(nil), Owner: owner.ID()},
	}
	for i, b := range rb {
		if err := b.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("recovery body %d: %v, want malformed", i, err)
		}
	}
	if err := (&RecoveryApprovalBody{Request: HashBytes(nil), Set: HashBytes(nil)}).Validate(); !errors.Is(err, ErrMalformed) {
		t.Errorf("an approval without a piece: %v", err)
	}
}

// TestRecoveryView: the view finds requests, counts only approvals by
// guardians of the owner's latest set, honours only the owner's refusal
// and only within the waiting period, forgets approvals of a set the owner
// replaced, and lets exactly the parties of a recovery read each other's
// feeds.
func TestRecoveryView(t *testing.T) {
	owner, g1, g2, g3, newMachine, stranger := testSigner(t, "owner"), testSigner(t, "g1"), testSigner(t, "g2"), testSigner(t, "g3"), testSigner(t, "new machine"), testSigner(t, "stranger")
	v := NewView()
	at := t0
	add := feedWriter(t, v, func() time.Time { at = at.Add(time.Minute); return at })
	set := func(id string, gs ...*KeySigner) *GuardianSetBody {
		b := &GuardianSetBody{Set: HashBytes([]byte(id)), Threshold: 2, Blob: HashBytes([]byte("blob"))}
		var ids []ID
		for _, g := range gs {
			ids = append(ids, g.ID())
		}
		slices.Sort(ids)
		for i, g := range ids {
			b.Guardians = append(b.Guardians, GuardianPiece{Guardian: g, Index: uint64(i + 1), Piece: []byte("p")})
		}
		b.Commitments = [][]byte{make([]byte, 32), make([]byte, 32)}
		return b
	}
	s1 := set("one", g1, g2)
	add(owner, KindGuardianSet, s1)
	if !v.Names(owner.ID(), g1.ID()) || v.Names(owner.ID(), g3.ID()) {
		t.Fatal("a guardian set does not name its guardians (or names others)")
	}
	start := add(newMachine, KindRecovery, &RecoveryBody{Op: RecoveryStart, Owner: owner.ID(), Set: s1.Set, Recipient: "age1new", Delay: 3600})
	req := start.Hash()
	approve := func(g *KeySigner, s Hash) {
		add(g, KindRecoveryApproval, &RecoveryApprovalBody{Request: req, Set: s, Piece: []byte("to new")})
	}
	approve(g1, s1.Set)
	approve(g1, s1.Set)       // twice: counts once
	approve(stranger, s1.Set) // not a guardian
	if got := len(v.RecoveryApprovals(req)); got != 1 {
		t.Fatalf("%d approvals count, want 1", got)
	}
	// Reads: the owner and its guardians read the requester's feed; the
	// requester reads the feeds of the guardians that approved it only.
	for _, c := range []struct {
		reader, author ID
		want           bool
	}{
		{owner.ID(), newMachine.ID(), true}, {g2.ID(), newMachine.ID(), true}, {stranger.ID(), newMachine.ID(), false},
		{newMachine.ID(), g1.ID(), true}, {newMachine.ID(), g2.ID(), false}, {newMachine.ID(), owner.ID(), false},
	} {
		if got := v.RecoveryMayRead(c.reader, c.author); got != c.want {
			t.Errorf("RecoveryMayRead(%s, %s) = %v", c.reader.Short(), c.author.Short(), got)
		}
	}
	// A refusal by someone else does not count; the owner's does.
	add(stranger, KindRecovery, &RecoveryBody{Op: RecoveryRefuse, Request: req})
	if r, _ := v.Recovery(req); r.Refused != 0 {
		t.Fatal("a stranger refused the recovery")
	}
	add(owner, KindRecovery, &RecoveryBody{Op: RecoveryRefuse, Request: req})
	if r, _ := v.Recovery(req); r.Refused == 0 || len(v.Recoveries(owner.ID())) != 1 {
		t.Fatal("the owner's refusal within the delay does not count")
	}
	// A refusal after the waiting period is too late.
	start2 := add(newMachine, KindRecovery, &RecoveryBody{Op: RecoveryStart, Owner: owner.ID(), Set: s1.Set, Recipient: "age1new", Delay: 60})
	at = at.Add(time.Hour)
	add(owner, KindRecovery, &RecoveryBody{Op: RecoveryRefuse, Request: start2.Hash()})
	if r, _ := v.Recovery(start2.Hash()); r.Refused != 0 {
		t.Fatal("a refusal after the waiting period counts")
	}
	// Rotation: approvals for the old set stop counting.
	s2 := set("two", g2, g3)
	add(owner, KindGuardianSet, s2)
	if got := len(v.RecoveryApprovals(req)); got != 0 {
		t.Fatalf("%d approvals of a replaced set count", got)
	}
	if got := v.GuardedBy(g1.ID()); len(got) != 0 {
		t.Fatalf("g1 still guards %v after rotation", got)
	}
	if got := v.GuardedBy(g3.ID()); !slices.Equal(got, []ID{owner.ID()}) {
		t.Fatalf("g3 guards %v", got)
	}
}

// TestPendingRecoveries: a start is pending while it asks the owner's
// current set, is neither refused nor completed, and is within its waiting
// period plus the grace; counts filters requesters.
func TestPendingRecoveries(t *testing.T) {
	owner, a, b, c := testSigner(t, "owner"), testSigner(t, "a"), testSigner(t, "b"), testSigner(t, "c")
	v := NewView()
	add := feedWriter(t, v, func() time.Time { return t0 })
	pending := func(now int64, counts func(ID) bool) []ID {
		var out []ID
		for _, r := range v.PendingRecoveries(owner.ID(), now, 100, counts) {
			out = append(out, r.Requester)
		}
		return out
	}
	start := func(s *KeySigner, set Hash, delay int64) *Entry {
		return add(s, KindRecovery, &RecoveryBody{Op: RecoveryStart, Owner: owner.ID(), Set: set, Recipient: "age1x", Delay: delay})
	}
	set := &GuardianSetBody{Set: HashBytes([]byte("set")), Threshold: 1, Blob: HashBytes([]byte("blob")),
		Guardians: []GuardianPiece{{Guardian: c.ID(), Index: 1, Piece: []byte("p")}}, Commitments: [][]byte{make([]byte, 32)}}
	now := t0.Unix()
	start(a, set.Set, 0)
	if got := pending(now, nil); len(got) != 0 {
		t.Fatalf("pending %v without a guardian set", got)
	}
	add(owner, KindGuardianSet, set)
	sa := start(a, set.Set, 50)
	sb := start(b, set.Set, 0)
	start(c, HashBytes([]byte("other")), 0)
	if got := pending(now, nil); !slices.Equal(got, []ID{a.ID(), a.ID(), b.ID()}) {
		t.Fatalf("pending %v, want a's two and b's", got)
	}
	if got := pending(now, func(id ID) bool { return id != a.ID() }); !slices.Equal(got, []ID{b.ID()}) {
		t.Fatalf("pending, a not counted: %v", got)
	}
	if got := pending(now+100, nil); !slices.Equal(got, []ID{a.ID()}) {
		t.Fatalf("pending at the grace's end %v, want a's with a waiting period", got)
	}
	add(owner, KindRecovery, &RecoveryBody{Op: RecoveryRefuse, Request: sa.Hash()})
	add(owner, KindRecovery, &RecoveryBody{Op: RecoveryComplete, Request: sb.Hash()})
	if got := pending(now, nil); !slices.Equal(got, []ID{a.ID()}) {
		t.Fatalf("pending after a refusal and a completion %v, want a's first", got)
	}
}

// feedWriter returns a function that signs an entry as s, after s's last
// one, at the time at gives, and ingests it into v.
func feedWriter(t *testing.T, v *View, at func() time.Time) func(s Signer, k Kind, body any) *Entry {
	heads := map[ID]Head{}
	return func(s Signer, k Kind, body any) *Entry {
		t.Helper()
		e, err := NewEntry(s, heads[s.ID()], at(), k, body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Ingest(e); err != nil {
			t.Fatal(err)
		}
		heads[s.ID()] = e.Head()
		return e
	}
}
