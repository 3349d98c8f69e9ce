package ledgersync

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/medwallet/medwallet/consent"
)

// An equivocation detected on push reaches the OnEquivocation hooks;
// LogEquivocation logs it once per author; the author's next entries are
// refused, with a reason a pushing client can read.
func TestEquivocationLoggedOnceAndAuthorRefused(t *testing.T) {
	n, client := newNode(t), newHost(t)
	connect(t, client, n.h)
	alice, peerKey := testSigner(t, "alice"), testSigner(t, "peer")
	feed := makeFeed(t, alice, 3)
	fork := signRaw(t, alice, &consent.Entry{Seq: 2, Prev: feed[0].Hash(), Time: t0.Unix() + 5, Kind: consent.KindAnchor,
		Body: mustMarshal(t, &consent.AnchorBody{Record: "rec-x", Manifest: consent.HashBytes([]byte("x"))})})

	var mu sync.Mutex
	var proofs []*consent.EquivocationProof
	n.s.OnEquivocation(func(p *consent.EquivocationProof) {
		mu.Lock()
		proofs = append(proofs, p)
		mu.Unlock()
	})
	acks, err := Push(ctxT(t, wait), client, n.h.ID(), []*consent.Entry{feed[0], feed[1], fork})
	if err != nil {
		t.Fatal(err)
	}
	if acks[2].Status != AckRejected || !strings.Contains(acks[2].Reason, "equivocation") {
		t.Fatalf("fork: %+v", acks[2])
	}
	var p *consent.EquivocationProof
	eventually(t, wait, "the hook sees the proof", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(proofs) == 1 {
			p = proofs[0]
		}
		return p != nil
	})
	if p.Author() != alice.ID() || p.Seq() != 2 {
		t.Fatalf("proof of %s#%d", p.Author().Short(), p.Seq())
	}
	e, err := n.s.LogEquivocation(peerKey, p)
	if err != nil || e == nil || e.Author != peerKey.ID() || e.Kind != consent.KindEquivocation {
		t.Fatalf("LogEquivocation: %v %v", e, err)
	}
	if again, err := n.s.LogEquivocation(peerKey, p); again != nil || err != nil {
		t.Fatalf("a second proof of one author was logged: %v %v", again, err)
	}

	acks, err = Push(ctxT(t, wait), client, n.h.ID(), []*consent.Entry{feed[2]})
	if err != nil {
		t.Fatal(err)
	}
	if acks[0].Status != AckRejected || !strings.Contains(acks[0].Reason, "equivocated") {
		t.Fatalf("an equivocating author's next entry: %+v", acks[0])
	}
	if n.holdsHash(feed[2].Hash()) {
		t.Fatal("an equivocating author's entry was ingested")
	}
	res := n.s.accept(feed[2])
	if res.out != outConflict || !errors.Is(res.err, ErrEquivocatingAuthor) {
		t.Fatalf("accept: %v %v", res.out, res.err)
	}
}

// A proof whose entry would be over the max entry size is not logged: the
// logger's feed would stop syncing at it.
func TestEquivocationProofTooLarge(t *testing.T) {
	in, err := NewIngest(newLedger(t), WithMaxMessageSize(2048))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	alice := testSigner(t, "alice")
	mk := func(rec string) *consent.Entry {
		return signRaw(t, alice, &consent.Entry{Seq: 1, Time: t0.Unix(), Kind: consent.KindIdentity,
			Body: mustMarshal(t, &consent.IdentityBody{AgeRecipient: "age1" + strings.Repeat("q", 900) + rec, Role: "patient"})})
	}
	p, err := consent.NewEquivocationProof(mk("a"), mk("b"))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := in.LogEquivocation(testSigner(t, "peer"), p); e != nil || !errors.Is(err, ErrProofTooLarge) {
		t.Fatalf("got %v, %v; want ErrProofTooLarge", e, err)
	}
}
