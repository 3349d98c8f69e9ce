// Package shares is the libp2p protocol that stores and serves encrypted
// record shares on peers.
//
// Every stream carries one operation: a request frame, then for a put the
// share bytes up to the end of the stream, for a get a response frame then
// the share bytes. A put is made by the owner (the stream's authenticated
// remote peer). A get carries the requester's signed consent.Request; the
// peer runs consent.Decide on its own ledger view, appends an access entry
// with the decision and the request to its own feed, and only then sends
// a byte (log before release). Deletes are the owner's alone. Gets are
// rate-limited per requester before anything is decided (ratelimit.go),
// and a denial repeated within a minute is counted into a later summary
// entry instead of an entry of its own (repeats.go).
package shares

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
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
const ID protocol.ID = "/medwallet/shares/1.0.0"

const (
	maxFrame      = 64 << 10
	headerTimeout = 10 * time.Second
)

// Operations.
const (
	OpPut    = "put"
	OpGet    = "get"
	OpHas    = "has"
	OpDelete = "delete"
	OpAudit  = "audit" // audit.go
)

type request struct {
	Op     string   `cbor:"1,keyasint"`
	Record string   `cbor:"2,keyasint,omitempty"`
	Share  []byte   `cbor:"3,keyasint,omitempty"`
	Access []byte   `cbor:"4,keyasint,omitempty"` // encoded signed consent.Request
	Admit  bool     `cbor:"5,keyasint,omitempty"` // put: answer the admission before the share is sent
	Blocks []uint32 `cbor:"6,keyasint,omitempty"` // audit: the block indexes challenged (audit.go)
	Nonce  []byte   `cbor:"7,keyasint,omitempty"` // audit: the challenger's fresh nonce
}

type response struct {
	OK     bool           `cbor:"1,keyasint,omitempty"`
	Error  string         `cbor:"2,keyasint,omitempty"`
	Code   string         `cbor:"3,keyasint,omitempty"` // not-found, denied, bad-request, owner, internal, busy, rate-limited, or store.Code's
	Share  []byte         `cbor:"4,keyasint,omitempty"`
	Size   int64          `cbor:"5,keyasint,omitempty"`
	Has    bool           `cbor:"6,keyasint,omitempty"`
	Reason consent.Reason `cbor:"7,keyasint,omitempty"`
	Entry  []byte         `cbor:"8,keyasint,omitempty"` // hash of the access entry
	Nonce  []byte         `cbor:"9,keyasint,omitempty"` // audit: the challenge's nonce, echoed
}

// Errors a client sees.
var (
	ErrDenied     = errors.New("access denied")
	ErrNotFound   = vault.ErrNotFound
	ErrRemote     = errors.New("peer refused")
	ErrBadRequest = errors.New("bad request")
)

// DeniedError carries the consent reason of a refused get.
type DeniedError struct {
	Peer   peer.ID
	Reason consent.Reason
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("%v by peer %s: %s", ErrDenied, e.Peer.ShortString(), e.Reason)
}
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Store is the disk a Service serves shares from; p2p/store/boltstore is
// one. Meta and Get return errors wrapping store.ErrNotFound for a share the
// peer does not hold, and PutShare one wrapping store.ErrOwner for a share
// another owner already put. AdmitShare, asked before a put reads a byte,
// and PutShare refuse with the store's admission errors (store.Code).
type Store interface {
	AdmitShare(owner consent.ID) error
	PutShare(ctx context.Context, owner consent.ID, record string, r io.Reader) (vault.ShareID, error)
	Meta(id vault.ShareID) (store.ShareMeta, error)
	Has(ctx context.Context, id vault.ShareID) (bool, error)
	Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error)
	Delete(ctx context.Context, id vault.ShareID) error
}

// Service serves the protocol on a peer.
type Service struct {
	h       host.Host
	st      Store
	ledger  *consent.Ledger
	signer  consent.Signer
	publish func(*consent.Entry)
	now     func() time.Time
	log     *slog.Logger
	lim     Limits
	pools   pools

	decideMu sync.Mutex
	gate     func(*consent.Request) error

	feeds subFeeds   // this peer's sub-feed per owner (subfeed.go); decideMu guards it
	gets  getLimiter // per-requester limit on gets (ratelimit.go)
	reps  repeats    // repeated denials counted, not logged one by one (repeats.go); decideMu guards it

	onGet   func(outcome, reason string)          // WithGetObserver (observe.go)
	onOwner func(owner consent.ID, record string) // WithOwnerActivity (activity.go)
}

