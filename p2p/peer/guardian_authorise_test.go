package peer

import (
	"errors"
	"testing"

	"github.com/medwallet/medwallet/consent"
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
