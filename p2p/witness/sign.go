package witness

// Checkpoints of sub-feeds. A peer's access sub-feed about patient S
// (consent.SubFeed) is signed by a key only the peer holds, so only the
// peer can sign its checkpoints. S's wallet asks for one on
// /medwallet/witness/checkpoint/1.0.0 and has it cosigned by witnesses as
// it does for its own feed.
//
// Wire format (version 1). One request and one answer per stream, each one
// frame (package wire: a uvarint length, then canonical CBOR, strictly
// decoded; a request of at most 64 bytes).
//
//	request  {1: size (uint, at least 1)}
//	answer   {1: code (text), 2: checkpoint note (bytes),
//	          3: certificate {1: author, 2: key, 3: sig} (consent.CheckpointCert),
//	          5: detail (text)}
//
// The subject is the stream's authenticated remote: a peer signs only for
// S the checkpoints of its own sub-feed about S, over the first size
// entries (size at most the entries it holds). The note is signed by the
// sub-feed's checkpoint key (consent.DeriveCheckpointKey of the sub-feed's
// signer) and the certificate binds that key to the sub-feed's ID, so the
// note proves what the peer's sub-feed held, as a checkpoint of any author
// does. Codes: "ok"; "not-found" (this peer holds no sub-feed about the
// remote with that many entries; field 5 says how many it holds);
// "bad-request"; "rate-limited" (the witness's per-remote rate);
// "busy" (too many streams).

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
	"github.com/medwallet/medwallet/p2p/wire"
)

// SignID is the protocol ID of sub-feed checkpoints.
const SignID protocol.ID = "/medwallet/witness/checkpoint/1.0.0"

// CodeNotFound answers a checkpoint request for a sub-feed this peer does
// not hold at that size.
const CodeNotFound = "not-found"

// ErrNoSubFeed reports a not-found answer; it wraps ErrRemote.
var ErrNoSubFeed = errors.New("peer holds no such sub-feed")

const (
	maxSignRequest  = 64
	maxSignResponse = consent.MaxCheckpointNote + 1024
)

// SignRequest asks a peer for a checkpoint of its sub-feed about the
// remote.
type SignRequest struct {
	Size uint64 `cbor:"1,keyasint"`
}

// SignResponse is the peer's answer.
type SignResponse struct {
	Code  string                  `cbor:"1,keyasint"`
	Note  []byte                  `cbor:"2,keyasint,omitempty"`
	Cert  *consent.CheckpointCert `cbor:"3,keyasint,omitempty"`
	Error string                  `cbor:"5,keyasint,omitempty"`
}

// FeedHashes returns the hashes of the first size entries of author's
// feed, or false if fewer are held.
type FeedHashes func(author consent.ID, size uint64) ([]consent.Hash, bool)

// LedgerHashes is FeedHashes over a ledger.
func LedgerHashes(l *consent.Ledger) FeedHashes {
	return func(author consent.ID, size uint64) ([]consent.Hash, bool) {
		var out []consent.Hash
		l.View(func(v *consent.View) {
			if v.Head(author).Seq < size {
				return
			}
			out = make([]consent.Hash, 0, size)
			for seq := uint64(1); seq <= size; seq++ {
				h, ok := v.HashAt(author, seq)
				if !ok {
					out = nil
					return
				}
				out = append(out, h)
			}
		})
		return out, out != nil
	}
}

// WithSubFeedCheckpoints makes the service also answer
// /medwallet/witness/checkpoint/1.0.0 over the sub-feeds hashes reads.
func WithSubFeedCheckpoints(hashes FeedHashes) Option {
	return func(s *Service) { s.hashes = hashes }
}

func (s *Service) handleSign(st network.Stream) {
	p := st.Conn().RemotePeer()
	t := wire.NewTransfer(st, s.lim.Budget)
	answer := replier[SignResponse](st, t, s.lim.Budget)
	release, ok := s.slots.Acquire(p)
	if !ok {
		answer(SignResponse{Code: CodeBusy, Error: "too many streams"})
		return
	}
	defer release()
	var req SignRequest
	if err := wire.Read(st, bufio.NewReader(t), maxSignRequest, &req); err != nil {
		st.Reset()
		return
	}
	if !s.allow(p) {
		answer(SignResponse{Code: CodeRateLimited, Error: "too many requests"})
		return
	}
	answer(s.SignSubFeed(consent.ID(p.String()), req.Size))
}

// SignSubFeed signs a checkpoint of this peer's sub-feed about subject
// over its first size entries. It is the handler's logic without the
// stream.
func (s *Service) SignSubFeed(subject consent.ID, size uint64) SignResponse {
	if size == 0 {
		return SignResponse{Code: CodeBadRequest, Error: "size 0"}
	}
	sub, err := consent.NewSubFeed(s.signer, subject)
	if err != nil {
		return SignResponse{Code: CodeBadRequest, Error: "not an identity"}
	}
	hashes, ok := s.hashes(sub.ID(), size)
	if !ok {
		return SignResponse{Code: CodeNotFound, Error: fmt.Sprintf("no sub-feed of %d entries about you", size)}
	}
	key, err := consent.DeriveCheckpointKey(sub)
	if err != nil {
		return SignResponse{Code: CodeBusy, Error: "internal error"}
	}
	root, err := consent.NewTree(hashes).Root(size)
	if err != nil {
		return SignResponse{Code: CodeBusy, Error: "internal error"}
	}
	note, err := key.Sign(size, root)
	if err != nil {
		return SignResponse{Code: CodeBusy, Error: "internal error"}
	}
	cert, err := key.Certify(sub)
	if err != nil {
		return SignResponse{Code: CodeBusy, Error: "internal error"}
	}
	return SignResponse{Code: CodeOK, Note: note, Cert: cert}
}

// SignSubFeed asks peer p for a checkpoint of its sub-feed about the
// identity of h over the first size entries. It checks the certificate
// and the note's signature by the certified key, not what the note says.
func SignSubFeed(ctx context.Context, h host.Host, p peer.ID, size uint64) ([]byte, *consent.CheckpointCert, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "medwallet witness: small request"), p, SignID)
	if err != nil {
		return nil, nil, err
	}
	t := wire.NewTransfer(st, clientBudget(ctx))
	if err := wire.Write(t, SignRequest{Size: size}); err != nil {
		st.Reset()
		return nil, nil, err
	}
	_ = st.CloseWrite()
	var resp SignResponse
	if err := wire.Read(st, bufio.NewReader(t), maxSignResponse, &resp); err != nil {
		st.Reset()
		return nil, nil, err
	}
	st.Close()
	switch resp.Code {
	case CodeOK:
	case CodeNotFound:
		return nil, nil, fmt.Errorf("checkpoint from %s: %w: %w: %s", p.ShortString(), ErrRemote, ErrNoSubFeed, resp.Error)
	default:
		return nil, nil, CodeError(p, Response{Code: resp.Code, Error: resp.Error})
	}
	if resp.Cert == nil {
		return nil, nil, fmt.Errorf("checkpoint from %s: %w: no certificate", p.ShortString(), consent.ErrCheckpointCert)
	}
	if err := resp.Cert.Verify(); err != nil {
		return nil, nil, fmt.Errorf("checkpoint from %s: %w", p.ShortString(), err)
	}
	if _, err := consent.OpenCheckpoint(resp.Note, resp.Cert.Key); err != nil {
		return nil, nil, fmt.Errorf("checkpoint from %s: %w", p.ShortString(), err)
	}
	return resp.Note, resp.Cert, nil
}
