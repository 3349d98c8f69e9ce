package ledgersync

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

// servedSet is a Served of fixed subjects.
type servedSet struct {
	mu      sync.Mutex
	secrets map[consent.ID][32]byte
	fns     []func()
}

func newServed(subjects ...consent.Signer) *servedSet {
	s := &servedSet{secrets: map[consent.ID][32]byte{}}
	for _, sub := range subjects {
		s.add(sub)
	}
	return s
}

func (s *servedSet) add(sub consent.Signer) {
	r, err := consent.Rendezvous(sub)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.secrets[sub.ID()] = r
	fns := append([]func(){}, s.fns...)
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (s *servedSet) Subjects() []consent.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []consent.ID
	for id := range s.secrets {
		out = append(out, id)
	}
	return out
}

func (s *servedSet) Secret(id consent.ID) ([32]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.secrets[id]
	return r, ok
}

func (s *servedSet) OnChange(fn func()) {
	s.mu.Lock()
	s.fns = append(s.fns, fn)
	s.mu.Unlock()
}

// rawSub is a bare gossipsub host subscribed to topics, as a stranger or
// a light client would run it.
type rawSub struct {
	h    host.Host
	ps   *pubsub.PubSub
	subs map[string]*pubsub.Subscription
	tops map[string]*pubsub.Topic
}

func newRawSub(t *testing.T, priv ed25519.PrivateKey, topics ...string) *rawSub {
	t.Helper()
	var h host.Host
	if priv == nil {
		h = newHost(t)
	} else {
		sk, err := crypto.UnmarshalEd25519PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if h, err = libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Identity(sk)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithNoAuthor(),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithMessageIdFn(msgID))
	if err != nil {
		t.Fatal(err)
	}
	r := &rawSub{h: h, ps: ps, subs: map[string]*pubsub.Subscription{}, tops: map[string]*pubsub.Topic{}}
	for _, name := range topics {
		top, err := ps.Join(name)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := top.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Cancel)
		r.subs[name], r.tops[name] = sub, top
	}
	return r
}

// next is the next message on topic within d, or nil.
func (r *rawSub) next(topic string, d time.Duration) *pubsub.Message {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := r.subs[topic].Next(ctx)
	if err != nil {
		return nil
	}
	return m
}

func signerKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("ledgersync test key: " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// TestGossipPerSubject: two peers serving alice gossip her entries on her
// topic; alice's own client, subscribed to it, gets them; a stranger
// subscribed to the global topic, to a topic guessed from alice's ID
// alone, and even to alice's real topic (whose name a peer's subscription
// announcements show to every neighbour) gets nothing.
func TestGossipPerSubject(t *testing.T) {
	alice := testSigner(t, "alice")
	r, err := consent.Rendezvous(alice)
	if err != nil {
		t.Fatal(err)
	}
	topic := consent.Topic(alice.ID(), r)
	guessed := consent.Topic(alice.ID(), sha256.Sum256([]byte(alice.ID())))

	stranger := newRawSub(t, nil, GossipTopic, guessed, topic)
	own := newRawSub(t, signerKey("alice"), topic)
	a := newNode(t)
	b := newNode(t)
	for _, n := range []*node{a, b} {
		other := b
		if n == b {
			other = a
		}
		access := func(remote peer.ID, subject consent.ID) bool {
			return remote == other.h.ID() || remote.String() == string(subject)
		}
		if err := n.s.Follow(Follow{Served: newServed(alice), Access: access}); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, a.h, b.h)
	connect(t, stranger.h, a.h)
	connect(t, stranger.h, b.h)
	connect(t, own.h, a.h)
	eventually(t, 5*time.Second, "a's mesh of alice's topic has b and alice", func() bool {
		a.s.meshMu.Lock()
		defer a.s.meshMu.Unlock()
		return a.s.mesh[b.h.ID()][topic] && a.s.mesh[own.h.ID()][topic]
	})
	// The stranger's subscriptions reached a before own's did: a saw
	// them (and filtered them out).
	eventually(t, 5*time.Second, "a filters the stranger's subscriptions", func() bool { return a.s.filtered.Load() > 0 })
	e := appendN(t, newLedger(t), alice, 1)[0]
	if err := a.s.Publish(ctxT(t, 5*time.Second), e); err != nil {
		t.Fatal(err)
	}
	if m := own.next(topic, 5*time.Second); m == nil || consent.HashBytes(m.GetData()) != e.Hash() {
		t.Fatal("alice's client did not get her entry on her topic")
	}
	eventually(t, 5*time.Second, "b holds alice's entry", func() bool { return b.has(e) })
	// a flood-publishes to every tracked subscriber at once, so by now the
	// stranger would have it; the short wait only confirms.
	for _, name := range []string{GossipTopic, guessed, topic} {
		if m := stranger.next(name, 300*time.Millisecond); m != nil {
			t.Errorf("the stranger got an entry on %s", name)
		}
	}
	if ps := stranger.ps.ListPeers(GossipTopic); len(ps) != 0 {
		t.Errorf("peers still on the global topic: %v", ps)
	}
}

// TestGossipRejectsOtherSubjects: on alice's topic, an entry whose
// subject is bob is rejected, even from a peer allowed there.
func TestGossipRejectsOtherSubjects(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	r, _ := consent.Rendezvous(alice)
	topic := consent.Topic(alice.ID(), r)
	a := newNode(t)
	if err := a.s.Follow(Follow{Served: newServed(alice)}); err != nil {
		t.Fatal(err)
	}
	st := (*a.s.subjects.Load())[topic]
	if st == nil {
		t.Fatal("a did not join alice's topic")
	}
	subj := alice.ID()
	from := newHost(t).ID()
	eb := appendN(t, newLedger(t), bob, 1)[0]
	msg := message(eb.Encode())
	if got := a.s.validateOn(context.Background(), from, msg, &subj); got != pubsub.ValidationReject {
		t.Errorf("bob's entry on alice's topic: %v, want reject", got)
	}
	if a.has(eb) {
		t.Error("bob's entry was ingested")
	}
	ea := appendN(t, newLedger(t), alice, 1)[0]
	if got := a.s.validateOn(context.Background(), from, message(ea.Encode()), &subj); got != pubsub.ValidationAccept {
		t.Errorf("alice's entry on her topic: %v, want accept", got)
	}
}

// TestGossipFollowsChanges: a subject enrolled after Follow gets its
// topic joined; an entry of a subject not served is not gossiped.
func TestGossipFollowsChanges(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	served := newServed(alice)
	a := newNode(t)
	if err := a.s.Follow(Follow{Served: served}); err != nil {
		t.Fatal(err)
	}
	if err := a.s.Follow(Follow{Served: served}); !errors.Is(err, ErrFollow) {
		t.Errorf("second Follow: %v, want ErrFollow", err)
	}
	eb := appendN(t, newLedger(t), bob, 1)[0]
	if a.s.topicOf(eb) != nil {
		t.Error("bob is not served, yet has a topic")
	}
	served.add(bob)
	rb, _ := consent.Rendezvous(bob)
	eventually(t, 5*time.Second, "a joins bob's topic", func() bool { return a.s.ours(consent.Topic(bob.ID(), rb)) })
	if a.s.topicOf(eb) == nil {
		t.Error("bob is served now, yet has no topic")
	}
}

func TestDefaultSubjectOf(t *testing.T) {
	alice, bob, peerS := testSigner(t, "alice"), testSigner(t, "bob"), testSigner(t, "peer")
	l := newLedger(t)
	anchor := appendN(t, l, alice, 1)[0]
	req, err := consent.SignRequest(bob, consent.Request{Requester: bob.ID(), Owner: alice.ID(), Record: "rec-1",
		Scope: "patient/*.rs", Purpose: "TREAT", Time: t0.Unix(), Nonce: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := consent.NewEntry(peerS, consent.Head{}, t0, consent.KindAccess, &consent.AccessBody{Request: req.Encode(), Reason: consent.ReasonNoGrant})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		e    *consent.Entry
		want consent.ID
	}{
		{"home feed", anchor, alice.ID()},
		{"access", acc, alice.ID()},
	} {
		got, ok := DefaultSubjectOf(tc.e)
		if !ok || got != tc.want {
			t.Errorf("%s: subject %s %v, want %s", tc.name, got.Short(), ok, tc.want.Short())
		}
	}
}
