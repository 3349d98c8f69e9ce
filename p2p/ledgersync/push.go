package ledgersync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// PushID is the light-client protocol: entries in, one ack per entry out.
const PushID protocol.ID = "/medwallet/ledger-push/1.0.0"

// Republisher gossips the entries a push brought in: *GossipService is one.
type Republisher interface {
	Republish(es []*consent.Entry)
}

// PushService serves PushID: light clients outside the gossip mesh push
// entries, the service ingests each into in's ledger and acks it.
type PushService struct {
	h       host.Host
	in      *Ingest
	cfg     config
	log     *slog.Logger
	life    *life
	pub     Republisher // may be nil
	pushLim limiter
}

// NewPushService registers the PushID handler on h for in's ledger; pub,
// if not nil, gossips every entry a push added. WithMaxMessageSize applies.
func NewPushService(h host.Host, in *Ingest, pub Republisher, opts ...Option) (*PushService, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &PushService{h: h, in: in, cfg: cfg, log: in.log, life: newLife(cfg.parent), pub: pub,
		pushLim: newLimiter(cfg.isKnown)}
	h.SetStreamHandler(PushID, s.handlePush)
	return s, nil
}

// Close removes the handler, resets open streams and waits for their
// handlers; it is safe to call twice.
func (s *PushService) Close() error {
	if !s.life.close() {
		return nil
	}
	s.h.RemoveStreamHandler(PushID)
	s.life.end()
	return nil
}

// republish hands entries to the Republisher, if any.
func (s *PushService) republish(es []*consent.Entry) {
	if s.pub != nil && len(es) > 0 {
		s.pub.Republish(es)
	}
}

// AckStatus is what a peer did with one pushed entry.
type AckStatus uint8

// Ack statuses. Numbers are part of the wire format.
const (
	AckAccepted  AckStatus = 1 // joined its feed; gossiped to the network
	AckDuplicate AckStatus = 2 // the peer already held it
	AckPending   AckStatus = 3 // held until its predecessor arrives: push the feed from the peer's head
	AckRejected  AckStatus = 4 // refused; Reason says why
	AckRefused   AckStatus = 5 // not stored: the peer's policy refused it; Code says why (CodeNotAuthorised)
)

func (a AckStatus) String() string {
	switch a {
	case AckAccepted:
		return "accepted"
	case AckDuplicate:
		return "duplicate"
	case AckPending:
		return "pending"
	case AckRejected:
		return "rejected"
	case AckRefused:
		return "refused"
	}
	return fmt.Sprintf("ack(%d)", uint8(a))
}

// Ack answers one pushed entry. Hash is the SHA-256 of the bytes pushed
// (the entry hash when they decode).
type Ack struct {
	Hash   consent.Hash `json:"hash"`
	Status AckStatus    `json:"status"`
	Reason string       `json:"reason,omitempty"` // for rejections; never holds entry bodies
	Code   string       `json:"code,omitempty"`   // for refusals: CodeNotAuthorised
}

// Err is nil if the peer took the entry (accepted, or held it already),
// else an error naming the entry and the peer p that sent the ack; a
// refusal is a *RefusedError (errors.Is ErrNotAuthorised for its code).
func (a Ack) Err(p peer.ID) error {
	switch a.Status {
	case AckAccepted, AckDuplicate:
		return nil
	case AckRefused:
		return fmt.Errorf("entry %s: %w", a.Hash.String()[:12], &RefusedError{Peer: p, Code: a.Code, Detail: a.Reason})
	}
	return fmt.Errorf("peer %s: entry %s: %s %s", p.ShortString(), a.Hash.String()[:12], a.Status, a.Reason)
}

// handlePush serves PushID: entry frames in, one ack frame out per entry,
// until the client closes its side.
func (s *PushService) handlePush(str network.Stream) {
	s.life.guard(str, &s.pushLim, s.servePush)
}

