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
	"golang.org/x/time/rate"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// ID is the enrolment protocol's ID.
const ID protocol.ID = "/medwallet/serve/1.0.0"

const (
	maxFrame = 256
	timeout  = 10 * time.Second
)

// Enrolment rates. Enrolling again with the same secret is free; a change
// (a new patient, or a new secret) writes the served set on disk, joins a
// gossip topic and provides a DHT record, so one identity may make one
// every 10 s after a burst of 4, and all identities together 5 new
// patients a second after a burst of 100: a thousand free keys cannot
// make a peer rewrite its set or join topics faster than that.
const (
	changeRate      = 0.1
	changeBurst     = 4
	newPatientRate  = 5
	newPatientBurst = 100
)

// Errors a client sees.
var (
	// ErrRefused reports a peer that refused to serve (code "denied": its
	// storage policy does not admit the patient; "internal"; "busy").
	ErrRefused = errors.New("peer refused to serve")
)

type request struct {
	Secret []byte `cbor:"1,keyasint,omitempty"`
	Leave  bool   `cbor:"2,keyasint,omitempty"`
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

	changes     *wire.RemoteRates // per remote: changes of the set
	newPatients *rate.Limiter     // all remotes: patients added
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
	s := &Service{h: h, set: set, admit: admit, log: log, now: time.Now,
		changes:     wire.NewRemoteRates(changeRate, changeBurst),
		newPatients: rate.NewLimiter(newPatientRate, newPatientBurst)}
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
	resp := s.enrol(st.Conn().RemotePeer(), remote, req)
	if err := wire.Write(st, resp); err != nil {
		st.Reset()
	}
}

func (s *Service) enrol(p peer.ID, remote consent.ID, req request) response {
	if req.Leave {
		return s.leave(p, remote, req)
	}
	var sec Secret
	if len(req.Secret) != len(sec) {
		return response{Error: "the secret is not 32 bytes", Code: "bad-request"}
	}
	copy(sec[:], req.Secret)
	if err := s.admit(remote); err != nil {
		s.log.Info("enrolment refused", "patient", remote.Short(), "err", err)
		return response{Error: err.Error(), Code: "denied"}
	}
	cur, had := s.set.Secret(remote)
	if had && cur == [32]byte(sec) {
		return response{OK: true} // nothing changes: free
	}
	if !s.changes.Allow(p) || !had && !s.newPatients.Allow() {
		return response{Error: "too many enrolments; try again later", Code: "busy"}
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

// leave un-enrols remote: the patient no longer names this peer among its
// serving peers. Not serving it is answered ok at no cost.
func (s *Service) leave(p peer.ID, remote consent.ID, req request) response {
	if len(req.Secret) != 0 {
		return response{Error: "a leave carries no secret", Code: "bad-request"}
	}
	if !s.set.Has(remote) {
		return response{OK: true}
	}
	if !s.changes.Allow(p) {
		return response{Error: "too many enrolments; try again later", Code: "busy"}
	}
	left, err := s.set.Leave(remote)
	if err != nil {
		s.log.Warn("leaving failed", "patient", remote.Short(), "err", err)
		return response{Error: "the peer could not save the served set", Code: "internal"}
	}
	if left {
		s.log.Info("no longer serving a patient", "patient", remote.Short())
	}
	return response{OK: true}
}

// Leave tells peer p that the identity of h no longer names it among its
// serving peers: p drops it from its served set, stops following its
// gossip topic and, unless it still holds its shares or manifests, takes
// no more of its entries. What p holds already stays (a later issue
// collects it).
func Leave(ctx context.Context, h host.Host, p peer.ID) error {
	return call(ctx, h, p, "leave", request{Leave: true})
}

// Enrol asks peer p to serve the identity of h, whose rendezvous secret is
// secret.
func Enrol(ctx context.Context, h host.Host, p peer.ID, secret Secret) error {
	return call(ctx, h, p, "enrol", request{Secret: secret[:]})
}

func call(ctx context.Context, h host.Host, p peer.ID, op string, req request) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "medwallet serve: small request"), p, ID)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", op, p.ShortString(), err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if err := wire.Write(st, req); err != nil {
		st.Reset()
		return fmt.Errorf("%s on %s: %w", op, p.ShortString(), err)
	}
	var resp response
	if err := wire.Read(st, bufio.NewReader(st), maxFrame, &resp); err != nil {
		st.Reset()
		return fmt.Errorf("%s on %s: %w", op, p.ShortString(), err)
	}
	if !resp.OK {
		return fmt.Errorf("%s on %s: %w (%s): %s", op, p.ShortString(), ErrRefused, resp.Code, resp.Error)
	}
	return nil
}
