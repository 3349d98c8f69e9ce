// Package witness is the libp2p protocol by which any peer witnesses feed
// checkpoints: it cosigns a feed's checkpoint (origin, size, root) after
// checking that it extends the last checkpoint it cosigned for that feed,
// as C2SP tlog-witness does, and keeps only that latest checkpoint per
// feed (constant space per feed).
//
// Wire format (version 1, protocol ID "/medwallet/witness/1.0.0"). One
// request and one answer per stream, each one frame (package wire: a
// uvarint length, then canonical CBOR, strictly decoded; a request of at
// most consent.MaxCheckpointNote + 4 KiB).
//
//	request  {1: checkpoint note (bytes), 2: old size (uint, omitted when 0),
//	          3: consistency proof ([bytes(32)], at most 63, omitted when empty),
//	          4: checkpoint public key (bytes(32))}
//	answer   {1: code (text), 2: cosignature line (bytes), 3: the witness's
//	          size for the feed (uint), 4: the witness's latest cosigned
//	          note (bytes), 5: detail (text)}
//
// The note is a consent checkpoint note signed by the key of field 4,
// whose origin the key determines (consent.CheckpointOrigin): the witness
// learns a pseudonymous origin, a key, sizes and roots, never whose feed
// it is. The old size is the size of the witness's latest checkpoint for
// that origin as the client believes it (0 for none), and the proof is
// the consistency proof from that size to the note's.
//
// Codes: "ok" (field 2 holds the witness's C2SP tlog-cosignature/v1 line,
// by the peer's libp2p Ed25519 key named consent.WitnessName(peer ID));
// "conflict" (the old size is not the witness's, or the note has the
// witness's size with another root, or a smaller size: fields 3 and 4
// hold the witness's state, and a note at the same size with another root
// is, with the request's note, a proof of a fork); "bad-proof" (the proof
// does not link the witness's checkpoint to the note: fields 3 and 4 as
// for conflict); "bad-signature" (the note is malformed or not signed by
// the key); "bad-request"; "rate-limited" (too many requests from this
// remote identity); "busy" (too many streams, or the witness keeps as many
// feeds as it may and this one is new).
package witness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// ID is the protocol ID.
const ID protocol.ID = "/medwallet/witness/1.0.0"

// Answer codes.
const (
	CodeOK           = "ok"
	CodeConflict     = "conflict"
	CodeBadProof     = "bad-proof"
	CodeBadSignature = "bad-signature"
	CodeBadRequest   = "bad-request"
	CodeRateLimited  = "rate-limited"
	CodeBusy         = "busy"
)

const (
	maxRequest  = consent.MaxCheckpointNote + 4096
	maxResponse = 2*consent.MaxCheckpointNote + 4096
	// MaxProof bounds the hashes of a consistency proof: a proof between
	// trees of at most 2^62 leaves has fewer.
	MaxProof = 63
)

// Errors a client sees; each wraps ErrRemote.
var (
	ErrRemote       = errors.New("witness refused")
	ErrConflict     = errors.New("witness holds a conflicting checkpoint")
	ErrBadProof     = errors.New("witness: consistency proof does not verify")
	ErrBadSignature = errors.New("witness: checkpoint signature does not verify")
	ErrRateLimited  = errors.New("witness: rate limited")
	ErrBusy         = errors.New("witness busy")
)

// Request asks a witness to cosign a checkpoint.
type Request struct {
	Note    []byte   `cbor:"1,keyasint"`
	OldSize uint64   `cbor:"2,keyasint,omitempty"`
	Proof   [][]byte `cbor:"3,keyasint,omitempty"`
	Key     []byte   `cbor:"4,keyasint"`
}

// Response is a witness's answer.
type Response struct {
	Code        string `cbor:"1,keyasint"`
	Cosignature []byte `cbor:"2,keyasint,omitempty"`
	Size        uint64 `cbor:"3,keyasint,omitempty"`
	Latest      []byte `cbor:"4,keyasint,omitempty"`
	Error       string `cbor:"5,keyasint,omitempty"`
}

// DecodeRequest strictly decodes a request and checks its sizes (not its
// signature).
func DecodeRequest(b []byte) (*Request, error) {
	var r Request
	if err := consent.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("witness request: %w", err)
	}
	switch {
	case len(r.Note) == 0 || len(r.Note) > consent.MaxCheckpointNote:
		return nil, fmt.Errorf("witness request: note of %d bytes", len(r.Note))
	case len(r.Key) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("witness request: key of %d bytes", len(r.Key))
	case len(r.Proof) > MaxProof:
		return nil, fmt.Errorf("witness request: proof of %d hashes", len(r.Proof))
	}
	for _, h := range r.Proof {
		if len(h) != len(consent.Hash{}) {
			return nil, fmt.Errorf("witness request: proof hash of %d bytes", len(h))
		}
	}
	return &r, nil
}

