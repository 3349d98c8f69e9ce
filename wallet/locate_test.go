package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/locate"
	"github.com/medwallet/medwallet/p2p/netfile"
)

type servedBy map[consent.ID][32]byte

func (s servedBy) Subjects() []consent.ID {
	var out []consent.ID
	for id := range s {
		out = append(out, id)
	}
	return out
}
func (s servedBy) Secret(id consent.ID) ([32]byte, bool) { r, ok := s[id]; return r, ok }
func (s servedBy) OnChange(func())                       {}

// dhtHosts starts n loopback hosts with a DHT under /medwallet, connected
// to the first, whose routing tables are not empty.
func dhtHosts(t *testing.T, n int) ([]host.Host, []*dht.IpfsDHT) {
	t.Helper()
	var hs []host.Host
	var ds []*dht.IpfsDHT
	for i := range n {
		seed := sha256.Sum256(fmt.Appendf(nil, "wallet locate host %s %d", t.Name(), i))
		sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
		if err != nil {
			t.Fatal(err)
		}
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Identity(sk))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/medwallet"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		hs, ds = append(hs, h), append(ds, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 1; i < n; i++ {
		if err := hs[i].Connect(ctx, peer.AddrInfo{ID: hs[0].ID(), Addrs: hs[0].Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
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

// TestLocateServersAfterRestore: alice's network file names only a peer
// that does not serve her; her serving peer announced her serve key. A
// wallet restored from alice's key backup derives the same secret and
// locates that server through the peer it knows; bob finds it from
// alice's shared card, not from her plain card.
func TestLocateServersAfterRestore(t *testing.T) {
	ctx := context.Background()
	hs, ds := dhtHosts(t, 3)
	gate, server := hs[0], hs[1]
	svc := locate.NewService(gate, ds[0], nil)
	defer svc.Close()

	alice, err := Init(memConfig(t), "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	r, err := alice.Rendezvous()
	if err != nil {
		t.Fatal(err)
	}
	ann := locate.Announce(ctx, ds[1], servedBy{alice.ID(): r}, 0, nil)
	defer ann.Close()

	var backup bytes.Buffer
	if err := alice.ExportKey(&backup, "correct horse"); err != nil {
		t.Fatal(err)
	}
	restored, err := ImportKey(memConfig(t), backup.Bytes(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if rr, err := restored.Rendezvous(); err != nil || rr != r {
		t.Fatalf("the restored wallet derives another secret (%v)", err)
	}
	network := netfile.Network{Version: netfile.Version, Peers: []string{gate.Addrs()[0].String() + "/p2p/" + gate.ID().String()}}
	if err := netfile.Write(restored.NetworkPath(), network); err != nil {
		t.Fatal(err)
	}
	c, err := restored.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	found := waitLocate(t, func() ([]peer.AddrInfo, error) { return restored.LocateServers(ctx, c) })
	if found[0].ID != server.ID() {
		t.Fatalf("located %v, want %s", found, server.ID())
	}

	bob, err := Init(memConfig(t), "Bob", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	if err := netfile.Write(bob.NetworkPath(), network); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact("Alice", alice.Card().String()); err != nil {
		t.Fatal(err)
	}
	bc, err := bob.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if _, err := bob.LocateContact(ctx, bc, "Alice"); !errors.Is(err, ErrInvalid) && !isInputError(err) {
		t.Errorf("alice's plain card: %v, want an input error", err)
	}
	shared, err := alice.SharedCard()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.RemoveContact("Alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact("Alice", shared.String()); err != nil {
		t.Fatal(err)
	}
	got := waitLocate(t, func() ([]peer.AddrInfo, error) { return bob.LocateContact(ctx, bc, "Alice") })
	if got[0].ID != server.ID() {
		t.Fatalf("bob located %v, want %s", got, server.ID())
	}
}

func isInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// waitLocate retries a look-up until it finds something (the announce
// runs in the background) or 10 s pass.
func waitLocate(t *testing.T, fn func() ([]peer.AddrInfo, error)) []peer.AddrInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		found, err := fn()
		if err != nil {
			t.Fatal(err)
		}
		if len(found) > 0 {
			return found
		}
		select {
		case <-ctx.Done():
			t.Fatal("nothing located")
		case <-tick.C:
		}
	}
}