// Option configures a Service.
type Option func(*Service)

// WithPublish is called with every access entry after it is appended
// (the peer daemon gossips it).
func WithPublish(f func(*consent.Entry)) Option { return func(s *Service) { s.publish = f } }

// WithLogger sets the logger; it never receives record contents or PHI.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithGate is asked before every get, with its decoded request; a non-nil
// error refuses the get with code "busy" (the peer daemon refuses grantees
// until it has caught up with the ledger after a start, so a peer that was
// offline never serves on a stale view of consent, and lets owners read).
// A request the gate lets through must still name the share's owner and
// record and the remote as its requester.
func WithGate(f func(*consent.Request) error) Option { return func(s *Service) { s.gate = f } }

// NewService registers the protocol handler on h.
func NewService(h host.Host, st Store, l *consent.Ledger, signer consent.Signer, opts ...Option) *Service {
	s := &Service{h: h, st: st, ledger: l, signer: signer, publish: func(*consent.Entry) {}, now: time.Now,
		log: slog.New(slog.DiscardHandler), lim: DefaultLimits()}
	for _, o := range opts {
		o(s)
	}
	s.pools = newPools(s.lim)
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler and logs the repeated denials counted but not
// logged yet.
func (s *Service) Close() { s.h.RemoveStreamHandler(ID); s.closeRepeats() }

// handle reads the request within the request budget, takes a slot of
// the operation's kind for the remote (or answers "busy" at once), and
// serves the operation within the transfer budget: a remote that sends or
// reads slower than the minimum rate, or past the deadline, is reset.
func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	t := wire.NewTransfer(st, s.lim.Request)
	br := bufio.NewReader(t)
	var req request
	if err := wire.Read(st, br, maxFrame, &req); err != nil {
		s.log.Debug("shares request failed", "peer", p.ShortString(), "err", err)
		st.Reset()
		return
	}
	release, ok := s.pools.of(req.Op).Acquire(p)
	if !ok {
		s.log.Debug("shares stream refused: busy", "peer", p.ShortString(), "op", req.Op)
		// Closed, not reset: a reset would drop the answer before the
		// client reads it. The client stops sending when it reads it.
		if req.Op == OpGet {
			s.observeGet(response{Code: "busy"})
		}
		_ = wire.Write(t, response{Error: "busy", Code: "busy"})
		st.Close()
		return
	}
	defer release()
	t.Start(s.lim.Transfer)
	if err := s.serve(st, t, br, req); err != nil {
		s.log.Debug("shares stream failed", "peer", p.ShortString(), "op", req.Op, "err", err)
		st.Reset()
		return
	}
	st.Close()
}

