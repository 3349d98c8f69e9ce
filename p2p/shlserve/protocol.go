package shlserve

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/smarthealth"
)

// ID is the upload protocol's ID.
const ID protocol.ID = "/medwallet/shl/1.0.0"

// Protocol codes besides store's admission codes (quota, not-allowed).
const (
	CodeBadRequest = "bad-request"
	CodeNotFound   = "not-found"
	CodeOwner      = "owner"
	CodeDenied     = "denied"
	CodeBusy       = "busy"
	CodeInternal   = "internal"
	codeQuota      = store.CodeQuota
)

// Errors a client sees; each wraps ErrRemote.
var (
	ErrRemote = errors.New("peer refused")
	// ErrNotFound: the peer does not hold the shl entry yet.
	ErrNotFound = errors.New("the peer does not hold the link's ledger entry")
	// ErrDenied: the link is revoked or expired, or another identity's.
	ErrDenied = errors.New("the peer refuses this link")
	// ErrBusy: try again later.
	ErrBusy = errors.New("peer busy")
)

type request struct {
	Op       string       `cbor:"1,keyasint"`
	Link     consent.Hash `cbor:"2,keyasint,omitzero"`
	Index    uint32       `cbor:"3,keyasint,omitempty"`
	Type     string       `cbor:"4,keyasint,omitempty"`
	File     []byte       `cbor:"5,keyasint,omitempty"`
	Verifier *Verifier    `cbor:"6,keyasint,omitempty"`
}

type response struct {
	OK    bool   `cbor:"1,keyasint,omitempty"`
	Error string `cbor:"2,keyasint,omitempty"`
	Code  string `cbor:"3,keyasint,omitempty"`
	URL   string `cbor:"4,keyasint,omitempty"`
}

func fail(code, msg string) response { return response{Error: msg, Code: code} }

// handle serves one upload stream: a slot for the remote (or busy), the
// request frame within the pool's memory, one answer.
func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	t := wire.NewTransfer(st, uploadBudget)
	answer := func(r response) {
		t.Start(uploadBudget)
		if err := wire.Write(t, r); err != nil {
			st.Reset()
			return
		}
		st.Close()
	}
	release, ok := s.slots.Acquire(p)
	if !ok {
		answer(fail(CodeBusy, "busy: too many uploads"))
		return
	}
	defer release()
	var req request
	held, err := wire.ReadKeep(s.pool.Scoped(st), bufio.NewReader(t), maxFrame, &req, s.pool.Take)
	if errors.Is(err, network.ErrResourceLimitExceeded) {
		answer(fail(CodeBusy, "busy: no memory for the request"))
		return
	}
	if err != nil {
		s.log.Debug("shl upload failed", "peer", p.ShortString(), "err", err)
		st.Reset()
		return
	}
	resp := s.serveUpload(consent.ID(p.String()), req)
	held()
	answer(resp)
}

