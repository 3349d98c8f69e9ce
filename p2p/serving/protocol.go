package serving

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
	"github.com/medwallet/medwallet/p2p/wire"
)

// ID is the enrolment protocol's ID.
const ID protocol.ID = "/medwallet/serve/1.0.0"

const (
	maxFrame = 256
	timeout  = 10 * time.Second
)

// Errors a client sees.
var (
	// ErrRefused reports a peer that refused to serve (code "denied": its
	// storage policy does not admit the patient; "internal"; "busy").
	ErrRefused = errors.New("peer refused to serve")
)

type request struct {
	Secret []byte `cbor:"1,keyasint"`
}

type response struct {
	OK    bool   `cbor:"1,keyasint,omitempty"`
	Error string `cbor:"2,keyasint,omitempty"`
	Code  string `cbor:"3,keyasint,omitempty"`
}

// Service answers enrolments on a peer.
type Service struct {
	h     host.Host
	set   *Set
	admit func(consent.ID) error
	log   *slog.Logger
	now   func() time.Time
}

// NewService registers the handler on h. admit decides whether the peer
// serves a patient at all (its storage admission policy); nil admits all.
func NewService(h host.Host, set *Set, admit func(consent.ID) error, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if admit == nil {
		admit = func(consent.ID) error { return nil }
	}
	s := &Service{h: h, set: set, admit: admit, log: log, now: time.Now}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler.
func (s *Service) Close() { s.h.RemoveStreamHandler(ID) }

func (s *Service) handle(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(timeout))
	remote := consent.ID(st.Conn().RemotePeer().String())
	var req request
	if err := wire.Read(st, bufio.NewReader(st), maxFrame, &req); err != nil {
		st.Reset()
		return
	}
	resp := s.enrol(remote, req)
	if err := wire.Write(st, resp); err != nil {
		st.Reset()
	}
}

func (s *Service) enrol(remote consent.ID, req request) response {
	var sec Secret
	if len(req.Secret) != len(sec) {
		return response{Error: "the secret is not 32 bytes", Code: "bad-request"}
	}
	copy(sec[:], req.Secret)
	if err := s.admit(remote); err != nil {
		s.log.Info("enrolment refused", "patient", remote.Short(), "err", err)
		return response{Error: err.Error(), Code: "denied"}
	}
	added, err := s.set.Enrol(remote, sec, s.now())
	if err != nil {
		s.log.Warn("enrolment failed", "patient", remote.Short(), "err", err)
		return response{Error: "the peer could not save the enrolment", Code: "internal"}
	}
	if added {
		s.log.Info("serving a new patient", "patient", remote.Short())
	}
	return response{OK: true}
}

// Enrol asks peer p to serve the identity of h, whose rendezvous secret is
// secret.
func Enrol(ctx context.Context, h host.Host, p peer.ID, secret Secret) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := h.NewStream(ctx, p, ID)
	if err != nil {
		return fmt.Errorf("enrol on %s: %w", p.ShortString(), err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if err := wire.Write(st, request{Secret: secret[:]}); err != nil {
		st.Reset()
		return fmt.Errorf("enrol on %s: %w", p.ShortString(), err)
	}
	var resp response
	if err := wire.Read(st, bufio.NewReader(st), maxFrame, &resp); err != nil {
		st.Reset()
		return fmt.Errorf("enrol on %s: %w", p.ShortString(), err)
	}
	if !resp.OK {
		return fmt.Errorf("enrol on %s: %w (%s): %s", p.ShortString(), ErrRefused, resp.Code, resp.Error)
	}
	return nil
}