func (s *PushService) servePush(str network.Stream) {
	remote := str.Conn().RemotePeer()
	m := newMeter(str, PushStreamLife, s.cfg.timeout, MinPushRate)
	r := bufio.NewReader(m)
	for range maxPushLen {
		if err := m.next(); err != nil {
			s.log.Debug("push stream reset", "peer", shortPeer(remote), "err", err)
			str.Reset()
			return
		}
		b, rel, err := wire.ReadFrame(str, r, s.cfg.maxMsgSize)
		if errors.Is(err, io.EOF) {
			str.Close()
			return
		}
		if err != nil {
			s.log.Debug("push refused", "peer", shortPeer(remote), "err", err)
			s.in.n.rejected.Add(1)
			str.Reset()
			return
		}
		ack := s.pushOne(remote, b)
		rel()
		if err := wire.Write(str, wireAck{Hash: ack.Hash, Status: uint8(ack.Status), Reason: ack.Reason, Code: ack.Code}); err != nil {
			str.Reset()
			return
		}
	}
	str.Reset()
}

func (s *PushService) pushOne(remote peer.ID, b []byte) Ack {
	ack := Ack{Hash: consent.HashBytes(b)}
	e, err := s.in.decodeChargedBy(b, remote, "push")
	if errors.Is(err, ErrNotAuthorised) {
		ack.Status, ack.Code, ack.Reason = AckRefused, CodeNotAuthorised, clip(err.Error())
		return ack
	}
	if err != nil {
		s.in.n.rejected.Add(1)
		ack.Status, ack.Reason = AckRejected, clip(err.Error())
		s.log.Debug("push refused", "peer", shortPeer(remote), "err", err)
		return ack
	}
	res := s.in.accept(e)
	switch res.out {
	case outAccepted:
		ack.Status = AckAccepted
		s.republish(res.acc)
	case outDuplicate:
		ack.Status = AckDuplicate
	case outPending:
		ack.Status = AckPending
	default:
		ack.Status, ack.Reason = AckRejected, clip(res.reason())
		if res.out == outInternal {
			s.republish(res.acc)
		}
	}
	s.log.Debug("pushed", "entry", entryName(e), "ack", ack.Status)
	return ack
}

func clip(s string) string {
	if len(s) > maxReasonLen {
		return s[:maxReasonLen]
	}
	return s
}

// Push sends entries to p over PushID and returns one Ack per entry, in
// order. p verifies and ingests each and gossips those it accepted. Push a
// feed's entries in seq order, starting after p's head (see Pull).
func Push(ctx context.Context, h host.Host, p peer.ID, entries []*consent.Entry) (acks []Ack, err error) {
	if len(entries) > maxPushLen {
		return nil, fmt.Errorf("ledgersync: push: %d entries, at most %d per push", len(entries), maxPushLen)
	}
	str, err := h.NewStream(ctx, p, PushID)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: push to %s: %w", shortPeer(p), err)
	}
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(d)
	} else {
		_ = str.SetDeadline(time.Now().Add(DefaultStreamTimeout + time.Duration(len(entries))*time.Second))
	}

	// Write while reading acks, so a long push does not wait on flow
	// control in both directions.
	werr := make(chan error, 1)
	go func() {
		for _, e := range entries {
			if err := wire.WriteFrame(str, e.Encode()); err != nil {
				werr <- err
				return
			}
		}
		werr <- str.CloseWrite()
	}()
	defer func() {
		if err != nil {
			str.Reset()
			<-werr
			err = fmt.Errorf("ledgersync: push to %s: %w", shortPeer(p), err)
			return
		}
		if err = <-werr; err != nil {
			str.Reset()
			err = fmt.Errorf("ledgersync: push to %s: %w", shortPeer(p), err)
			return
		}
		str.Close()
	}()

	r := bufio.NewReader(str)
	acks = make([]Ack, 0, len(entries))
	for _, e := range entries {
		var wa wireAck
		if err := wire.Read(str, r, maxAckFrame, &wa); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return acks, err
		}
		if wa.Hash != e.Hash() {
			return acks, fmt.Errorf("ack for %s names another entry", entryName(e))
		}
		acks = append(acks, Ack{Hash: wa.Hash, Status: AckStatus(wa.Status), Reason: wa.Reason, Code: wa.Code})
	}
	return acks, nil
}