func (s *Service) serveUpload(owner consent.ID, req request) response {
	switch req.Op {
	case "info":
		return response{OK: true, URL: s.base}
	case "put", "delete":
	default:
		return fail(CodeBadRequest, "unknown operation")
	}
	var l *consent.ShlLink
	var revoked bool
	s.deps.Ledger.View(func(v *consent.View) {
		if x, ok := v.ShlLink(req.Link); ok {
			l, revoked = x, v.ShlRevoked(req.Link, x.Author)
		}
	})
	if l == nil {
		return fail(CodeNotFound, "the peer does not hold this link's shl entry")
	}
	if l.Author != owner {
		return fail(CodeOwner, "the link is another identity's")
	}
	if req.Op == "delete" {
		if err := s.store.drop(l.Link); err != nil {
			return fail(CodeInternal, "internal error")
		}
		return response{OK: true}
	}
	if s.deps.Allowed != nil && !s.deps.Allowed(owner) {
		return fail(store.CodeNotAllowed, store.ErrNotAllowed.Error())
	}
	if revoked || l.Expires != 0 && s.now().Unix() >= l.Expires {
		return fail(CodeDenied, "the link is revoked or expired")
	}
	i := int(req.Index)
	if i >= len(l.Records) || uint64(len(req.File)) != l.Files[i] {
		return fail(CodeBadRequest, "the file is not the one the shl entry names")
	}
	switch req.Type {
	case smarthealth.ContentFHIR, smarthealth.ContentCard:
	default:
		return fail(CodeBadRequest, "unsupported content type")
	}
	if l.Passcode() != (req.Verifier != nil) || req.Verifier != nil && (len(req.Verifier.Salt) != saltSize || len(req.Verifier.Hash) != hashSize) {
		return fail(CodeBadRequest, "a passcode link needs a verifier, any other none")
	}
	types := make([]string, len(l.Records))
	types[i] = req.Type
	if cur, ok, err := s.store.get(l.Link); err == nil && ok && cur.Entry == l.ID {
		copy(types, cur.Types)
		types[i] = req.Type
	}
	err := s.store.put(l.Link, link{Owner: owner, Entry: l.ID, Types: types, Verifier: req.Verifier}, i, req.File, s.lim)
	switch {
	case errors.Is(err, errQuota):
		return fail(codeQuota, fmt.Sprintf("the owner holds %d links or %d MiB of files on this peer", s.lim.MaxLinks, s.lim.MaxBytes>>20))
	case errors.Is(err, errOwner):
		return fail(CodeOwner, "the link ID is taken")
	case errors.Is(err, errDead):
		return fail(CodeDenied, "the link is dead")
	case err != nil:
		s.log.Warn("shl store failed", "err", err)
		return fail(CodeInternal, "internal error")
	}
	s.log.Info("shl file stored", "owner", owner.Short(), "index", i)
	return response{OK: true, URL: s.base}
}

var errOwner = errors.New("owner")

func call(ctx context.Context, h host.Host, p peer.ID, req request) (response, error) {
	var resp response
	if err := wire.Exchange(ctx, h, p, ID, "medwallet shl: upload", uploadBudget, 64<<10, req, &resp); err != nil {
		return response{}, err
	}
	return resp, answerError(p, resp)
}

func answerError(p peer.ID, resp response) error {
	if resp.OK {
		return nil
	}
	var kind error
	switch resp.Code {
	case CodeNotFound:
		kind = ErrNotFound
	case CodeDenied, CodeOwner:
		kind = ErrDenied
	case CodeBusy:
		kind = ErrBusy
	default:
		if e := store.CodeError(resp.Code); e != nil {
			return fmt.Errorf("peer %s: %w: %w", p.ShortString(), ErrRemote, e)
		}
		return fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrRemote, resp.Error)
	}
	return fmt.Errorf("peer %s: %w: %w: %s", p.ShortString(), ErrRemote, kind, resp.Error)
}

// Info asks p whether it serves links over HTTPS, and returns its public
// base URL.
func Info(ctx context.Context, h host.Host, p peer.ID) (string, error) {
	resp, err := call(ctx, h, p, request{Op: "info"})
	return resp.URL, err
}

// Put uploads file index of the link of shl entry link (the host's) to p,
// with the passcode verifier of a passcode link. It returns p's base URL.
func Put(ctx context.Context, h host.Host, p peer.ID, link consent.Hash, index int, contentType string, file []byte, v *Verifier) (string, error) {
	resp, err := call(ctx, h, p, request{Op: "put", Link: link, Index: uint32(index), Type: contentType, File: file, Verifier: v})
	return resp.URL, err
}

// Delete asks p to drop the files of the host's link.
func Delete(ctx context.Context, h host.Host, p peer.ID, link consent.Hash) error {
	_, err := call(ctx, h, p, request{Op: "delete", Link: link})
	return err
}
