// Package manifests is the libp2p protocol that replicates encrypted record
// manifests on peers, so that a patient who restores only the identity can
// rebuild the wallet, and a grantee can find the shares of a record.
//
// A manifest envelope is age-encrypted and signed by the owner (see the
// vault package); the peer stores it as opaque bytes under (owner, record,
// recipient). Only the owner (the stream's authenticated remote peer) puts
// and deletes; a list returns the copies addressed to the asking peer, or
// every copy when the owner asks, or the copies addressed to a recipient
// the request names: a role grant's copies are addressed to the role's
// pseudonymous ID and read by every holder of the role's key. Copies are
// encrypted and signed, and who holds a grant is on the ledger anyway, so
// naming a recipient reveals nothing more.
package manifests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

// ID is the protocol ID.
const ID protocol.ID = "/medwallet/manifests/1.0.0"

const (
	maxRequest  = store.MaxManifest + 4096
	maxResponse = 64 << 20
	timeout     = 30 * time.Second
)

// Errors a client sees.
var (
	// ErrRemote reports a refusal by the peer.
	ErrRemote = errors.New("peer refused")
	// ErrBusy reports a peer that refused for now (code "busy": too many
	// streams from this client or from everyone, or no memory left for
	// the frame); it also wraps ErrRemote.
	ErrBusy = errors.New("peer busy")
)

type request struct {
	Op        string     `cbor:"1,keyasint"`
	Owner     consent.ID `cbor:"2,keyasint,omitempty"`
	Record    string     `cbor:"3,keyasint,omitempty"`
	Recipient consent.ID `cbor:"4,keyasint,omitempty"`
	Envelope  []byte     `cbor:"5,keyasint,omitempty"`
}

// Copy is one manifest envelope as listed.
type Copy struct {
	Record    string     `cbor:"1,keyasint"`
	Recipient consent.ID `cbor:"2,keyasint"`
	Envelope  []byte     `cbor:"3,keyasint"`
}

type response struct {
	OK     bool   `cbor:"1,keyasint,omitempty"`
	Error  string `cbor:"2,keyasint,omitempty"`
	Copies []Copy `cbor:"3,keyasint,omitempty"`
	Code   string `cbor:"4,keyasint,omitempty"` // busy, or a put's admission refusal (store.Code)
}

// Store is the disk a Service keeps manifest copies in; p2p/store/boltstore
// is one.
type Store interface {
	PutManifest(owner consent.ID, record string, recipient consent.ID, envelope []byte) error
	// Manifests lists owner's copies readable by recipient ("" means any),
	// for one record or all ("").
	Manifests(owner consent.ID, record string, recipient consent.ID) ([]store.ManifestCopy, error)
	DeleteManifests(owner consent.ID, record string) error
}

// Service serves the protocol on a peer.
type Service struct {
	h     host.Host
	st    Store
	log   *slog.Logger
	lim   Limits
	slots *wire.Slots
	pool  *wire.Pool
}

// NewService registers the handler on h.
func NewService(h host.Host, st Store, log *slog.Logger, opts ...Option) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{h: h, st: st, log: log, lim: DefaultLimits()}
	for _, o := range opts {
		o(s)
	}
	s.slots = wire.NewSlots(s.lim.Streams)
	s.pool = wire.NewPool(s.lim.Memory, smallFrame, s.lim.Memory/8)
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler.
func (s *Service) Close() { s.h.RemoveStreamHandler(ID) }

// handle takes a stream slot for the remote (or answers "busy" at once),
// reads the request within the request budget into memory reserved in
// the stream's scope and the service's pool, its decoded copy in the pool
// (or answers "busy" before allocating either), and answers within the
// transfer budget.
func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	t := wire.NewTransfer(st, s.lim.Request)
	release, ok := s.slots.Acquire(p)
	if !ok {
		s.busy(st, t, "too many streams")
		return
	}
	defer release()
	var req request
	scoped := s.pool.Scoped(st)
	held, err := wire.ReadKeep(scoped, bufio.NewReader(t), maxRequest, &req, s.pool.Take)
	if errors.Is(err, network.ErrResourceLimitExceeded) {
		s.busy(st, t, "no memory for the request")
		return
	}
	if err != nil {
		s.log.Debug("manifests request failed", "peer", p.ShortString(), "err", err)
		st.Reset()
		return
	}
	answered := func() {}
	resp := s.serve(consent.ID(p.String()), req, &answered)
	held()
	defer answered()
	t.Start(s.lim.Transfer)
	if err := wire.Write(t, resp); err != nil {
		s.log.Debug("manifests answer failed", "peer", p.ShortString(), "err", err)
		st.Reset()
		return
	}
	st.Close()
}

