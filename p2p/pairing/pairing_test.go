package pairing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
)

func newHost(t *testing.T, name string) host.Host {
	t.Helper()
	seed := sha256.Sum256([]byte("pairing test host " + name))
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Identity(sk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// offer serves a code on a fresh adder; sealed counts the payloads made.
func offer(t *testing.T, clk *clock) (*Offer, Code, *int) {
	t.Helper()
	var sealed int
	o, code, err := NewOffer(newHost(t, "adder"), time.Hour, clk.now, func(j Joiner) ([]byte, error) {
		sealed++
		return []byte("secret for " + j.Device.String()), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o, code, &sealed
}

func TestCodeRoundTrip(t *testing.T) {
	h := newHost(t, "a")
	c, err := NewCode(h.Peerstore().PeerInfo(h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	c.Peer.Addrs = h.Addrs()
	if n := len(strings.Fields(c.Words())); n != Words {
		t.Fatalf("%d words", n)
	}
	got, err := ParseCode(c.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != c.Secret || got.Peer.ID != c.Peer.ID || len(got.Peer.Addrs) != len(c.Peer.Addrs) {
		t.Fatalf("parsed %+v, want %+v", got, c)
	}
	// Spaces and capitals are fine.
	spaced := strings.ToUpper(c.Words()) + "@" + strings.SplitN(c.String(), "@", 2)[1]
	if got, err := ParseCode(spaced); err != nil || got.Secret != c.Secret {
		t.Fatalf("spaced words: %v", err)
	}
	words := strings.Fields(c.Words())
	addr := "@" + strings.SplitN(c.String(), "@", 2)[1]
	other := "zoo"
	if words[3] == other {
		other = "abandon"
	}
	for name, s := range map[string]string{
		"swapped words": strings.Join(append([]string{words[1], words[0]}, words[2:]...), "-") + addr,
		"word replaced": strings.Join(append(append(append([]string{}, words[:3]...), other), words[4:]...), "-") + addr,
		"misspelt":      strings.Join(append([]string{words[0] + "x"}, words[1:]...), "-") + addr,
		"word missing":  strings.Join(words[1:], "-") + addr,
		"no address":    strings.Join(words, "-"),
		"bad address":   strings.Join(words, "-") + "@/ip4/1.2.3.4/tcp/1",
	} {
		if _, err := ParseCode(s); !errors.Is(err, ErrBadCode) {
			// A replaced word passes the 4-bit checksum one time in 16.
			if name == "word replaced" || name == "swapped words" {
				if err == nil {
					continue
				}
			}
			t.Errorf("%s: %v, want ErrBadCode", name, err)
		}
	}
}

// The right code pairs once: the joiner gets the payload, the adder the
// joiner's device and recipient. The same code again is refused (used).
func TestPairOnce(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	o, code, sealed := offer(t, clk)
	ctx := context.Background()
	joiner := newHost(t, "joiner")
	var got []byte
	if err := Join(ctx, joiner, code, recipient, func(p []byte) error { got = p; return nil }); err != nil {
		t.Fatal(err)
	}
	j, err := o.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if j.Device != joiner.ID() || j.Recipient != recipient || !bytes.Equal(got, []byte("secret for "+joiner.ID().String())) {
		t.Fatalf("joined %+v, payload %q", j, got)
	}
	again := newHost(t, "joiner 2")
	if err := Join(ctx, again, code, recipient, func([]byte) error { t.Fatal("opened a payload"); return nil }); !errors.Is(err, ErrUsed) {
		t.Fatalf("reused code: %v, want ErrUsed", err)
	}
	if *sealed != 1 {
		t.Fatalf("sealed %d payloads", *sealed)
	}
}

// A wrong code gets "denied" and nothing else; the offer survives a few,
// and the right code still works after one.
func TestPairWrongCode(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	o, code, sealed := offer(t, clk)
	ctx := context.Background()
	wrong := code
	wrong.Secret[0] ^= 1
	opened := false
	err := Join(ctx, newHost(t, "mallory"), wrong, recipient, func([]byte) error { opened = true; return nil })
	if !errors.Is(err, ErrDenied) || opened || *sealed != 0 {
		t.Fatalf("wrong code: %v (opened %v, sealed %d)", err, opened, *sealed)
	}
	if err := Join(ctx, newHost(t, "joiner"), code, recipient, func([]byte) error { return nil }); err != nil {
		t.Fatalf("right code after a wrong one: %v", err)
	}
	if _, err := o.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// MaxAttempts wrong codes end the offer: even the right code is then
// refused, and Wait says why.
func TestPairTooManyWrong(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	o, code, _ := offer(t, clk)
	ctx := context.Background()
	wrong := code
	wrong.Secret[5] ^= 0x80
	m := newHost(t, "mallory")
	for range MaxAttempts {
		if err := Join(ctx, m, wrong, recipient, func([]byte) error { return nil }); !errors.Is(err, ErrDenied) {
			t.Fatal(err)
		}
	}
	if _, err := o.Wait(ctx); !errors.Is(err, ErrOfferEnded) {
		t.Fatalf("Wait: %v, want ErrOfferEnded", err)
	}
	if err := Join(ctx, newHost(t, "joiner"), code, recipient, func([]byte) error { return nil }); !errors.Is(err, ErrUsed) {
		t.Fatalf("right code after the offer ended: %v", err)
	}
}

// An expired code is refused, and the joiner opens nothing.
func TestPairExpired(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	_, code, sealed := offer(t, clk)
	clk.add(time.Hour)
	opened := false
	err := Join(context.Background(), newHost(t, "joiner"), code, recipient, func([]byte) error { opened = true; return nil })
	if !errors.Is(err, ErrExpired) || opened || *sealed != 0 {
		t.Fatalf("expired code: %v (opened %v, sealed %d)", err, opened, *sealed)
	}
}

// A joiner that cannot open the payload does not confirm: the adder's
// Wait fails, and the code is spent.
func TestPairJoinerFails(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	o, code, _ := offer(t, clk)
	ctx := context.Background()
	boom := errors.New("boom")
	if err := Join(ctx, newHost(t, "joiner"), code, recipient, func([]byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Join: %v", err)
	}
	if _, err := o.Wait(ctx); err == nil {
		t.Fatal("the adder recorded a device that never finished")
	}
}

// A device that does not hold the code cannot pose as the adder: the
// joiner refuses its welcome and opens nothing.
func TestPairFakeAdder(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	_, code, _ := offer(t, clk)
	// Mallory serves another code at the address the joiner was given.
	fake, fcode, err := NewOffer(newHost(t, "fake"), time.Hour, clk.now, func(Joiner) ([]byte, error) { return []byte("evil"), nil })
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	code.Peer = fcode.Peer
	opened := false
	err = Join(context.Background(), newHost(t, "joiner"), code, recipient, func([]byte) error { opened = true; return nil })
	if err == nil || opened {
		t.Fatalf("fake adder: %v (opened %v)", err, opened)
	}
}
