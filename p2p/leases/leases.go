// Package leases is the libp2p protocol by which a record's owner (or a
// party the peer lets act for it, such as a repairer) renews the leases of
// the record's shares and manifest copies on a peer (p2p/store: Lease,
// Classify), and tells the peer which share IDs the record's current
// manifest lists.
//
// A stream carries one request frame and one response frame. The request
// names the owner and up to MaxRecords records, each with the SHA-256 of
// its current encrypted manifest (the hash its anchor names) and the
// share IDs that manifest lists (ciphertext hashes; no record key, no
// PHI). The peer renews the lease of each record it holds something of
// and keeps the share list: once that manifest is the record's anchored
// one, the record's shares the list does not name are orphans.
//
// Only the owner (the stream's authenticated remote) may renew, unless
// the service's Authorise hook lets another party act for the owner
// (WithAuthorise: the extension point for repairers holding a repair
// grant). Refusals carry a code: "denied" (not the owner nor authorised),
// "bad-request", "busy".
package leases

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
	"github.com/medwallet/medwallet/vault"
)

// ID is the protocol ID.
const ID protocol.ID = "/medwallet/leases/1.0.0"

const (
	// MaxRecords bounds the records of one request; Renew sends more in
	// several.
	MaxRecords = 64
	// MaxShares bounds the share IDs of one record.
	MaxShares = 256
	maxFrame  = MaxRecords*(MaxShares*35+128) + 1024
	timeout   = 30 * time.Second
)

// Errors a client sees.
var (
	ErrDenied     = errors.New("not the owner, nor authorised to renew for it")
	ErrBadRequest = errors.New("bad request")
	ErrBusy       = errors.New("peer busy")
	ErrRemote     = errors.New("peer refused")
)

// Record is one record's renewal.
type Record struct {
	Record   string          `cbor:"1,keyasint"`
	Manifest consent.Hash    `cbor:"2,keyasint,omitempty"`
	Shares   []vault.ShareID `cbor:"3,keyasint,omitempty"`
}

type request struct {
	Owner   consent.ID `cbor:"1,keyasint"`
	Records []Record   `cbor:"2,keyasint"`
}

type response struct {
	OK      bool   `cbor:"1,keyasint,omitempty"`
	Error   string `cbor:"2,keyasint,omitempty"`
	Code    string `cbor:"3,keyasint,omitempty"`
	Renewed int    `cbor:"4,keyasint,omitempty"`
}

// Store is what the service renews leases in; p2p/store/boltstore is one.
// Renew renews the lease of owner's record if the peer holds anything of
// it and reports whether it did.
type Store interface {
	Renew(owner consent.ID, record string, manifest consent.Hash, shares []vault.ShareID) (bool, error)
}

// Authorise reports whether remote may renew owner's record. The default
// is remote == owner.
type Authorise func(remote, owner consent.ID, record string) bool

// Service serves the protocol on a peer.
type Service struct {
	h     host.Host
	st    Store
	log   *slog.Logger
	auth  Authorise
	slots *wire.Slots
}

// Option configures a Service.
type Option func(*Service)

// WithAuthorise lets parties other than the owner renew: auth is asked
// for every record a non-owner names (the owner is always allowed).
func WithAuthorise(auth Authorise) Option { return func(s *Service) { s.auth = auth } }

// NewService registers the handler on h.
func NewService(h host.Host, st Store, log *slog.Logger, opts ...Option) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{h: h, st: st, log: log, slots: wire.NewSlots(wire.Limit{PerRemote: 2, Total: 64})}
	for _, o := range opts {
		o(s)
	}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler.
func (s *Service) Close() { s.h.RemoveStreamHandler(ID) }

var budget = wire.Budget{Total: timeout, Grace: 10 * time.Second, MinRate: 4 << 10, Window: 10 * time.Second}

func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	t := wire.NewTransfer(st, budget)
	release, ok := s.slots.Acquire(p)
	if !ok {
		_ = wire.Write(t, response{Error: "busy", Code: "busy"})
		st.Close()
		return
	}
	defer release()
	var req request
	if err := wire.Read(st, bufio.NewReader(t), maxFrame, &req); err != nil {
		s.log.Debug("leases request failed", "peer", p.ShortString(), "err", err)
		st.Reset()
		return
	}
	resp := s.serve(consent.ID(p.String()), req)
	if err := wire.Write(t, resp); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

func (s *Service) serve(remote consent.ID, req request) response {
	if len(req.Records) > MaxRecords {
		return response{Error: "too many records", Code: "bad-request"}
	}
	for _, r := range req.Records {
		if err := consent.ValidateRecordID(r.Record); err != nil || len(r.Shares) > MaxShares {
			return response{Error: "bad record", Code: "bad-request"}
		}
		if remote != req.Owner && (s.auth == nil || !s.auth(remote, req.Owner, r.Record)) {
			return response{Error: ErrDenied.Error(), Code: "denied"}
		}
	}
	n := 0
	for _, r := range req.Records {
		ok, err := s.st.Renew(req.Owner, r.Record, r.Manifest, r.Shares)
		if err != nil {
			s.log.Warn("renewing a lease failed", "owner", req.Owner.Short(), "err", err)
			return response{Error: "internal error", Code: "internal"}
		}
		if ok {
			n++
		}
	}
	s.log.Debug("leases renewed", "owner", req.Owner.Short(), "by", remote.Short(), "records", n)
	return response{OK: true, Renewed: n}
}

// Renew asks peer p to renew owner's records (in requests of at most
// MaxRecords) and returns how many the peer holds something of.
func Renew(ctx context.Context, h host.Host, p peer.ID, owner consent.ID, records []Record) (int, error) {
	n := 0
	for len(records) > 0 {
		batch := records[:min(len(records), MaxRecords)]
		records = records[len(batch):]
		m, err := renew(ctx, h, p, owner, batch)
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func renew(ctx context.Context, h host.Host, p peer.ID, owner consent.ID, records []Record) (int, error) {
	var resp response
	if err := wire.Exchange(ctx, h, p, ID, "medwallet leases: small request", wire.Budget{Total: timeout},
		4096, request{Owner: owner, Records: records}, &resp); err != nil {
		return 0, err
	}
	if resp.OK {
		return resp.Renewed, nil
	}
	switch resp.Code {
	case "denied":
		return 0, fmt.Errorf("peer %s: %w", p.ShortString(), ErrDenied)
	case "bad-request":
		return 0, fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrBadRequest, resp.Error)
	case "busy":
		return 0, fmt.Errorf("peer %s: %w: %w", p.ShortString(), ErrRemote, ErrBusy)
	}
	return 0, fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrRemote, resp.Error)
}
