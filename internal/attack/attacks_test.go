package attack

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/p2p/wire"
)

// attack is one row of issue 11's table, scaled down. run keeps the attack
// going until ctx ends (re-opening what the peers reset: a persistent
// attacker), calls ready once it is in place, and returns only after every
// goroutine it started ended.
type attack struct {
	name string
	run  func(ctx context.Context, n *testnet, ready func()) error
}

// during runs fn while a is in place, and stops a afterwards (also when fn
// fails the test).
func (n *testnet) during(a attack, fn func(ctx context.Context)) {
	t := n.t
	t.Helper()
	actx, cancel := context.WithCancel(context.Background())
	readyc := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- a.run(actx, n, func() { once.Do(func() { close(readyc) }) }) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("attack %s: %v", a.name, err)
			}
		case <-time.After(90 * time.Second):
			t.Errorf("attack %s did not stop within 90 s", a.name)
		}
	}
	defer stop()
	select {
	case <-readyc:
	case err := <-errc:
		stopped = true
		t.Fatalf("attack %s ended before it was in place: %v", a.name, err)
	case <-time.After(5 * time.Minute):
		t.Fatalf("attack %s was not in place within 5 min", a.name)
	}
	t.Logf("attack %q in place after %v", a.name, time.Since(start).Round(time.Millisecond))
	ctx, cancelHonest := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelHonest()
	fn(ctx)
}

// Row 1: one identity holds the share-transfer slots of every peer with
// streams that send a byte every few seconds. Scaled: 20 streams per peer
// (the old global pool had 16 slots), a byte every 5 s (the issue: 10 s).
var slowShares = attack{name: "slow share streams", run: func(ctx context.Context, n *testnet, ready func()) error {
	s, err := newStranger(n)
	if err != nil {
		return err
	}
	defer s.host.Close()
	var wg sync.WaitGroup
	rid := randomRecord()
	opened := hold(ctx, &wg, s.host, n.peers, shares.ID, 20, func(ctx context.Context, st network.Stream) error {
		if err := writeFrame(st, shareRequest{Op: shares.OpPut, Record: rid.String()}); err != nil {
			return err
		}
		if _, err := st.Write(shareHeader(rid, 1<<20)); err != nil {
			return err
		}
		return trickle(ctx, st, 5*time.Second)
	})
	n.t.Logf("slow share streams: %d of %d opened", waitOpened(ctx, opened, 20*numPeers), 20*numPeers)
	ready()
	<-ctx.Done()
	wg.Wait()
	return nil
}}

// Row 2: 8 identities hold the ledger-push slots: each keeps 3 push
// streams per peer (the old limit was 2 per peer, 16 in all) alive with a
// one-byte junk frame every 5 s (the issue: a byte every 10 s).
var slowPush = attack{name: "slow push streams", run: func(ctx context.Context, n *testnet, ready func()) error {
	return holdLedger(ctx, n, ready, ledgersync.PushID, func(ctx context.Context, st network.Stream) error {
		for ctx.Err() == nil {
			if err := wire.WriteFrame(st, []byte{0}); err != nil {
				return err
			}
			sleep(ctx, 5*time.Second)
		}
		return nil
	})
}}

// Row 3 (its attack; the restart is in the test): 8 identities hold the
// ledger-sync slots with a heads request every 5 s on 3 streams per peer.
var slowSync = attack{name: "slow sync streams", run: func(ctx context.Context, n *testnet, ready func()) error {
	return holdLedger(ctx, n, ready, ledgersync.SyncID, func(ctx context.Context, st network.Stream) error {
		go func() { _, _ = io.Copy(io.Discard, st) }()
		for ctx.Err() == nil {
			if err := writeFrame(st, syncRequest{Op: 1}); err != nil {
				return err
			}
			sleep(ctx, 5*time.Second)
		}
		return nil
	})
}}

