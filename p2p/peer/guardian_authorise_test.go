package peer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
)

// TestAuthoriseRecovery: this peer keeps a recovery start naming a patient
// it serves (S), not one naming a patient it does not serve (T); the
// requester's feed is read by the owner and the owner's guardians, not by
// strangers; a guardian's feed (its approvals) is kept because the owner
// names it, and read by the requester it approved, not by another.
func TestAuthoriseRecovery(t *testing.T) {
	w := newAuthWorld(t)
	for _, n := range []string{"N", "M", "U", "V"} { // new machines, guardians
		w.ids[n] = signer(t, n)
	}
	set := &consent.GuardianSetBody{Set: consent.HashBytes([]byte("set")), Threshold: 1, Blob: consent.HashBytes([]byte("blob")),
		Commitments: [][]byte{make([]byte, consent.CommitmentSize)}}
	set.Guardians = []consent.GuardianPiece{{Guardian: w.id("U"), Index: 1, Piece: []byte("age")}}
	w.add("S", consent.KindGuardianSet, set)

	startT := w.next("M", consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryStart, Owner: w.id("T"), Set: set.Set, Recipient: "age1m"})
	if err := w.a.MayWrite(pid(t, w.id("M")), startT); !errors.Is(err, errNotAuthorised) {
		t.Fatalf("a recovery of an owner this peer does not serve: %v", err)
	}
	start := w.next("N", consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryStart, Owner: w.id("S"), Set: set.Set, Recipient: "age1n"})
	if err := w.a.MayWrite(pid(t, w.id("N")), start); err != nil {
		t.Fatalf("a recovery of a served owner: %v", err)
	}
	w.add("N", consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryStart, Owner: w.id("S"), Set: set.Set, Recipient: "age1n"})
	approval := w.next("U", consent.KindRecoveryApproval, &consent.RecoveryApprovalBody{Request: start.Hash(), Set: set.Set, Piece: []byte("age")})
	if err := w.a.MayWrite(pid(t, w.id("U")), approval); err != nil {
		t.Fatalf("a guardian's approval: %v", err)
	}
	w.add("U", consent.KindRecoveryApproval, &consent.RecoveryApprovalBody{Request: start.Hash(), Set: set.Set, Piece: []byte("age")})
	for _, c := range []struct {
		remote, feed string
		want         bool
	}{
		{"S", "N", true}, {"U", "N", true}, {"V", "N", false}, {"G", "N", false}, {"M", "N", false},
		{"N", "U", true}, {"M", "U", false},
		{"N", "S", false}, // the new machine never reads the owner's feed
		{"U", "S", true},  // a guardian is a party the owner names
	} {
		if got := w.a.MayRead(pid(t, w.id(c.remote)), w.feed(c.feed)); got != c.want {
			t.Errorf("MayRead(%s, %s) = %v, want %v", c.remote, c.feed, got, c.want)
		}
	}
}

