package wallet

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/netfile"
)

// A peer of the network that takes a push and never answers does not hold
// a revocation up: Publish returns once a peer took the feed and the grace
// passed, long before the stalled push's own deadline.
func TestPublishDoesNotWaitForAStalledPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	staller, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer staller.Close()
	stalled := make(chan struct{}, 1)
	staller.SetStreamHandler(ledgersync.PushID, func(s network.Stream) {
		select {
		case stalled <- struct{}{}:
		default:
		}
		_, _ = io.Copy(io.Discard, s) // reads every entry, acks none
	})
	cfg := memConfig(t)
	cfg.Network = dn.NetworkPath()
	if err := netfile.Write(cfg.Network, netfile.Network{Peers: append(dn.Addrs(),
		staller.Addrs()[0].String()+"/p2p/"+staller.ID().String())}); err != nil {
		t.Fatal(err)
	}
	w, err := Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	l, signer, err := w.openLedger(true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(signer, w.Now(), consent.KindAnchor, &consent.AnchorBody{Record: "00112233445566778899aabbccddeeff",
		Manifest: consent.HashBytes([]byte("manifest"))})
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The wallet enrols its peers first, as where placement ends (the
	// staller refuses: it serves nothing).
	c, err := w.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = w.serveOn(ctx, c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := w.publishFeed(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	select {
	case <-stalled:
	case <-ctx.Done():
		t.Fatal("nothing was pushed to the stalling peer")
	}
	t.Logf("published in %v with a stalled peer", took.Round(time.Millisecond))
	// The stalled push's deadline is the context's (2 min); without one, it
	// is ledgersync.DefaultStreamTimeout (20 s) plus 1 s an entry.
	if took > ledgersync.DefaultStreamTimeout {
		t.Errorf("publish took %v: it waited for the stalled peer", took)
	}
	var head consent.Head
	dn.Peers[0].Ledger.View(func(v *consent.View) { head = v.Head(w.ID()) })
	if head.Seq == 0 {
		t.Error("the peer did not take the feed")
	}
}