func holdLedger(ctx context.Context, n *testnet, ready func(), proto protocol.ID, use func(context.Context, network.Stream) error) error {
	ss, err := strangers(n, 8)
	if err != nil {
		return err
	}
	defer closeAll(ss)
	var wg sync.WaitGroup
	var counts []func() int
	for _, s := range ss {
		counts = append(counts, hold(ctx, &wg, s.host, n.peers, proto, 3, use))
	}
	total := func() int {
		t := 0
		for _, c := range counts {
			t += c()
		}
		return t
	}
	n.t.Logf("%s: %d of %d streams opened", proto, waitOpened(ctx, total, 8*3*numPeers), 8*3*numPeers)
	ready()
	<-ctx.Done()
	wg.Wait()
	return nil
}

// entrySize is the size of the attackers' big ledger entries: just under
// the peers' 640 KiB admission limit (the issue sent 1 MB entries, which
// peers now refuse outright).
const entrySize = 560 << 10

// Row 4: entries whose predecessor never comes, from 2 fresh authors.
// Scaled: 100 entries of 560 KiB per author (the issue: 1 MB each, until
// the peer held 2 GiB), pushed to every peer; the test runs the peers with
// --ledger-gap-mib 16, so the 110 MiB sent is seven times the bound.
var gapEntries = attack{name: "gap entries", run: func(ctx context.Context, n *testnet, ready func()) error {
	ss, err := strangers(n, 2)
	if err != nil {
		return err
	}
	defer closeAll(ss)
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev consent.Hash
			rand.Read(prev[:])
			s.head = consent.Head{Seq: 1, Hash: prev} // seq 1 never comes
			var es []*consent.Entry
			for range 100 {
				es = append(es, s.next(time.Now().Unix(), consent.KindGrant, bigGrant(entrySize)))
			}
			n.t.Logf("gap entries by %s: acks %v", s.id().Short(), pushAll(ctx, s.host, n.peers, es, 8))
		}()
	}
	wg.Wait()
	ready()
	<-ctx.Done()
	return nil
}}

// Row 5: valid entries from one fresh author. Scaled: 60 entries of
// 560 KiB (33 MiB; the issue: 150 of 1 MB), pushed to p1, which gossips
// what it accepts to the others.
var validEntries = attack{name: "valid big entries", run: func(ctx context.Context, n *testnet, ready func()) error {
	s, err := newStranger(n)
	if err != nil {
		return err
	}
	defer s.host.Close()
	es := []*consent.Entry{s.next(time.Now().Unix(), consent.KindIdentity, identityBody())}
	for range 60 {
		es = append(es, s.next(time.Now().Unix(), consent.KindGrant, bigGrant(entrySize)))
	}
	n.t.Logf("valid big entries by %s: acks %v", s.id().Short(), pushAll(ctx, s.host, n.peers[:1], es, 8))
	ready()
	<-ctx.Done()
	return nil
}}

// Row 6: storage by an identity with no relationship to anyone. Scaled:
// 6 shares of 8 MiB and 6 manifest copies of 4 MiB to every peer (72 MiB
// a peer; the issue: 10 × 100 MiB shares and 20 × 16 MiB manifests).
var storageFill = attack{name: "storage fill", run: func(ctx context.Context, n *testnet, ready func()) error {
	s, err := newStranger(n)
	if err != nil {
		return err
	}
	defer s.host.Close()
	var wg sync.WaitGroup
	var stored, refused atomic.Int64
	for _, p := range n.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 6 {
				pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				_, _, err := s.putShare(pctx, p, 8<<20)
				cancel()
				count(err, &stored, &refused)
			}
			for range 6 {
				pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				err := s.putManifest(pctx, p, 4<<20)
				cancel()
				count(err, &stored, &refused)
			}
		}()
	}
	wg.Wait()
	n.t.Logf("storage fill: %d puts stored, %d refused", stored.Load(), refused.Load())
	ready()
	<-ctx.Done()
	return nil
}}

func count(err error, ok, bad *atomic.Int64) {
	if err != nil {
		bad.Add(1)
	} else {
		ok.Add(1)
	}
}