// TestRecoveryCap: strangers' recovery starts naming S are kept up to
// MaxPendingRecoveries pending ones, one per author; past the cap they are
// refused with ErrRecoveryCap (the code recovery-cap on a push). A start
// this peer holds passes again; the owner's known parties (its guardians,
// its devices, itself) are not counted nor capped; a start asking another
// guardian set, or backdated so far that it would be pending for less
// than RecoveryMinHold, by anyone but a fellow peer, is refused. A slot frees when the owner refuses a start, when one
// completes, and RecoveryGrace after a start's waiting period.
func TestRecoveryCap(t *testing.T) {
	w := newAuthWorld(t)
	w.ids["U"] = signer(t, "U")
	set := &consent.GuardianSetBody{Set: consent.HashBytes([]byte("set")), Threshold: 1, Blob: consent.HashBytes([]byte("blob")),
		Commitments: [][]byte{make([]byte, consent.CommitmentSize)}}
	set.Guardians = []consent.GuardianPiece{{Guardian: w.id("U"), Index: 1, Piece: []byte("age")}}
	w.add("S", consent.KindGuardianSet, set)
	now := w.now
	w.a.now = func() time.Time { return now }

	// start signs the next entry of n's feed: a start of S's recovery,
	// dated at, with a waiting period of delay and guardian set sid.
	start := func(n string, at time.Time, delay time.Duration, sid consent.Hash) *consent.Entry {
		t.Helper()
		if _, ok := w.ids[n]; !ok {
			w.ids[n] = signer(t, "stranger "+n)
		}
		var head consent.Head
		w.ledger.View(func(v *consent.View) { head = v.Head(w.id(n)) })
		e, err := consent.NewEntry(w.ids[n], head, at, consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryStart,
			Owner: w.id("S"), Set: sid, Recipient: "age1" + n, Delay: int64(delay / time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	const (
		ok = iota
		capped
		refused // not authorised, not the cap
	)
	try := func(what, remote string, e *consent.Entry, want int) {
		t.Helper()
		err := w.a.MayWrite(pid(t, w.id(remote)), e)
		got := ok
		switch {
		case errors.Is(err, ledgersync.ErrRecoveryCap):
			got = capped
		case errors.Is(err, errNotAuthorised):
			got = refused
		case err != nil:
			t.Fatalf("%s: %v", what, err)
		}
		if got != want {
			t.Fatalf("%s: %v, want %v", what, err, [...]string{"kept", "recovery-cap", "not-authorised"}[want])
		}
		if got == ok {
			if _, err := w.ledger.Ingest(e); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	hour := time.Hour
	var first []*consent.Entry
	for i := range MaxPendingRecoveries {
		n := fmt.Sprintf("A%d", i)
		e := start(n, now, hour, set.Set)
		try("stranger "+n, n, e, ok)
		first = append(first, e)
	}
	try("a stranger past the cap", "B", start("B", now, 0, set.Set), capped)
	try("a stranger past the cap, relayed by a known peer", "K", start("B", now, 0, set.Set), capped)
	try("a start held already, pushed again", "A0", first[0], ok)
	try("a second start by a stranger with one pending", "A1", start("A1", now, 0, set.Set), capped)
	try("the owner's guardian", "U", start("U", now, 0, set.Set), ok)
	try("the owner itself", "S", start("S", now, 0, set.Set), ok)
	try("a start asking another set", "C1", start("C1", now, 0, consent.HashBytes([]byte("old set"))), refused)
	try("a start whose waiting period ended 13 hours ago", "C2", start("C2", now.Add(-14*hour), hour, set.Set), refused)

	// The owner refuses one within its waiting period: a slot frees, for
	// one stranger.
	w.add("S", consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryRefuse, Request: first[0].Hash()})
	try("a stranger after the owner refused one", "B", start("B", now, 0, set.Set), ok)
	try("the next stranger", "B2", start("B2", now, 0, set.Set), capped)
	// A completed start frees one too.
	w.add("S", consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryComplete, Request: first[1].Hash()})
	try("a stranger after a recovery completed", "B2", start("B2", now, 0, set.Set), ok)
	try("the next stranger again", "B3", start("B3", now, 0, set.Set), capped)

	// B and B2 (no waiting period) lapse RecoveryGrace after their start;
	// A2 and A3 (an hour's) an hour later.
	now = w.now.Add(RecoveryGrace + time.Second)
	try("a stranger once two lapsed", "B3", start("B3", now, 0, set.Set), ok)
	try("one more", "B4", start("B4", now, 0, set.Set), ok)
	try("and past the cap again", "B5", start("B5", now, 0, set.Set), capped)
	// A start dated two hours back with an hour's waiting period (a new
	// machine whose clock is behind) still counts for 23 hours: kept.
	now = now.Add(hour + time.Second)
	try("a start two hours back, from the requester", "B5", start("B5", now.Add(-2*hour), hour, set.Set), ok)
	// A fellow peer hands over an older start (a peer catching up): it is
	// not held to RecoveryMinHold, only to the cap.
	old := start("B6", now.Add(-20*hour), 0, set.Set)
	try("an old start from the requester", "B6", old, refused)
	try("the same from a known peer", "K", old, ok)
}