// busy refuses a stream with code "busy". It closes rather than resets, so
// the answer is not dropped; the client stops sending when it reads it.
func (s *Service) busy(st network.Stream, t *wire.Transfer, why string) {
	s.log.Debug("manifests stream refused: busy", "peer", st.Conn().RemotePeer().ShortString(), "why", why)
	t.Start(s.lim.Transfer)
	_ = wire.Write(t, response{Error: "busy: " + why, Code: "busy"})
	st.Close()
}

// serve runs one operation. The memory of its answer (a list's copies and
// their frame) is reserved in the pool, and *release set to release it
// once the answer is sent.
func (s *Service) serve(remote consent.ID, req request, release *func()) response {
	fail := func(msg string) response { return response{Error: msg} }
	if req.Record != "" {
		if _, err := vault.ParseRecordID(req.Record); err != nil {
			return fail("bad record ID")
		}
	}
	switch req.Op {
	case "put":
		if req.Record == "" {
			return fail("no record")
		}
		if _, err := consent.ParseID(string(req.Recipient)); err != nil {
			return fail("bad recipient")
		}
		if err := s.st.PutManifest(remote, req.Record, req.Recipient, req.Envelope); err != nil {
			s.log.Debug("manifest put refused", "owner", remote.Short(), "code", store.Code(err))
			return response{Error: err.Error(), Code: store.Code(err)}
		}
		s.log.Info("manifest stored", "owner", remote.Short(), "recipient", req.Recipient.Short())
		return response{OK: true}
	case "list":
		if _, err := consent.ParseID(string(req.Owner)); err != nil {
			return fail("bad owner")
		}
		recipient := remote
		switch {
		case req.Recipient != "":
			if _, err := consent.ParseID(string(req.Recipient)); err != nil {
				return fail("bad recipient")
			}
			recipient = req.Recipient
		case req.Owner == remote:
			recipient = "" // the owner sees every copy of its manifests
		}
		cs, err := s.st.Manifests(req.Owner, req.Record, recipient)
		if err != nil {
			return fail("internal error")
		}
		out := make([]Copy, 0, len(cs))
		size := 0
		for _, c := range cs {
			if size+len(c.Envelope) > maxResponse-4096 {
				break
			}
			size += len(c.Envelope)
			out = append(out, Copy{Record: c.Record, Recipient: c.Recipient, Envelope: c.Envelope})
		}
		// The copies, and the frame they are encoded into.
		rel, err := s.pool.Take(2 * size)
		if err != nil {
			return response{Error: "busy: no memory for the answer", Code: "busy"}
		}
		*release = rel
		return response{OK: true, Copies: out}
	case "delete":
		if req.Record == "" {
			return fail("no record")
		}
		if err := s.st.DeleteManifests(remote, req.Record); err != nil {
			return fail("internal error")
		}
		return response{OK: true}
	}
	return fail("unknown operation")
}

func call(ctx context.Context, h host.Host, p peer.ID, req request) (response, error) {
	var resp response
	if err := wire.Exchange(ctx, h, p, ID, "medwallet manifests: control traffic", clientBudget, maxResponse, req, &resp); err != nil {
		return response{}, err
	}
	return resp, answerError(p, resp)
}

// answerError is the client's error for a peer's answer: nil on success,
// else wrapping ErrRemote (and ErrBusy for code "busy").
func answerError(p peer.ID, resp response) error {
	switch {
	case resp.OK:
		return nil
	case resp.Code == "busy":
		return fmt.Errorf("peer %s: %w: %w: %s", p.ShortString(), ErrRemote, ErrBusy, resp.Error)
	case store.CodeError(resp.Code) != nil:
		return fmt.Errorf("peer %s: %w", p.ShortString(), store.CodeError(resp.Code))
	}
	return fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrRemote, resp.Error)
}

// Put stores envelope as the copy of the host's record manifest for recipient.
func Put(ctx context.Context, h host.Host, p peer.ID, record string, recipient consent.ID, envelope []byte) error {
	_, err := call(ctx, h, p, request{Op: "put", Record: record, Recipient: recipient, Envelope: envelope})
	return err
}

// ListFor returns owner's manifest copies for one record or all (""):
// those addressed to recipient, or with recipient "" those readable by the
// host (every copy when the host is the owner).
func ListFor(ctx context.Context, h host.Host, p peer.ID, owner consent.ID, record string, recipient consent.ID) ([]Copy, error) {
	resp, err := call(ctx, h, p, request{Op: "list", Owner: owner, Record: record, Recipient: recipient})
	return resp.Copies, err
}

// Delete removes every copy of the host's record manifest.
func Delete(ctx context.Context, h host.Host, p peer.ID, record string) error {
	_, err := call(ctx, h, p, request{Op: "delete", Record: record})
	return err
}
