package wallet

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/multiformats/go-multiaddr"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/peer"
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

// A revocation reaches every serving peer that is up even when another one
// is down, without waiting for that one: one that refuses connections; one
// that takes the connection and never answers (a wedged machine), whose
// dial would otherwise hold the revocation up for client.DialTimeout,
// made here far longer than the test may take; and one that connects but
// never answers a pull or a push, which held the catch-up before the
// signature for the stream timeout (20 s), the bound here.
func TestRevokeReachesServingPeersWhenOneIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	defer func(d time.Duration) { client.DialTimeout = d }(client.DialTimeout)
	client.DialTimeout = time.Hour
	for _, down := range []string{"stopped", "hung", "stalled"} {
		t.Run(down, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dn, err := devnet.Start(ctx, devnet.Options{Peers: 4, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer dn.Close()
			alice, bob := rotateWallet(t, dn.NetworkPath(), "Alice", "patient"), rotateWallet(t, dn.NetworkPath(), "Dr Bob", "clinician")
			if _, err := alice.AddContact("Bob", bob.Card().String()); err != nil {
				t.Fatal(err)
			}
			rec, err := alice.AddRecord(ctx, bytes.NewReader([]byte(`{"resourceType":"Observation"}`)), AddRecordOptions{K: 2, N: 4})
			if err != nil {
				t.Fatal(err)
			}
			g, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{rec.ID}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
			if err != nil {
				t.Fatal(err)
			}
			up, bad := dn.Peers[:3], dn.Peers[3]
			var serving []consent.ID
			up[0].Ledger.View(func(v *consent.View) { serving = v.ServingPeers(alice.ID()) })
			if !slices.Contains(serving, consent.ID(bad.Host.ID().String())) || len(serving) != 4 {
				t.Fatalf("serving peers %v: want all 4", serving)
			}
			waitPeers(ctx, t, up, func(v *consent.View) bool { _, ok := v.Grant(g.ID); return ok })

			switch down {
			case "stopped", "hung":
				addr := bad.TCPAddr()
				if err := bad.Close(); err != nil {
					t.Fatal(err)
				}
				if down == "hung" {
					ln := listenOn(t, addr)
					go func() {
						for {
							c, err := ln.Accept()
							if err != nil {
								return
							}
							defer c.Close() // held open, never answered
						}
					}()
				}
			case "stalled":
				release := make(chan struct{})
				defer close(release)
				stall := func(s network.Stream) {
					<-release
					s.Reset()
				}
				bad.Host.SetStreamHandler(ledgersync.SyncID, stall)
				bad.Host.SetStreamHandler(ledgersync.PushID, stall)
			}
			revoked := make(chan error, 1)
			go func() {
				_, err := alice.Revoke(ctx, g.ID.String())
				revoked <- err
			}()
			reach, cancelReach := context.WithTimeout(ctx, ledgersync.DefaultStreamTimeout)
			defer cancelReach()
			waitPeers(reach, t, up, func(v *consent.View) bool { return v.Revoked(g.ID) })
			if err := <-revoked; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// listenOn listens on the TCP port of addr, a multiaddr on 127.0.0.1.
func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	ma, err := multiaddr.NewMultiaddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := ma.ValueForProtocol(multiaddr.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// waitPeers waits until cond holds on the view of each of ps, or fails
// the test when ctx ends.
func waitPeers(ctx context.Context, t *testing.T, ps []*peer.Peer, cond func(*consent.View) bool) {
	t.Helper()
	for _, p := range ps {
		for ok := false; !ok; {
			p.Ledger.View(func(v *consent.View) { ok = cond(v) })
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("peer %s: %v", p.Host.ID().ShortString(), ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// A publish that sends the newest entry alone first still brings a peer
// that lacks earlier entries of the feed up to date: the peer holds the
// entry as pending and is pushed the feed.
func TestPublishFreshEntryToAPeerThatLacksMore(t *testing.T) {
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
	w := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	c, err := w.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, want := range []uint64{3, 4} {
		// The first round appends two entries the peer has never seen
		// (after the identity entry), the second one more.
		for range 2 - i {
			l, signer, err := w.openLedger(true)
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Append(signer, w.Now(), consent.KindAnchor, &consent.AnchorBody{Record: "00112233445566778899aabbccddeeff",
				Manifest: consent.HashBytes([]byte{byte(i), byte(want)})})
			l.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.publish(ctx, c, 1); err != nil {
			t.Fatal(err)
		}
		var head consent.Head
		dn.Peers[0].Ledger.View(func(v *consent.View) { head = v.Head(w.ID()) })
		if head.Seq != want {
			t.Fatalf("round %d: the peer holds %d entries of the feed, want %d", i, head.Seq, want)
		}
	}
}
