package locate

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

func newHost(t *testing.T, name string) host.Host {
	t.Helper()
	seed := sha256.Sum256([]byte("locate test host " + name))
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Identity(sk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func signer(t *testing.T, name string) *consent.KeySigner {
	t.Helper()
	seed := sha256.Sum256([]byte("locate test key " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type served map[consent.ID][32]byte

func (s served) Subjects() []consent.ID {
	var out []consent.ID
	for id := range s {
		out = append(out, id)
	}
	return out
}
func (s served) Secret(id consent.ID) ([32]byte, bool) { r, ok := s[id]; return r, ok }
func (s served) OnChange(func())                       {}

// dhtNet starts n hosts with a DHT in server mode under the /medwallet
// prefix, all connected to the first.
func dhtNet(t *testing.T, n int) ([]host.Host, []*dht.IpfsDHT) {
	t.Helper()
	var hs []host.Host
	var ds []*dht.IpfsDHT
	for i := range n {
		h := newHost(t, fmt.Sprint(t.Name(), i))
		d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/medwallet"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		hs, ds = append(hs, h), append(ds, d)
	}
	for i := 1; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := hs[i].Connect(ctx, peer.AddrInfo{ID: hs[0].ID(), Addrs: hs[0].Addrs()}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, d := range ds {
		for d.RoutingTable().Size() == 0 {
			select {
			case <-ctx.Done():
				t.Fatal("DHT routing tables stay empty")
			case <-tick.C:
			}
		}
	}
	return hs, ds
}

// TestProvidersNeedTheSecret: a serving peer announces alice's serve key;
// a light client that knows alice's secret finds it through another
// peer's locate service; one that knows only alice's ID finds nothing.
func TestProvidersNeedTheSecret(t *testing.T) {
	hs, ds := dhtNet(t, 4)
	alice := signer(t, "alice")
	r, err := consent.Rendezvous(alice)
	if err != nil {
		t.Fatal(err)
	}
	server := hs[1]
	a := Announce(context.Background(), ds[1], served{alice.ID(): r}, 0, nil)
	defer a.Close()
	svc := NewService(hs[2], ds[2], nil)
	defer svc.Close()
	client := newHost(t, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.Connect(ctx, peer.AddrInfo{ID: hs[2].ID(), Addrs: hs[2].Addrs()}); err != nil {
		t.Fatal(err)
	}
	var found []peer.AddrInfo
	for len(found) == 0 {
		found, err = Locate(ctx, client, hs[2].ID(), consent.ServeKey(alice.ID(), r))
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("alice's serving peer is not found with her secret")
		}
	}
	if len(found) != 1 || found[0].ID != server.ID() || len(found[0].Addrs) == 0 {
		t.Fatalf("found %v, want %s with its addresses", found, server.ID())
	}
	// Guesses from alice's ID alone: her ID as the secret, its hash, zeros.
	for _, guess := range [][32]byte{{}, sha256.Sum256([]byte(alice.ID())), consent.HashBytes([]byte("medwallet" + alice.ID()))} {
		got, err := Locate(ctx, client, hs[2].ID(), consent.ServeKey(alice.ID(), guess))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("a guessed secret finds %v", got)
		}
	}
	// Nor does any DHT node find alice's peer under her ID.
	if got := Find(ctx, ds[3], hs[3].ID(), sha256.Sum256([]byte(alice.ID()))); len(got) != 0 {
		t.Errorf("the ID's hash finds %v", got)
	}
}

func TestLocateRefusals(t *testing.T) {
	hs, ds := dhtNet(t, 2)
	svc := NewService(hs[1], ds[1], nil)
	defer svc.Close()
	client := newHost(t, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.Connect(ctx, peer.AddrInfo{ID: hs[1].ID(), Addrs: hs[1].Addrs()}); err != nil {
		t.Fatal(err)
	}
	var busy error
	for i := 0; i < Burst+1; i++ {
		if _, err := Locate(ctx, client, hs[1].ID(), [32]byte{byte(i)}); err != nil {
			busy = err
			break
		}
	}
	if !errors.Is(busy, ErrBusy) {
		t.Fatalf("after %d requests: %v, want ErrBusy", Burst+1, busy)
	}
}

func TestCIDStable(t *testing.T) {
	var k [32]byte
	for i := range k {
		k[i] = byte(i)
	}
	if got, want := CID(k).String(), "bafkreiaaaebagbafaydqqcikbmga2dqpcaireeyuculbogazdinryhi6d4"; got != want {
		t.Errorf("CID = %s, want %s", got, want)
	}
}

// mutable is a Served whose set grows.
type mutable struct {
	mu  sync.Mutex
	m   map[consent.ID][32]byte
	fns []func()
}

func (s *mutable) Subjects() []consent.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []consent.ID
	for id := range s.m {
		out = append(out, id)
	}
	return out
}

func (s *mutable) Secret(id consent.ID) ([32]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	return r, ok
}

func (s *mutable) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fns = append(s.fns, fn)
}

func (s *mutable) add(id consent.ID, r [32]byte) {
	s.mu.Lock()
	s.m[id] = r
	fns := slices.Clone(s.fns)
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// TestAnnounceFollowsChanges: a subject enrolled after the announcer
// started is provided at once, not at the next 12-hour round.
func TestAnnounceFollowsChanges(t *testing.T) {
	hs, ds := dhtNet(t, 3)
	set := &mutable{m: map[consent.ID][32]byte{}}
	a := Announce(context.Background(), ds[1], set, 0, nil)
	defer a.Close()
	bob := signer(t, "bob")
	r, err := consent.Rendezvous(bob)
	if err != nil {
		t.Fatal(err)
	}
	set.add(bob.ID(), r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if got := Find(ctx, ds[2], hs[2].ID(), consent.ServeKey(bob.ID(), r)); len(got) == 1 && got[0].ID == hs[1].ID() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("bob's serving peer is not provided after he was enrolled")
		case <-tick.C:
		}
	}
}
