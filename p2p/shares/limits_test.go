package shares

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

// rawStream opens a shares stream from a and writes pre, as an attacker
// speaking the protocol by hand would.
func rawStream(t *testing.T, a *actor, to peer.ID, pre []byte) network.Stream {
	t.Helper()
	s, err := a.h.NewStream(context.Background(), to, ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	if _, err := s.Write(pre); err != nil {
		t.Fatal(err)
	}
	return s
}

func frame(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := wire.Write(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dripUntilReset writes one byte every interval to s until the peer resets
// the stream, and returns how long that took (or fails after limit).
func dripUntilReset(t *testing.T, s network.Stream, next func() byte, interval, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	reset := make(chan struct{})
	go func() {
		defer close(reset)
		io.Copy(io.Discard, s) // returns when the peer resets (or closes)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.After(limit)
	for {
		select {
		case <-reset:
			return time.Since(start)
		case <-deadline:
			t.Fatalf("the peer still holds the stream after %s of a byte every %s", limit, interval)
		case <-tick.C:
			_, _ = s.Write([]byte{next()})
		}
	}
}

// A stranger sending a byte every 2 s renewed the idle deadline forever
// and held a transfer slot; now it is reset once its rate stays under the
// minimum for the grace period: within 10 s for the request, and about
// 10 s after the share begins (the bound asserted is generous).
func TestSlowlorisIsReset(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		req := frame(t, request{Op: OpPut, Record: f.record})
		s := rawStream(t, f.stranger, f.peer.h.ID(), req[:1])
		i := 1
		took := dripUntilReset(t, s, func() byte { i++; return req[min(i-1, len(req)-1)] }, 2*time.Second, 25*time.Second)
		t.Logf("request at a byte every 2 s: reset after %s", took.Round(time.Millisecond))
	})
	t.Run("share bytes", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		pre := append(frame(t, request{Op: OpPut, Record: f.record}), fakeShare(t, f.record, nil)...)
		s := rawStream(t, f.stranger, f.peer.h.ID(), pre)
		took := dripUntilReset(t, s, func() byte { return 'x' }, 2*time.Second, 25*time.Second)
		t.Logf("share at a byte every 2 s: reset after %s", took.Round(time.Millisecond))
	})
}

// readBusy reads the peer's answer on a raw stream and reports whether it
// is "busy".
func readBusy(t *testing.T, s network.Stream) bool {
	t.Helper()
	var r response
	if err := wire.Read(s, bufio.NewReader(s), maxFrame, &r); err != nil {
		return false
	}
	return r.Code == "busy"
}

// Strangers opening many puts (16 held every slot of the peer before,
// reads included) get a few each and "busy" for the rest at once, and
// cannot stop another identity's has, get or put, nor their own reads.
// Each stranger opens 4 streams, what the resource manager lets a
// stranger open (p2p/node), so that the slots here decide.
func TestPutsCannotStarveOthers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	data := fakeShare(t, f.record, []byte("ciphertext"))
	id, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	lim := DefaultLimits().Put
	const strangers, each = 10, 4
	const attack = strangers * each
	var attackers []*actor
	for i := range strangers {
		a := newActor(t, fmt.Sprintf("stranger %d", i), false)
		if err := a.h.Connect(ctx, peer.AddrInfo{ID: f.peer.h.ID(), Addrs: f.peer.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		attackers = append(attackers, a)
	}
	pre := append(frame(t, request{Op: OpPut, Record: f.record}), fakeShare(t, f.record, nil)...)
	// Every stream is fed at 80 KiB/s, above the minimum rate, so that the
	// ones the peer takes stay held for the whole test; the others are
	// refused with "busy" at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	busy := make(chan bool, attack)
	for i := range attack {
		s := rawStream(t, attackers[i/each], f.peer.h.ID(), pre)
		answered := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(answered)
			busy <- readBusy(t, s)
		}()
		go func() {
			defer wg.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			chunk := make([]byte, 16<<10)
			for {
				select {
				case <-stop:
					return
				case <-answered:
					return
				case <-tick.C:
					_ = s.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = s.Write(chunk)
				}
			}
		}()
	}
	timeout := time.After(20 * time.Second)
	for range attack - strangers*lim.PerRemote {
		select {
		case b := <-busy:
			if !b {
				t.Fatal("a stream over the stranger's limit was not answered busy")
			}
		case <-timeout:
			t.Fatalf("fewer than %d of %d streams were refused: a stranger holds more than its %d", attack-strangers*lim.PerRemote, attack, lim.PerRemote)
		}
	}
	// While they are held: the owner's get and has, another identity's
	// put, and the stranger's own has.
	if ok, err := Has(ctx, f.patient.h, f.peer.h.ID(), id); err != nil || !ok {
		t.Fatalf("has during the attack: %v, %v", ok, err)
	}
	rc, err := Get(ctx, f.patient.h, f.peer.h.ID(), id, f.request(t, f.patient, "patient/*.rs", "PATRQT"))
	if err != nil {
		t.Fatalf("the owner's get during the attack: %v", err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, data) {
		t.Fatal("served bytes differ")
	}
	other := "ffeeddccbbaa99887766554433221100"
	if _, err := Put(ctx, f.clinician.h, f.peer.h.ID(), other, bytes.NewReader(fakeShare(t, other, []byte("x")))); err != nil {
		t.Fatalf("another identity's put during the attack: %v", err)
	}
	if ok, err := Has(ctx, attackers[0].h, f.peer.h.ID(), id); err != nil || !ok {
		t.Fatalf("a stranger's own has: %v, %v", ok, err)
	}
	// A stranger's next put hears "busy" at once, while still sending its
	// share: the client reads the answer as it sends.
	big := make([]byte, 8<<20)
	rand.Read(big)
	start := time.Now()
	_, err = Put(ctx, attackers[0].h, f.peer.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, big)))
	if !errors.Is(err, ErrBusy) || !errors.Is(err, ErrRemote) {
		t.Fatalf("a put over the limit: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the busy answer took %s", took)
	}
}