// Limits bound the witness.
type Limits struct {
	// Streams bounds the streams in progress per remote and in total.
	Streams wire.Limit
	// Rate and Burst are the requests a remote identity may make per
	// second, and at once.
	Rate  float64
	Burst int
	// MaxLogs bounds the feeds the witness keeps a checkpoint of; a
	// request for a new feed beyond it is answered busy.
	MaxLogs int
	// Budget bounds the time of a request and of its answer.
	Budget wire.Budget
}

// DefaultMaxLogs is the default Limits.MaxLogs: about 1 GB of disk (a
// record is about 500 bytes, about 1 KiB in bbolt).
const DefaultMaxLogs = 1_000_000

// DefaultLimits are the limits of a Service unless WithLimits says
// otherwise.
func DefaultLimits() Limits {
	return Limits{
		Streams: wire.Limit{PerRemote: 2, Total: 256},
		Rate:    10, Burst: 20,
		MaxLogs: DefaultMaxLogs,
		Budget:  wire.Budget{Total: 20 * time.Second, Grace: 5 * time.Second, MinRate: 4 << 10, Window: 5 * time.Second},
	}
}

// Option configures a Service.
type Option func(*Service)

// WithLimits replaces DefaultLimits.
func WithLimits(l Limits) Option { return func(s *Service) { s.lim = l } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the clock of the cosignatures (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// Service witnesses checkpoints on a peer.
type Service struct {
	h      host.Host
	st     Store
	signer consent.Signer
	lim    Limits
	log    *slog.Logger
	now    func() time.Time
	slots  *wire.Slots

	mu    sync.Mutex // serialises checks and updates of the store
	rates *wire.RemoteRates

	hashes FeedHashes // sub-feeds this peer signs checkpoints of (sign.go); nil: none
}

// NewService registers the handler on h. signer is the peer's identity:
// its key makes the cosignatures.
func NewService(h host.Host, st Store, signer consent.Signer, opts ...Option) *Service {
	s := &Service{h: h, st: st, signer: signer, lim: DefaultLimits(), log: slog.New(slog.DiscardHandler),
		now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.slots = wire.NewSlots(s.lim.Streams)
	s.rates = wire.NewRemoteRates(s.lim.Rate, s.lim.Burst)
	h.SetStreamHandler(ID, s.handle)
	if s.hashes != nil {
		h.SetStreamHandler(SignID, s.handleSign)
	}
	return s
}

// Close removes the handlers (the store is the caller's to close).
func (s *Service) Close() {
	s.h.RemoveStreamHandler(ID)
	if s.hashes != nil {
		s.h.RemoveStreamHandler(SignID)
	}
}

func (s *Service) allow(p peer.ID) bool { return s.rates.Allow(p) }

// replier returns the function a handler answers with: one frame written
// on t within a fresh budget b, then the stream closed (reset if the
// write fails).
func replier[R any](st network.Stream, t *wire.Transfer, b wire.Budget) func(R) {
	return func(r R) {
		t.Start(b)
		if err := wire.Write(t, r); err != nil {
			st.Reset()
			return
		}
		st.Close()
	}
}

func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	t := wire.NewTransfer(st, s.lim.Budget)
	answer := replier[Response](st, t, s.lim.Budget)
	release, ok := s.slots.Acquire(p)
	if !ok {
		answer(Response{Code: CodeBusy, Error: "too many streams"})
		return
	}
	defer release()
	b, done, err := wire.ReadFrame(st, bufio.NewReader(t), maxRequest)
	if errors.Is(err, network.ErrResourceLimitExceeded) {
		answer(Response{Code: CodeBusy, Error: "no memory for the request"})
		return
	}
	if err != nil {
		s.log.Debug("witness request failed", "peer", p.ShortString(), "err", err)
		st.Reset()
		return
	}
	req, err := DecodeRequest(b)
	done()
	if err != nil {
		answer(Response{Code: CodeBadRequest, Error: err.Error()})
		return
	}
	if !s.allow(p) {
		answer(Response{Code: CodeRateLimited, Error: "too many requests"})
		return
	}
	answer(s.Witness(req))
}

// Witness checks one request against the store and cosigns it, or says
// why not. It is the handler's logic without the stream.
func (s *Service) Witness(req *Request) Response {
	sc, err := consent.OpenCheckpoint(req.Note, req.Key)
	if err != nil {
		return Response{Code: CodeBadSignature, Error: err.Error()}
	}
	proof := make([]consent.Hash, len(req.Proof))
	for i, h := range req.Proof {
		copy(proof[i][:], h)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.st.Get(sc.Origin)
	if err != nil {
		s.log.Warn("witness store read failed", "err", err)
		return Response{Code: CodeBusy, Error: "internal error"}
	}
	state := func(code, why string) Response {
		r := Response{Code: code, Error: why}
		if old != nil {
			r.Size, r.Latest = old.Size, old.Note
		}
		return r
	}
	switch {
	case old != nil && !equalKey(old.Key, req.Key):
		// The origin is a hash of the key: only a hash collision gets here.
		return state(CodeConflict, "another key for this origin")
	case old == nil && req.OldSize != 0:
		return state(CodeConflict, "no checkpoint of this log")
	case old != nil && req.OldSize != old.Size:
		return state(CodeConflict, fmt.Sprintf("old size %d, witness has %d", req.OldSize, old.Size))
	case old != nil && sc.Size < old.Size:
		return state(CodeConflict, "smaller than the witnessed checkpoint")
	case old != nil && sc.Size == old.Size && sc.Root != old.Root:
		return state(CodeConflict, "another root at the witnessed size")
	case old != nil:
		if err := consent.CheckConsistency(proof, old.Size, old.Root, sc.Size, sc.Root); err != nil {
			return state(CodeBadProof, err.Error())
		}
	}
	line, err := consent.Cosign(req.Note, s.signer, s.now())
	if err != nil {
		return Response{Code: CodeBadSignature, Error: err.Error()}
	}
	rec := &Record{Key: req.Key, Size: sc.Size, Root: sc.Root, Note: append(ownSigned(req.Note, sc.Origin), line...)}
	if err := s.st.Put(sc.Origin, rec, s.lim.MaxLogs); err != nil {
		if errors.Is(err, ErrFull) {
			return Response{Code: CodeBusy, Error: "this witness keeps as many logs as it may"}
		}
		s.log.Warn("witness store write failed", "err", err)
		return Response{Code: CodeBusy, Error: "internal error"}
	}
	if old == nil || old.Size != sc.Size {
		s.log.Debug("checkpoint witnessed", "size", sc.Size)
	}
	return Response{Code: CodeOK, Cosignature: line, Size: sc.Size}
}

func equalKey(a, b []byte) bool { return string(a) == string(b) }

// ownSigned returns the note's text and the log's own signature line,
// dropping other witnesses' lines: what the witness keeps is bounded.
// msg opened, so it has a signature block.
func ownSigned(msg []byte, origin string) []byte {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	out := append([]byte(nil), msg[:i+2]...)
	prefix := "— " + origin + " "
	for _, line := range strings.SplitAfter(string(msg[i+2:]), "\n") {
		if strings.HasPrefix(line, prefix) {
			return append(out, line...)
		}
	}
	return out
}

// Submit sends req to witness p and returns its answer. An answer other
// than ok is also an error wrapping ErrRemote and the code's error; the
// answer then still carries the witness's state.
func Submit(ctx context.Context, h host.Host, p peer.ID, req *Request) (*Response, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "medwallet witness: small request"), p, ID)
	if err != nil {
		return nil, err
	}
	t := wire.NewTransfer(st, clientBudget(ctx))
	if err := wire.Write(t, req); err != nil {
		st.Reset()
		return nil, err
	}
	_ = st.CloseWrite()
	var resp Response
	if err := wire.Read(st, bufio.NewReader(t), maxResponse, &resp); err != nil {
		st.Reset()
		return nil, err
	}
	st.Close()
	return &resp, CodeError(p, resp)
}

// clientBudget is the default budget, within ctx's deadline.
func clientBudget(ctx context.Context) wire.Budget {
	b := DefaultLimits().Budget
	if d, ok := ctx.Deadline(); ok {
		if left := max(time.Until(d), time.Nanosecond); left < b.Total {
			b.Total = left
		}
	}
	return b
}

// CodeError is the client's error for an answer: nil for ok.
func CodeError(p peer.ID, r Response) error {
	var kind error
	switch r.Code {
	case CodeOK:
		return nil
	case CodeConflict:
		kind = ErrConflict
	case CodeBadProof:
		kind = ErrBadProof
	case CodeBadSignature:
		kind = ErrBadSignature
	case CodeRateLimited:
		kind = ErrRateLimited
	case CodeBusy:
		kind = ErrBusy
	default:
		return fmt.Errorf("witness %s: %w: %s: %s", p.ShortString(), ErrRemote, r.Code, r.Error)
	}
	return fmt.Errorf("witness %s: %w: %w: %s", p.ShortString(), ErrRemote, kind, r.Error)
}
