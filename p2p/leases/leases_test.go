package leases

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
	"github.com/medwallet/medwallet/vault"
)

const rec = "00112233445566778899aabbccddeeff"

func newHost(t *testing.T, name string, listen bool) (host.Host, consent.ID) {
	t.Helper()
	seed := sha256.Sum256([]byte("leases test " + name))
	var l []string
	if listen {
		l = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := node.New(ed25519.NewKeyFromSeed(seed[:]), node.Options{Listen: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, consent.ID(h.ID().String())
}

func TestRenew(t *testing.T) {
	ctx := context.Background()
	ph, _ := newHost(t, "peer", true)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	alice, aliceID := newHost(t, "alice", false)
	rep, repID := newHost(t, "repairer", false)
	eve, _ := newHost(t, "eve", false)
	svc := NewService(ph, st, nil, WithAuthorise(func(remote, owner consent.ID, record string) bool {
		return remote == repID && owner == aliceID && record == rec
	}))
	defer svc.Close()
	for _, h := range []host.Host{alice, rep, eve} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: ph.ID(), Addrs: ph.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := st.PutShare(ctx, aliceID, rec, bytes.NewReader([]byte("a share")))
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{{Record: rec, Manifest: consent.Hash{9}, Shares: []vault.ShareID{id}}, {Record: "ffeeddccbbaa99887766554433221100"}}
	if n, err := Renew(ctx, alice, ph.ID(), aliceID, recs); err != nil || n != 1 {
		t.Fatalf("owner renew: %d %v", n, err)
	}
	l, ok, err := st.Lease(aliceID, rec)
	if err != nil || !ok || l.Manifest != (consent.Hash{9}) || !l.Names(id) {
		t.Fatalf("lease %+v %v %v", l, ok, err)
	}
	if n, err := Renew(ctx, rep, ph.ID(), aliceID, recs[:1]); err != nil || n != 1 {
		t.Fatalf("authorised renew: %d %v", n, err)
	}
	if _, err := Renew(ctx, rep, ph.ID(), aliceID, recs); !errors.Is(err, ErrDenied) {
		t.Fatalf("a repairer renewed a record it is not authorised for: %v", err)
	}
	if _, err := Renew(ctx, eve, ph.ID(), aliceID, recs[:1]); !errors.Is(err, ErrDenied) {
		t.Fatalf("a stranger renewed: %v", err)
	}
	many := make([]Record, MaxRecords+1)
	for i := range many {
		many[i] = Record{Record: rec}
	}
	if n, err := Renew(ctx, alice, ph.ID(), aliceID, many); err != nil || n != len(many) {
		t.Fatalf("batched renew: %d %v", n, err)
	}
	if _, err := Renew(ctx, alice, ph.ID(), aliceID, []Record{{Record: "bad id!"}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad record ID: %v", err)
	}
}
