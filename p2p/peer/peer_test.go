package peer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"github.com/medwallet/medwallet/internal/testutil"
	"io"
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
