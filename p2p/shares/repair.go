package shares

// Repair puts: a repairer the owner authorised puts a share it rebuilt
// (consent.PurposeRepair). The put carries the repairer's signed request
// for the record (key 4, as a get does); the peer decides it with
// consent.Decide and logs the decision on its sub-feed about the owner
// before it reads a share byte, exactly like a get, then admits and stores
// the share as the owner's (quota, policy and rate are the owner's). The
// repairer never becomes a share's owner: only the owner deletes.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

func (s *Service) serveRepairPut(w *wire.Transfer, br *bufio.Reader, remote consent.ID, req request) error {
	reply := func(r response) error { return wire.Write(w, r) }
	if _, err := vault.ParseRecordID(req.Record); err != nil {
		return reply(response{Error: "bad record ID", Code: "bad-request"})
	}
	if !s.gets.allow(remote, s.now()) {
		return reply(response{Error: ErrRateLimited.Error(), Code: "rate-limited"})
	}
	ar, err := consent.DecodeRequest(req.Access)
	if err != nil {
		return reply(response{Error: "bad access request", Code: "bad-request"})
	}
	if ar.Record != req.Record || ar.Requester != remote || ar.Purpose != consent.PurposeRepair {
		return reply(response{Error: "request does not match this put or this connection", Code: "bad-request"})
	}
	if s.gate != nil {
		if err := s.gate(ar); err != nil {
			return reply(response{Error: err.Error(), Code: "busy"})
		}
	}
	logged, eh, d, err := s.decide(ar)
	for _, e := range logged {
		s.publish(e)
	}
	if err != nil {
		return err
	}
	if slices.ContainsFunc(logged, func(e *consent.Entry) bool { return e.Hash() == eh }) {
		s.log.Info("access decided", "requester", ar.Requester.Short(), "owner", ar.Owner.Short(),
			"allow", d.Allow, "reason", string(d.Reason), "entry", eh.String()[:12], "op", "repair-put")
	}
	if !d.Allow {
		return reply(response{Error: "denied", Code: "denied", Reason: d.Reason, Entry: eh[:]})
	}
	owner := ar.Owner
	if err := s.st.AdmitShare(owner); store.Code(err) != "" {
		return reply(response{Error: err.Error(), Code: store.Code(err)})
	} else if err != nil {
		return err
	}
	if req.Admit {
		if err := reply(response{OK: true, Reason: d.Reason, Entry: eh[:]}); err != nil {
			return err
		}
	}
	hdr, err := br.Peek(vault.ShareHeaderSize)
	if err != nil {
		return err
	}
	if rid, err := vault.ShareRecord(hdr); err != nil || rid.String() != req.Record {
		return reply(response{Error: "the share header does not name this record", Code: "bad-request"})
	}
	id, err := s.st.PutShare(context.Background(), owner, req.Record, br)
	if errors.Is(err, store.ErrOwner) {
		return reply(response{Error: "share belongs to another owner", Code: "owner"})
	}
	if c := store.Code(err); c != "" {
		return reply(response{Error: err.Error(), Code: c})
	}
	if err != nil {
		return err
	}
	s.log.Info("rebuilt share stored", "owner", owner.Short(), "share", id.String()[:12], "repairer", remote.Short())
	return reply(response{OK: true, Share: id[:], Reason: d.Reason, Entry: eh[:]})
}

// PutRepair stores the share read from r on peer p as a share of record,
// owned by the owner of ar (the repairer's signed repair request for that
// record). The peer decides and logs the request before it takes a byte:
// a denial is a *DeniedError and leaves r unread, as does a storage
// refusal (the caller may try another peer).
func PutRepair(ctx context.Context, h host.Host, p peer.ID, record string, ar *consent.Request, r io.Reader, opts ...CallOption) (vault.ShareID, error) {
	s, t, err := open(ctx, h, p, request{Op: OpPut, Record: record, Admit: true, Access: ar.Encode()}, budget(ctx, opts))
	if err != nil {
		return vault.ShareID{}, err
	}
	src := &sourceReader{r: r}
	id, err := put(s, t, p, src)
	if err != nil && src.err == nil && ctx.Err() == nil {
		err = overRelay(s, p, err)
	}
	return id, err
}
