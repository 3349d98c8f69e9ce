// Package pairing is the libp2p protocol that pairs a new device with a
// patient's existing one, authenticated by a one-time code.
//
// # Protocol /medwallet/pairing/1.0.0
//
// The existing device (the adder) makes a Code: a fresh 128-bit secret S
// and its own peer ID and addresses, shown as 12 BIP-39 words and a QR
// code. The new device (the joiner) dials the adder's peer ID (the Noise
// handshake authenticates both peer IDs) with its own device key as its
// libp2p identity. Both derive
//
//	K = HKDF-SHA256(secret S, salt "", info "medwallet pairing v1")
//	T = adder's peer ID || "\n" || joiner's peer ID || "\n" || joiner's age recipient
//
// and one stream carries three frames (canonical CBOR, as p2p/wire):
//
//  1. joiner -> adder, hello {1 age recipient, 2 proof}: proof is
//     HMAC-SHA256(K, "join\n" || T).
//  2. adder -> joiner, {1 code} on a refusal, else welcome {2 proof,
//     3 payload}: proof is HMAC-SHA256(K, "add\n" || T || SHA-256(payload)).
//     The adder checks the joiner's proof first (in constant time), and
//     sends nothing derived from anything secret unless it holds: a
//     wrong code gets code "denied" and nothing else. Only with a right
//     proof does it say "expired" or "used". The payload is what the
//     caller (the wallet) seals to the joiner's age recipient.
//  3. joiner -> adder, done {1 ok}: the joiner checked the adder's proof,
//     and opened and stored the payload.
//
// A code is single-use: the first right proof spends it, whatever comes
// next. It expires (DefaultTTL), and a handful of wrong proofs
// (MaxAttempts) also end the offer. A joiner that fails at any step keeps
// nothing: it stores the payload only after the adder's proof holds and
// the caller's open succeeded, and the adder records the device only
// after done.
//
// Nothing here is new cryptography: HKDF and HMAC from the standard
// library over libp2p's authenticated channel, the code's secret as the
// key. It is not a PAKE: the code must carry 128 bits, and does.
package pairing

import (
	"bufio"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/p2p/wire"
)

// ID is the protocol ID.
const ID protocol.ID = "/medwallet/pairing/1.0.0"

const (
	// DefaultTTL is how long a code stays valid.
	DefaultTTL = 10 * time.Minute
	// MaxAttempts is how many wrong proofs end an offer.
	MaxAttempts = 5
	// MaxPayload bounds the welcome's payload.
	MaxPayload = 64 << 10
	// maxRecipient bounds the joiner's age recipient.
	maxRecipient  = 4096
	streamTimeout = 30 * time.Second
)

// Refusal codes in a response.
const (
	CodeDenied  = "denied"  // the joiner's proof is wrong: another code, or a typo that still checks out
	CodeExpired = "expired" // the code expired
	CodeUsed    = "used"    // the code was used already
	CodeBusy    = "busy"    // another pairing is in progress on this code
)

// Errors the joiner sees; each wraps ErrRefused or stands alone.
var (
	ErrRefused     = errors.New("pairing refused")
	ErrDenied      = fmt.Errorf("%w: the other device does not know this code", ErrRefused)
	ErrExpired     = fmt.Errorf("%w: the code expired", ErrRefused)
	ErrUsed        = fmt.Errorf("%w: the code was used already", ErrRefused)
	ErrBusy        = fmt.Errorf("%w: another device is pairing with this code", ErrRefused)
	ErrAdder       = errors.New("the other device did not prove that it knows the code")
	ErrUnreachable = errors.New("cannot reach the device that showed the code")
)

type hello struct {
	Recipient string `cbor:"1,keyasint"`
	Proof     []byte `cbor:"2,keyasint"`
}

type welcome struct {
	Code    string `cbor:"1,keyasint,omitempty"`
	Proof   []byte `cbor:"2,keyasint,omitempty"`
	Payload []byte `cbor:"3,keyasint,omitempty"`
}

type done struct {
	OK bool `cbor:"1,keyasint"`
}

