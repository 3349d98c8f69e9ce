package peer

import (
	"context"
	"crypto/ed25519"
	"testing"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/p2p/node"
)

// A peer's bootstrap and Known peers are its known peers: protected in the
// connection manager. Anyone else is not.
func TestKnownPeersProtected(t *testing.T) {
	ctx := context.Background()
	a, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	other, err := node.New(key, node.Options{Listen: node.LoopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherAddr := other.Addrs()[0].String() + "/p2p/" + other.ID().String()
	_, key, _ = ed25519.GenerateKey(nil)
	stranger, err := node.New(key, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()

	b, err := Start(ctx, Config{
		DataDir: t.TempDir(), Listen: node.LoopbackListen,
		Bootstrap: a.Addrs()[:1], Known: []string{otherAddr},
		Limits: node.Limits{MaxConns: 32, MaxConnsPerIP: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cm := b.Host.ConnManager()
	for name, id := range map[string]lpeer.ID{"bootstrap": a.Host.ID(), "known": other.ID()} {
		if !cm.IsProtected(id, "") {
			t.Errorf("%s peer not protected", name)
		}
	}
	if cm.IsProtected(stranger.ID(), "") {
		t.Errorf("a stranger is protected")
	}
	if _, err := Start(ctx, Config{DataDir: t.TempDir(), Known: []string{"/ip4/127.0.0.1/tcp/1"}}); err == nil {
		t.Errorf("a known peer without /p2p/ID was accepted")
	}
}
