package manifests

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(serverEnv); dir != "" {
		runServer(dir)
	}
	goleak.VerifyTestMain(m)
}

func newHost(t *testing.T, name string, listen bool) (host.Host, consent.ID) {
	t.Helper()
	seed := sha256.Sum256([]byte("manifests test " + name))
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

func TestReplicateListDelete(t *testing.T) {
	ctx := context.Background()
	ph, _ := newHost(t, "peer", true)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := NewService(ph, st, nil)
	defer svc.Close()
	alice, aliceID := newHost(t, "alice", false)
	bob, bobID := newHost(t, "bob", false)
	eve, _ := newHost(t, "eve", false)
	for _, h := range []host.Host{alice, bob, eve} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: ph.ID(), Addrs: ph.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	r1, r2 := "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"
	for _, c := range []struct {
		rec string
		to  consent.ID
		env string
	}{{r1, aliceID, "r1-own"}, {r1, bobID, "r1-bob"}, {r2, aliceID, "r2-own"}} {
		if err := Put(ctx, alice, ph.ID(), c.rec, c.to, []byte(c.env)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		who  host.Host
		rec  string
		want int
	}{
		{alice, "", 3}, // the owner sees every copy
		{alice, r1, 2},
		{bob, "", 1}, // a grantee sees its own copy only
		{eve, "", 0},
	}
	for i, tc := range tests {
		got, err := ListFor(ctx, tc.who, ph.ID(), aliceID, tc.rec, "")
		if err != nil || len(got) != tc.want {
			t.Errorf("case %d: %d copies, %v; want %d", i, len(got), err, tc.want)
		}
	}
	if got, _ := ListFor(ctx, bob, ph.ID(), aliceID, "", ""); len(got) != 1 || string(got[0].Envelope) != "r1-bob" {
		t.Fatalf("bob's copy: %+v", got)
	}
	// A copy addressed to a recipient that is not the asker (a role ID)
	// is listed when the request names it, and only that copy.
	if got, err := ListFor(ctx, eve, ph.ID(), aliceID, "", bobID); err != nil || len(got) != 1 || string(got[0].Envelope) != "r1-bob" {
		t.Fatalf("copies for a named recipient: %+v, %v", got, err)
	}
	if _, err := ListFor(ctx, eve, ph.ID(), aliceID, "", "not-an-id"); !errors.Is(err, ErrRemote) {
		t.Fatalf("bad recipient: %v", err)
	}
	// Nobody can write into another's name: a put is always under the caller's own ID.
	if err := Put(ctx, eve, ph.ID(), r1, bobID, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if got, _ := ListFor(ctx, bob, ph.ID(), aliceID, r1, ""); len(got) != 1 || string(got[0].Envelope) != "r1-bob" {
		t.Fatalf("eve's put changed alice's manifests: %+v", got)
	}
	if err := Put(ctx, alice, ph.ID(), "not-hex", aliceID, []byte("x")); !errors.Is(err, ErrRemote) {
		t.Fatalf("bad record: %v", err)
	}
	if err := Delete(ctx, alice, ph.ID(), r1); err != nil {
		t.Fatal(err)
	}
	if got, _ := ListFor(ctx, alice, ph.ID(), aliceID, "", ""); len(got) != 1 {
		t.Fatalf("after delete: %d copies", len(got))
	}
}