func key(secret [SecretSize]byte) []byte {
	k, err := hkdf.Key(sha256.New, secret[:], nil, "medwallet pairing v1", 32)
	if err != nil {
		panic(err) // 32 bytes of SHA-256 HKDF never fail
	}
	return k
}

func transcript(adder, joiner peer.ID, recipient string) []byte {
	return []byte(adder.String() + "\n" + joiner.String() + "\n" + recipient)
}

func joinProof(k []byte, t []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("join\n"))
	m.Write(t)
	return m.Sum(nil)
}

func addProof(k []byte, t, payload []byte) []byte {
	h := sha256.Sum256(payload)
	m := hmac.New(sha256.New, k)
	m.Write([]byte("add\n"))
	m.Write(t)
	m.Write(h[:])
	return m.Sum(nil)
}

// Joiner is a device that asks to join: its peer ID (its device key) and
// its age recipient.
type Joiner struct {
	Device    peer.ID
	Recipient string
}

// Offer is a code the adder serves until it is used, expires or is
// cancelled. Make it with NewOffer; Wait for the outcome.
type Offer struct {
	h       host.Host
	k       []byte
	expires time.Time
	now     func() time.Time
	seal    func(Joiner) ([]byte, error)

	mu       sync.Mutex
	spent    bool
	busy     bool
	attempts int
	result   chan result
}

type result struct {
	j   Joiner
	err error
}

// ErrOfferEnded reports an offer that ended without a device: it expired,
// or too many wrong codes were tried.
var ErrOfferEnded = errors.New("no device joined")

// NewOffer registers the pairing handler on h for a fresh code that
// expires after ttl (DefaultTTL if 0). seal returns the payload for a
// joiner that proved the code (the caller encrypts it to the joiner's
// recipient); it runs at most once. now is the clock (nil: time.Now).
// Close removes the handler.
func NewOffer(h host.Host, ttl time.Duration, now func() time.Time, seal func(Joiner) ([]byte, error)) (*Offer, Code, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	code, err := NewCode(peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		return nil, Code{}, err
	}
	o := &Offer{h: h, k: key(code.Secret), expires: now().Add(ttl), now: now, seal: seal, result: make(chan result, 1)}
	h.SetStreamHandler(ID, o.handle)
	return o, code, nil
}

// Expires is when the code expires.
func (o *Offer) Expires() time.Time { return o.expires }

// Close removes the handler: the code is dead from then on.
func (o *Offer) Close() { o.h.RemoveStreamHandler(ID) }

// Wait returns the device that joined, once it confirmed; or an error
// when the code expires first (ErrOfferEnded), too many wrong codes were
// tried, the joiner failed after the code was spent, or ctx ends.
func (o *Offer) Wait(ctx context.Context) (Joiner, error) {
	t := time.NewTimer(o.expires.Sub(o.now()))
	defer t.Stop()
	select {
	case r := <-o.result:
		return r.j, r.err
	case <-t.C:
		o.mu.Lock()
		busy := o.busy
		o.spent = true
		o.mu.Unlock()
		if busy {
			// A device proved the code just in time: let it finish.
			select {
			case r := <-o.result:
				return r.j, r.err
			case <-ctx.Done():
				return Joiner{}, ctx.Err()
			}
		}
		select {
		case r := <-o.result:
			return r.j, r.err
		default:
		}
		return Joiner{}, fmt.Errorf("%w: the code expired", ErrOfferEnded)
	case <-ctx.Done():
		return Joiner{}, ctx.Err()
	}
}

func (o *Offer) finish(r result) {
	select {
	case o.result <- r:
	default:
	}
}

// admit decides on a hello: "" to go on (the code is now spent), or a
// refusal code.
func (o *Offer) admit(ok bool) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !ok {
		if o.attempts++; o.attempts >= MaxAttempts && !o.spent {
			o.spent = true
			o.finish(result{err: fmt.Errorf("%w: %d wrong codes were tried", ErrOfferEnded, o.attempts)})
		}
		return CodeDenied
	}
	switch {
	case o.busy:
		return CodeBusy
	case o.spent:
		return CodeUsed
	case !o.now().Before(o.expires):
		o.spent = true
		return CodeExpired
	}
	o.spent, o.busy = true, true
	return ""
}

