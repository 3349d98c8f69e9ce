package serving

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newHost(t *testing.T, name string, listen bool) (host.Host, consent.ID) {
	t.Helper()
	seed := sha256.Sum256([]byte("serving test " + name))
	key := ed25519.NewKeyFromSeed(seed[:])
	var l []string
	if listen {
		l = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := node.New(key, node.Options{Listen: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, consent.ID(h.ID().String())
}

// The set survives a reopen; OnChange runs once per change.
func TestSetPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, alice := newHost(t, "alice", false)
	_, bob := newHost(t, "bob", false)
	changes := 0
	s.OnChange(func() { changes++ })
	now := time.Unix(1767225600, 0)
	for i, c := range []struct {
		id     consent.ID
		secret byte
		added  bool
	}{{alice, 1, true}, {alice, 1, false}, {bob, 2, true}, {alice, 3, false}} {
		added, err := s.Enrol(c.id, Secret{c.secret}, now)
		if err != nil || added != c.added {
			t.Fatalf("enrolment %d: added %v, %v; want %v", i, added, err, c.added)
		}
	}
	if changes != 3 {
		t.Fatalf("%d changes, want 3 (the repeat changes nothing)", changes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Subjects(); len(got) != 2 || !r.Has(alice) || !r.Has(bob) {
		t.Fatalf("reopened: %v", got)
	}
	if sec, ok := r.Secret(alice); !ok || sec != [32]byte{3} {
		t.Fatalf("alice's secret after reopening: %v %v", sec, ok)
	}
	if since, _ := r.Since(alice); !since.Equal(now) {
		t.Fatalf("alice enrolled %v, want %v", since, now)
	}
	if _, ok := r.Secret("nobody"); ok {
		t.Fatal("a secret for a subject never enrolled")
	}
}

// Enrolment enrols the stream's remote, and only if the peer admits it.
func TestEnrol(t *testing.T) {
	ph, _ := newHost(t, "peer", true)
	ah, alice := newHost(t, "alice", false)
	mh, mallory := newHost(t, "mallory", false)
	set, err := Open(filepath.Join(t.TempDir(), File))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	svc := NewService(ph, set, func(id consent.ID) error {
		if id == mallory {
			return errors.New("not on the allowlist")
		}
		return nil
	}, nil)
	defer svc.Close()
	ctx := context.Background()
	for _, h := range []host.Host{ah, mh} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: ph.ID(), Addrs: ph.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Enrol(ctx, ah, ph.ID(), Secret{7}); err != nil {
		t.Fatal(err)
	}
	if sec, ok := set.Secret(alice); !ok || sec != [32]byte{7} {
		t.Fatalf("alice enrolled: %v %v", sec, ok)
	}
	if err := Enrol(ctx, mh, ph.ID(), Secret{8}); !errors.Is(err, ErrRefused) {
		t.Fatalf("mallory: %v, want refused", err)
	}
	if set.Has(mallory) || len(set.Subjects()) != 1 {
		t.Fatalf("served: %v", set.Subjects())
	}
}

// One identity may change the served set a few times, then is answered
// busy without the set changing; enrolling again with the same secret
// stays free.
func TestEnrolRate(t *testing.T) {
	ph, _ := newHost(t, "peer", true)
	ah, alice := newHost(t, "alice", false)
	set, err := Open(filepath.Join(t.TempDir(), File))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	svc := NewService(ph, set, nil, nil)
	defer svc.Close()
	ctx := context.Background()
	if err := ah.Connect(ctx, peer.AddrInfo{ID: ph.ID(), Addrs: ph.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for i := range changeBurst {
		if err := Enrol(ctx, ah, ph.ID(), Secret{byte(i + 1)}); err != nil {
			t.Fatalf("change %d: %v", i+1, err)
		}
	}
	if err := Enrol(ctx, ah, ph.ID(), Secret{99}); !errors.Is(err, ErrRefused) {
		t.Fatalf("change beyond the burst: %v, want refused (busy)", err)
	}
	if sec, _ := set.Secret(alice); sec != [32]byte{changeBurst} {
		t.Fatalf("secret %v after a refused change", sec[0])
	}
	for range 10 {
		if err := Enrol(ctx, ah, ph.ID(), Secret{changeBurst}); err != nil {
			t.Fatalf("same secret again: %v", err)
		}
	}
}

// Leaving removes the stream's remote (and only it) from the set, on disk
// too; leaving a peer that does not serve you is free.
func TestLeave(t *testing.T) {
	ph, _ := newHost(t, "peer", true)
	ah, alice := newHost(t, "alice", false)
	bh, bob := newHost(t, "bob", false)
	path := filepath.Join(t.TempDir(), File)
	set, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	changes := 0
	set.OnChange(func() { changes++ })
	svc := NewService(ph, set, nil, nil)
	ctx := context.Background()
	for _, h := range []host.Host{ah, bh} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: ph.ID(), Addrs: ph.Addrs()}); err != nil {
			t.Fatal(err)
		}
		if err := Enrol(ctx, h, ph.ID(), Secret{1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Leave(ctx, ah, ph.ID()); err != nil {
		t.Fatal(err)
	}
	if set.Has(alice) || !set.Has(bob) || changes != 3 {
		t.Fatalf("after alice left: %v, %d changes", set.Subjects(), changes)
	}
	for range 10 { // not served: free, no change
		if err := Leave(ctx, ah, ph.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if changes != 3 {
		t.Fatalf("%d changes, want 3", changes)
	}
	// Enrolling again works.
	if err := Enrol(ctx, ah, ph.ID(), Secret{2}); err != nil || !set.Has(alice) {
		t.Fatalf("enrolling again: %v", err)
	}
	if _, err := set.Leave(alice); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Has(alice) || !r.Has(bob) || r.Len() != 1 {
		t.Fatalf("reopened: %v", r.Subjects())
	}
}

// A served.json left by an earlier version moves into the bbolt file on
// open, subjects, secrets and times kept, and is renamed; the bound on
// subjects holds.
func TestSetMigratesAndBounds(t *testing.T) {
	dir := t.TempDir()
	_, alice := newHost(t, "alice", false)
	_, bob := newHost(t, "bob", false)
	_, carol := newHost(t, "carol", false)
	legacy := `{"` + string(alice) + `":{"secret":"` + strings.Repeat("07", 32) + `","since":"2026-01-01T00:00:00Z"},"` +
		string(bob) + `":{"secret":"` + strings.Repeat("08", 32) + `","since":"2026-01-02T00:00:00Z"}}`
	if err := os.WriteFile(filepath.Join(dir, "served.json"), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sec, ok := s.Secret(alice); !ok || sec != [32]byte(bytes.Repeat([]byte{7}, 32)) || s.Len() != 2 {
		t.Fatalf("migrated: %v %v, %d subjects", sec, ok, s.Len())
	}
	if since, _ := s.Since(bob); !since.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("bob since %v", since)
	}
	if _, err := os.Stat(filepath.Join(dir, "served.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("served.json still there: %v", err)
	}
	s.max = 2
	if _, err := s.Enrol(carol, Secret{9}, time.Now()); !errors.Is(err, ErrFull) || s.Has(carol) {
		t.Fatalf("a third subject over a bound of 2: %v", err)
	}
	if _, err := s.Enrol(alice, Secret{10}, time.Now()); err != nil {
		t.Fatalf("a known subject's new secret at the bound: %v", err)
	}
	if _, err := s.Leave(bob); err != nil {
		t.Fatal(err)
	}
	if added, err := s.Enrol(carol, Secret{9}, time.Now()); err != nil || !added || s.Len() != 2 {
		t.Fatalf("after a leave: %v %v, %d", added, err, s.Len())
	}
}