// A peer that stalls a transfer is reset by the client too, so that a
// reader moves on to another holder: a get whose bytes come at one every
// 2 s, and a has whose answer never comes.
func TestClientResetsStallingPeer(t *testing.T) {
	f := newFixture(t)
	bad := newActor(t, "stalling peer", true)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	bad.h.SetStreamHandler(ID, func(s network.Stream) {
		defer s.Reset()
		var req request
		if err := wire.Read(s, bufio.NewReader(s), maxFrame, &req); err != nil {
			return
		}
		if req.Op == OpGet {
			if err := wire.Write(s, response{OK: true, Size: 1 << 20}); err != nil {
				return
			}
			drip := time.NewTicker(2 * time.Second)
			defer drip.Stop()
			for {
				select {
				case <-stop:
					return
				case <-drip.C:
				}
				if _, err := s.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}
		<-stop // no answer at all
	})
	if err := f.clinician.h.Connect(context.Background(), peer.AddrInfo{ID: bad.h.ID(), Addrs: bad.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var id vault.ShareID
	tests := []struct {
		name string
		call func() error
	}{
		{"get", func() error {
			rc, err := Get(ctx, f.clinician.h, bad.h.ID(), id, f.request(t, f.clinician, "patient/*.rs", "TREAT"))
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			return err
		}},
		{"has", func() error { _, err := Has(ctx, f.clinician.h, bad.h.ID(), id); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := tc.call()
			if !errors.Is(err, wire.ErrTooSlow) {
				t.Fatalf("err = %v, want ErrTooSlow", err)
			}
			took := time.Since(start)
			t.Logf("%s from a stalling peer: gave up after %s", tc.name, took.Round(time.Millisecond))
			if took > 25*time.Second {
				t.Fatalf("gave up after %s", took)
			}
		})
	}
}