func (o *Offer) handle(st network.Stream) {
	_ = st.SetDeadline(time.Now().Add(streamTimeout))
	remote := st.Conn().RemotePeer()
	r := bufio.NewReader(st)
	var hi hello
	if err := wire.Read(st, r, maxRecipient+256, &hi); err != nil || len(hi.Recipient) > maxRecipient {
		st.Reset()
		return
	}
	t := transcript(o.h.ID(), remote, hi.Recipient)
	ok := hmac.Equal(hi.Proof, joinProof(o.k, t))
	if c := o.admit(ok); c != "" {
		_ = wire.Write(st, &welcome{Code: c})
		_ = st.Close()
		return
	}
	defer func() {
		o.mu.Lock()
		o.busy = false
		o.mu.Unlock()
	}()
	j := Joiner{Device: remote, Recipient: hi.Recipient}
	payload, err := o.seal(j)
	if err != nil {
		_ = wire.Write(st, &welcome{Code: "internal"})
		st.Reset()
		o.finish(result{err: fmt.Errorf("pairing: preparing what the new device receives: %w", err)})
		return
	}
	if err := wire.Write(st, &welcome{Proof: addProof(o.k, t, payload), Payload: payload}); err != nil {
		st.Reset()
		o.finish(result{err: fmt.Errorf("pairing: the new device went away: %w", err)})
		return
	}
	var d done
	if err := wire.Read(st, r, 64, &d); err != nil || !d.OK {
		st.Reset()
		o.finish(result{err: fmt.Errorf("pairing: the new device did not finish (the code is spent; make a new one)")})
		return
	}
	_ = st.Close()
	o.finish(result{j: j})
}

// Join runs the joiner's side on h (whose identity is the new device's
// key) against the device code names: it proves the code, checks the
// adder's proof, and hands the payload to open; only if open succeeds does
// it tell the adder it is done. Nothing is kept on a failure: open is
// where the caller stores what it received.
func Join(ctx context.Context, h host.Host, code Code, recipient string, open func(payload []byte) error) error {
	if len(code.Peer.Addrs) > 0 {
		h.Peerstore().AddAddrs(code.Peer.ID, code.Peer.Addrs, time.Minute)
	}
	if err := h.Connect(ctx, code.Peer); err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	st, err := h.NewStream(ctx, code.Peer.ID, ID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	} else {
		_ = st.SetDeadline(time.Now().Add(streamTimeout))
	}
	k := key(code.Secret)
	t := transcript(code.Peer.ID, h.ID(), recipient)
	if err := wire.Write(st, &hello{Recipient: recipient, Proof: joinProof(k, t)}); err != nil {
		st.Reset()
		return fmt.Errorf("pairing: %w", err)
	}
	var w welcome
	r := bufio.NewReader(st)
	if err := wire.Read(st, r, MaxPayload+256, &w); err != nil {
		st.Reset()
		return fmt.Errorf("pairing: %w", err)
	}
	switch w.Code {
	case "":
	case CodeDenied:
		return ErrDenied
	case CodeExpired:
		return ErrExpired
	case CodeUsed:
		return ErrUsed
	case CodeBusy:
		return ErrBusy
	default:
		return fmt.Errorf("%w: %q", ErrRefused, w.Code)
	}
	if !hmac.Equal(w.Proof, addProof(k, t, w.Payload)) {
		st.Reset()
		return ErrAdder
	}
	if err := open(w.Payload); err != nil {
		st.Reset()
		return err
	}
	if err := wire.Write(st, &done{OK: true}); err != nil {
		st.Reset()
		return fmt.Errorf("pairing: %w", err)
	}
	_ = st.CloseWrite()
	// Wait for the adder to close, so that it has recorded the device.
	_, _ = r.ReadByte()
	return nil
}
