package witness

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// A peer signs, for patient S only, checkpoints of its own sub-feed about
// S, over entries it holds; the certificate binds the key to the sub-feed.
func TestSignSubFeed(t *testing.T) {
	l, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peerID := signer(t, "witness-id") // the service's identity
	s := newService(t, NewMemStore(), WithSubFeedCheckpoints(LedgerHashes(l)))
	defer s.Close()
	ph, alice := newHost(t, "alice", false)
	_, bob := newHost(t, "bob", false)
	sub, err := consent.NewSubFeed(peerID, alice)
	if err != nil {
		t.Fatal(err)
	}
	link, err := sub.EnsureLinked(l, t0)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ph.Peerstore().AddAddrs(s.h.ID(), s.h.Addrs(), time.Hour)
	note, cert, err := SignSubFeed(ctx, ph, s.h.ID(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Author != sub.ID() {
		t.Fatalf("certificate for %s, want the sub-feed %s", cert.Author, sub.ID())
	}
	sc, err := consent.OpenCheckpoint(note, cert.Key)
	want, _ := consent.NewTree([]consent.Hash{link.Hash()}).Root(1)
	if err != nil || sc.Size != 1 || sc.Root != want || sc.Origin != cert.Origin() {
		t.Fatalf("checkpoint: %v %+v", err, sc)
	}
	// More entries than the peer holds; another remote's (none): not found.
	if _, _, err := SignSubFeed(ctx, ph, s.h.ID(), 2); !errors.Is(err, ErrNoSubFeed) {
		t.Fatalf("size 2: %v, want not found", err)
	}
	if r := s.SignSubFeed(bob, 1); r.Code != CodeNotFound {
		t.Fatalf("bob: %+v", r)
	}
	if r := s.SignSubFeed(alice, 0); r.Code != CodeBadRequest {
		t.Fatalf("size 0: %+v", r)
	}
}