// Row 7: manifest requests that declare 8 MiB frames and send all but the
// last byte, then hold. Scaled: 48 streams to p1 (the issue: 150).
var manifestFrames = attack{name: "big manifest frames", run: func(ctx context.Context, n *testnet, ready func()) error {
	s, err := newStranger(n)
	if err != nil {
		return err
	}
	defer s.host.Close()
	var wg sync.WaitGroup
	const frame = 8 << 20
	chunk := make([]byte, 64<<10)
	var sent atomic.Int64
	opened := hold(ctx, &wg, s.host, n.peers[:1], manifests.ID, 48, func(ctx context.Context, st network.Stream) error {
		var pre [10]byte
		k := binary.PutUvarint(pre[:], frame)
		if _, err := st.Write(pre[:k]); err != nil {
			return err
		}
		for left := frame - 1; left > 0 && ctx.Err() == nil; {
			m, err := st.Write(chunk[:min(left, len(chunk))])
			if err != nil {
				return err
			}
			left -= m
			sent.Add(int64(m))
		}
		<-ctx.Done()
		return nil
	})
	n.t.Logf("big manifest frames: %d of 48 streams opened", waitOpened(ctx, opened, 48))
	sleep(ctx, 5*time.Second) // let the frames arrive
	n.t.Logf("big manifest frames: %d MiB sent", sent.Load()>>20)
	ready()
	<-ctx.Done()
	wg.Wait()
	return nil
}}

// forgedAccess is row 8's entry: an "allowed" access entry on the
// stranger's own feed, with a made-up request naming the patient as owner
// and her clinician as requester. Dated at (Unix s); until, if not zero,
// is the end of an emergency time box.
func forgedAccess(n *testnet, s *stranger, at, until int64) []*consent.Entry {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	sig := make([]byte, 64)
	rand.Read(sig)
	req := &consent.Request{Requester: n.bob.id, Owner: n.alice.id, Record: n.record, Scope: scopeAll,
		Purpose: purpose, Time: at, Nonce: nonce, Sig: sig}
	grant, _ := consent.ParseHash(n.bobGrant)
	body := &consent.AccessBody{Request: req.Encode(), Allow: true, Reason: consent.ReasonGranted, Grant: grant}
	if until != 0 {
		body.Reason, body.Until = consent.ReasonEmergency, until
	}
	now := time.Now().Unix()
	return []*consent.Entry{s.next(now, consent.KindIdentity, identityBody()), s.next(max(at, now), consent.KindAccess, body)}
}

// Row 8: forged "allowed" access entries, a fresh stranger every 2 s (at
// most 10), pushed to every peer.
func forgeAccess(forgers *[]consent.ID, mu *sync.Mutex) attack {
	return attack{name: "forged access entries", run: func(ctx context.Context, n *testnet, ready func()) error {
		for i := 0; i < 10 && ctx.Err() == nil; i++ {
			s, err := newStranger(n)
			if err != nil {
				return err
			}
			acks := pushAll(ctx, s.host, n.peers, forgedAccess(n, s, time.Now().Unix(), 0), 8)
			s.host.Close()
			mu.Lock()
			*forgers = append(*forgers, s.id())
			mu.Unlock()
			if i == 0 {
				n.t.Logf("forged access entry by %s: acks %v", s.id().Short(), acks)
				ready()
			}
			sleep(ctx, 2*time.Second)
		}
		<-ctx.Done()
		return nil
	}}
}

// Row 9: access entries dated 2^62 s, and one dated now whose emergency
// time box ends at 2^62 s.
func farFuture(forgers *[]consent.ID, mu *sync.Mutex) attack {
	return attack{name: "access entries dated 2^62", run: func(ctx context.Context, n *testnet, ready func()) error {
		for _, until := range []int64{0, 1 << 62} {
			s, err := newStranger(n)
			if err != nil {
				return err
			}
			at := int64(1 << 62)
			if until != 0 {
				at = time.Now().Unix()
			}
			acks := pushAll(ctx, s.host, n.peers, forgedAccess(n, s, at, until), 8)
			s.host.Close()
			n.t.Logf("access entry by %s dated %d, time box to %d: acks %v", s.id().Short(), at, until, acks)
			mu.Lock()
			*forgers = append(*forgers, s.id())
			mu.Unlock()
		}
		ready()
		<-ctx.Done()
		return nil
	}}
}

