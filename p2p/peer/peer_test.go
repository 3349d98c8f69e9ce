package peer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/testutil"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBootstrapRestartAndClose(t *testing.T) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := Start(ctx, Config{DataDir: dirA, Listen: node.LoopbackListen, DHT: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(ctx, Config{DataDir: dirB, Listen: node.LoopbackListen, Bootstrap: a.Addrs()[:1], DHT: true})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "b connects to its bootstrap peer", func() bool {
		return b.Host.Network().Connectedness(a.Host.ID()) == network.Connected
	})

	// A client stores a share on a; a restart keeps the share and the ID.
	_, ck, _ := ed25519.GenerateKey(nil)
	client, err := node.New(ck, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Connect(ctx, a.Host.Peerstore().PeerInfo(a.Host.ID())); err != nil {
		t.Fatal(err)
	}
	rec := "00112233445566778899aabbccddeeff"
	rid, _ := vault.ParseRecordID(rec)
	data := make([]byte, vault.ShareHeaderSize)
	copy(data, "MWSH")
	data[4] = 1
	copy(data[12:28], rid[:])
	data = append(data, bytes.Repeat([]byte("ciphertext"), 100000)...)
	id, err := shares.Put(ctx, client, a.Host.ID(), rec, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	aID := a.ID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	a2, err := Start(ctx, Config{DataDir: dirA, Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if a2.ID() != aID {
		t.Fatalf("restart changed the ID from %s to %s", aID, a2.ID())
	}
	rc, err := a2.Store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("share changed across a restart")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBadBootstrap(t *testing.T) {
	_, err := Start(context.Background(), Config{DataDir: t.TempDir(), Listen: node.LoopbackListen, Bootstrap: []string{"/ip4/127.0.0.1/tcp/1"}})
	if err == nil {
		t.Fatal("a bootstrap address without /p2p/ID was accepted")
	}
}

// A starting peer serves no share until it has synced the ledger with a
// bootstrap peer, so a peer that was offline never decides on a stale view
// (for example one that misses a revocation made meanwhile).
func TestCatchUpBeforeServing(t *testing.T) {
	ctx := context.Background()
	a, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// b's only bootstrap peer is down: it refuses grantees for as long.
	_, deadKey, _ := ed25519.GenerateKey(nil)
	dead, _ := consent.IDFromPublicKey(deadKey.Public().(ed25519.PublicKey))
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen,
		Bootstrap: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + string(dead)}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// c's bootstrap peer is a: it catches up, then serves.
	c, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen, Bootstrap: []string{a.TCPAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	_, ck, _ := ed25519.GenerateKey(nil)
	client, err := node.New(ck, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	signer, _ := consent.NewKeySigner(ck)
	// get asks p for a share of owner's as the client: a grantee's request
	// unless owner is the client.
	get := func(p *Peer, owner consent.ID) error {
		if err := client.Connect(ctx, p.Host.Peerstore().PeerInfo(p.Host.ID())); err != nil {
			return err
		}
		req, err := consent.SignRequest(signer, consent.Request{Owner: owner, Record: "00112233445566778899aabbccddeeff",
			Scope: "patient/*.rs", Purpose: "PATRQT", Time: time.Now().Unix(), Nonce: []byte("0123456789abcdef")})
		if err != nil {
			return err
		}
		_, err = shares.Get(ctx, client, p.Host.ID(), vault.ShareID{1}, req)
		return err
	}
	grantor := dead // any owner but the client
	if err := get(b, grantor); !errors.Is(err, shares.ErrRemote) || !strings.Contains(err.Error(), "catching up") {
		t.Fatalf("a peer that could not catch up served a grantee: %v", err)
	}
	// An owner reads its own records while the peer catches up.
	if err := get(b, signer.ID()); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("a peer catching up refused the owner: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "c catches up and serves", func() bool {
		return errors.Is(get(c, grantor), shares.ErrNotFound)
	})
	if err := get(a, grantor); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("a peer without bootstrap peers should serve at once: %v", err)
	}
}