// serve runs one operation; t is the stream within its transfer budget
// and br reads t.
func (s *Service) serve(st network.Stream, t *wire.Transfer, br *bufio.Reader, req request) error {
	remote := consent.ID(st.Conn().RemotePeer().String())
	w := t
	reply := func(r response) error { return wire.Write(w, r) }
	switch req.Op {
	case OpPut:
		if len(req.Access) > 0 {
			return s.serveRepairPut(t, br, remote, req) // repair.go
		}
		if _, err := vault.ParseRecordID(req.Record); err != nil {
			return reply(response{Error: "bad record ID", Code: "bad-request"})
		}
		// Admission (policy, rate, disk, quota) before any share byte, so
		// that a refused client can still send the share to another peer.
		if err := s.st.AdmitShare(remote); store.Code(err) != "" {
			s.log.Debug("share put refused", "owner", remote.Short(), "code", store.Code(err))
			return reply(response{Error: err.Error(), Code: store.Code(err)})
		} else if err != nil {
			return err
		} else if req.Admit {
			if err := reply(response{OK: true}); err != nil {
				return err
			}
		}
		// The share's own header must name the record it is put for.
		hdr, err := br.Peek(vault.ShareHeaderSize)
		if err != nil {
			return err
		}
		if rid, err := vault.ShareRecord(hdr); err != nil || rid.String() != req.Record {
			return reply(response{Error: "the share header does not name this record", Code: "bad-request"})
		}
		id, err := s.st.PutShare(context.Background(), remote, req.Record, br)
		if errors.Is(err, store.ErrOwner) {
			return reply(response{Error: "share belongs to another owner", Code: "owner"})
		}
		if c := store.Code(err); c != "" { // quota or disk crossed mid-stream
			s.log.Debug("share put refused", "owner", remote.Short(), "code", c)
			return reply(response{Error: err.Error(), Code: c})
		}
		if err != nil {
			return err
		}
		s.log.Info("share stored", "owner", remote.Short(), "share", id.String()[:12])
		return reply(response{OK: true, Share: id[:]})
	case OpHas:
		id, err := shareID(req.Share)
		if err != nil {
			return reply(response{Error: err.Error(), Code: "bad-request"})
		}
		ok, err := s.st.Has(context.Background(), id)
		if err != nil {
			return err
		}
		if ok {
			s.ownerActivity(remote, id)
		}
		return reply(response{OK: true, Has: ok})
	case OpDelete:
		id, err := shareID(req.Share)
		if err != nil {
			return reply(response{Error: err.Error(), Code: "bad-request"})
		}
		m, err := s.st.Meta(id)
		if errors.Is(err, store.ErrNotFound) {
			return reply(response{OK: true})
		}
		if err != nil {
			return err
		}
		if m.Owner != remote {
			return reply(response{Error: "only the owner may delete a share", Code: "owner"})
		}
		if err := s.st.Delete(context.Background(), id); err != nil {
			return err
		}
		s.log.Info("share deleted", "owner", remote.Short(), "share", id.String()[:12])
		return reply(response{OK: true})
	case OpGet:
		return s.serveGet(st, w, remote, req)
	case OpAudit:
		return s.serveAudit(w, remote, req) // audit.go
	}
	return reply(response{Error: "unknown operation", Code: "bad-request"})
}

// decide runs the policy and logs the decision on this peer's feed. It is
// serialised so that two concurrent requests with one nonce cannot both
// pass the replay check before either is logged.
//
// It returns the entries it appended, to publish (summaries of repeated
// denials that came due, then the decision's own entry), and the hash of
// the entry that logs this decision: its own, or for a denial repeating
// one logged within consent.RepeatWindow (same requester, owner, record,
// reason and break-glass entry), that earlier entry; such a repeat is
// counted, not appended, and a later summary entry names the earlier one
// (repeats.go). An allow is always appended on its own.
func (s *Service) decide(ar *consent.Request) ([]*consent.Entry, consent.Hash, consent.Decision, error) {
	s.decideMu.Lock()
	defer s.decideMu.Unlock()
	// Summaries that came due first, so that this decision reads them.
	logged, err := s.flushRepeats(s.now(), false)
	if err != nil {
		return logged, consent.Hash{}, consent.Decision{}, err
	}
	now := s.now()
	// The decision is logged in this peer's sub-feed about the owner.
	feed, link, err := s.subFeed(ar.Owner, now)
	if err != nil {
		return logged, consent.Hash{}, consent.Decision{}, err
	}
	if link != nil {
		logged = append(logged, link)
	}
	var d consent.Decision
	var body consent.AccessBody
	s.ledger.View(func(v *consent.View) {
		// Decide at the time the access entry will carry: never before
		// this peer's previous entry, even if the clock stepped back, so
		// that an auditor re-running the decision gets the same answer.
		if h := v.Head(feed.ID()); now.Unix() < h.Time {
			now = time.Unix(h.Time, 0)
		}
		d = consent.Decide(v, ar, now)
		body = consent.AccessBody{Request: ar.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant,
			OwnerHead: v.Head(ar.Owner), Issuer: d.Issuer, Credential: d.Credential, Until: d.Until}
		// The feeds beyond the owner's that the decision read, so that an
		// auditor can re-run it on the same prefixes.
		if !ar.BreakGlass.IsZero() {
			h := v.Head(ar.Requester)
			body.RequesterHead = &h
		}
		if d.Issuer != "" {
			h := v.Head(d.Issuer)
			body.IssuerHead = &h
		}
		body.DeviceHeads = consent.DeviceHeads(v, ar.Owner)
	})
	if !d.Allow {
		if of, ok := s.countRepeat(keyOf(ar, d.Reason), now, &body); ok {
			return logged, of, d, nil
		}
	}
	// Log before release: the decision is on this peer's feed before a byte leaves.
	e, err := s.ledger.Append(feed, now, consent.KindAccess, &body)
	if err != nil {
		return logged, consent.Hash{}, d, fmt.Errorf("logging the access: %w", err)
	}
	logged = append(logged, e)
	if !d.Allow {
		more, err := s.startRun(keyOf(ar, d.Reason), e.Hash(), now)
		logged = append(logged, more...)
		if err != nil {
			s.log.Warn("logging repeated denials failed", "err", err)
		}
	}
	return logged, e.Hash(), d, nil
}