// equivocate has g sign two different first entries and pushes both to
// every peer.
func equivocate(ctx context.Context, n *testnet, g *grantee) map[string]int {
	a := signEntry(g.priv, g.id(), 1, consent.Hash{}, time.Now().Unix(), consent.KindIdentity, identityBody())
	b := signEntry(g.priv, g.id(), 1, consent.Hash{}, time.Now().Unix(), consent.KindIdentity, identityBody())
	h, err := dialer(g.priv)
	if err != nil {
		return map[string]int{"error": 1}
	}
	defer h.Close()
	for _, p := range n.peers {
		h.Peerstore().AddAddrs(p.id, p.info().Addrs, time.Hour)
	}
	acks := pushAll(ctx, h, n.peers, []*consent.Entry{a}, 1)
	for k, v := range pushAll(ctx, h, n.peers, []*consent.Entry{b}, 1) {
		acks[k] += v
	}
	return acks
}

// Row 10 for the bench: a stranger equivocates (the test makes Carol, a
// grantee, equivocate, so that it can see who trusts her).
var strangerEquivocates = attack{name: "equivocation", run: func(ctx context.Context, n *testnet, ready func()) error {
	g := newGrantee(n.t)
	g.host.Close()
	n.t.Logf("equivocation by a stranger: acks %v", equivocate(ctx, n, g))
	ready()
	<-ctx.Done()
	return nil
}}

// Row 11: many identities connect to one peer and stay. Scaled: 200
// identities (the issue: 400; go-libp2p's default limits let about 128
// inbound connections in on a small machine), each reconnecting when
// dropped.
var manyConns = attack{name: "200 identities connect to p1", run: func(ctx context.Context, n *testnet, ready func()) error {
	ss, err := strangers(n, 200)
	if err != nil {
		return err
	}
	defer closeAll(ss)
	p := n.peers[0]
	connected := func() int {
		c := 0
		for _, s := range ss {
			if s.host.Network().Connectedness(p.id) == network.Connected {
				c++
			}
		}
		return c
	}
	dialAll := func() {
		var wg sync.WaitGroup
		for _, s := range ss {
			if s.host.Network().Connectedness(p.id) == network.Connected {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_ = s.host.Connect(cctx, p.info())
				cancel()
			}()
		}
		wg.Wait()
	}
	dialAll()
	hwm, _ := procMem(os.Getpid())
	n.t.Logf("%d of %d identities connected to %s (the attacker's process: peak RSS %.0f MiB)", connected(), len(ss), p.name, inMiB(hwm))
	ready()
	for ctx.Err() == nil {
		sleep(ctx, 500*time.Millisecond)
		dialAll()
	}
	return nil
}}

// Row 12: a stranger fetches its own tiny share over and over, 2 gets at
// a time (more would meet the resource manager's per-identity stream limit
// first, and this case is about the peer's per-requester limit), limit times (the issue: 3000); gets counts them.
func tinyFetch(gets *atomic.Int64, limit int64, who *atomic.Pointer[stranger]) attack {
	return attack{name: fmt.Sprintf("tiny share fetched %d times", limit), run: func(ctx context.Context, n *testnet, ready func()) error {
		s, err := newStranger(n)
		if err != nil {
			return err
		}
		defer s.host.Close()
		if who != nil {
			who.Store(s)
		}
		p := n.peers[0]
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		id, record, err := s.putShare(pctx, p, 1024)
		cancel()
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		var next atomic.Int64
		codes := map[string]int{}
		var mu sync.Mutex
		var once sync.Once
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= limit && ctx.Err() == nil {
					gctx, cancel := context.WithTimeout(ctx, 20*time.Second)
					rc, err := shares.Get(gctx, s.host, p.id, id, s.ownRequest(record))
					code := "served"
					if err == nil {
						_, _ = io.Copy(io.Discard, rc)
						rc.Close()
					} else {
						code = errCode(err)
					}
					cancel()
					if gets.Add(1) >= 20 {
						once.Do(ready)
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		n.t.Logf("tiny share fetched: %v", codes)
		once.Do(ready)
		<-ctx.Done()
		return nil
	}}
}

func errCode(err error) string {
	var de *shares.DeniedError
	if errors.As(err, &de) {
		return "denied:" + string(de.Reason)
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}