func shareID(b []byte) (vault.ShareID, error) {
	var id vault.ShareID
	if len(b) != len(id) {
		return id, errors.New("bad share ID")
	}
	copy(id[:], b)
	return id, nil
}

func (s *Service) serveGet(st network.Stream, w io.Writer, remote consent.ID, req request) error {
	reply := func(r response) error { s.observeGet(r); return wire.Write(w, r) }
	// Before anything is decided: a refusal here releases and logs nothing.
	if !s.gets.allow(remote, s.now()) {
		return reply(response{Error: ErrRateLimited.Error(), Code: "rate-limited"})
	}
	id, err := shareID(req.Share)
	if err != nil {
		return reply(response{Error: err.Error(), Code: "bad-request"})
	}
	ar, err := consent.DecodeRequest(req.Access)
	if err != nil {
		return reply(response{Error: "bad access request", Code: "bad-request"})
	}
	if s.gate != nil {
		if err := s.gate(ar); err != nil {
			return reply(response{Error: err.Error(), Code: "busy"})
		}
	}
	m, err := s.st.Meta(id)
	if errors.Is(err, store.ErrNotFound) {
		return reply(response{Error: "share not found", Code: "not-found"})
	}
	if err != nil {
		return err
	}
	// The request must name this share's owner and record, and come from
	// the party that signed it (the connection authenticates the remote).
	if ar.Owner != m.Owner || ar.Record != m.Record || ar.Requester != remote {
		return reply(response{Error: "request does not match this share or this connection", Code: "bad-request"})
	}
	logged, eh, d, err := s.decide(ar)
	for _, e := range logged {
		s.publish(e)
	}
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(logged, func(e *consent.Entry) bool { return e.Hash() == eh }) {
		// A repeated denial: counted, and covered by entry eh.
		s.log.Debug("access decided", "requester", ar.Requester.Short(), "owner", ar.Owner.Short(),
			"allow", d.Allow, "reason", string(d.Reason), "entry", eh.String()[:12], "repeat", true)
	} else {
		s.log.Info("access decided", "requester", ar.Requester.Short(), "owner", ar.Owner.Short(),
			"allow", d.Allow, "reason", string(d.Reason), "entry", eh.String()[:12], "emergency", d.Reason == consent.ReasonEmergency)
	}
	if !d.Allow {
		return reply(response{Error: "denied", Code: "denied", Reason: d.Reason, Entry: eh[:]})
	}
	if d.Reason == consent.ReasonOwner {
		s.ownerActivity(remote, id)
	}
	rc, err := s.st.Get(context.Background(), id)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := reply(response{OK: true, Size: m.Size, Reason: d.Reason, Entry: eh[:]}); err != nil {
		return err
	}
	n, err := io.Copy(w, rc)
	if err != nil {
		return err
	}
	if n != m.Size {
		return fmt.Errorf("share %s: stored size %d, read %d", id, m.Size, n)
	}
	s.log.Info("share sent", "share", id.String()[:12], "entry", eh.String()[:12])
	return nil
}
