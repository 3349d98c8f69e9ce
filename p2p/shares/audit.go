package shares

// Audits: a challenger (the owner, or a repairer the owner authorised)
// names a share, a few block indexes and a fresh nonce; the holder answers
// with those blocks, and the challenger checks each against the block
// hashes of the record's repair capability. A wrong, short or missing
// answer is a failed audit, which the repairer counts as a lost share. An
// audit moves a few blocks, not the share: a holder that kept the share
// answers at once, one that threw it away cannot (the blocks are random
// and their hashes are all the challenger holds).
//
// An audit is decided like a repairer's get (consent.Decide, reason
// repair; the owner itself needs no request) but not logged on the
// ledger: a repairer audits every holder of every record each cycle, and
// an access entry each time would grow every patient's ledger by n
// entries a cycle for no disclosure (an audit answers at most
// MaxAuditBlocks blocks of one share, under k shares' worth of nothing).
// Audits share the per-requester get budget (rate-limited) and the get
// slots.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

// Bounds of one audit.
const (
	// MaxAuditBlocks is the most blocks one audit asks for.
	MaxAuditBlocks = 4
	// MaxAuditBytes bounds the blocks of one answer (4 blocks of a 16 MiB
	// stripe at k=2; the default stripes make blocks of about 350 KiB).
	MaxAuditBytes = 32 << 20
)

// ErrAuditFailed reports a holder whose answer to an audit is wrong: a
// block that does not match its hash, a short or long answer, or the
// wrong nonce. Errors.As finds the *AuditError.
var ErrAuditFailed = errors.New("audit failed")

// AuditError is a failed audit of share Index (ID Share) on Peer.
type AuditError struct {
	Peer   peer.ID
	Share  vault.ShareID
	Index  int
	Detail string
}

func (e *AuditError) Error() string {
	return fmt.Sprintf("peer %s: %v: share %d (%s): %s", e.Peer.ShortString(), ErrAuditFailed, e.Index, e.Share.String()[:12], e.Detail)
}

func (e *AuditError) Unwrap() error { return ErrAuditFailed }

func (s *Service) serveAudit(w io.Writer, remote consent.ID, req request) error {
	reply := func(r response) error { return wire.Write(w, r) }
	if !s.gets.allow(remote, s.now()) {
		return reply(response{Error: ErrRateLimited.Error(), Code: "rate-limited"})
	}
	id, err := shareID(req.Share)
	if err != nil {
		return reply(response{Error: err.Error(), Code: "bad-request"})
	}
	if len(req.Nonce) < consent.MinNonceSize || len(req.Nonce) > consent.MaxNonceSize {
		return reply(response{Error: "audit: bad nonce", Code: "bad-request"})
	}
	if len(req.Blocks) == 0 || len(req.Blocks) > MaxAuditBlocks {
		return reply(response{Error: fmt.Sprintf("audit: 1 to %d blocks", MaxAuditBlocks), Code: "bad-request"})
	}
	for i := 1; i < len(req.Blocks); i++ {
		if req.Blocks[i] <= req.Blocks[i-1] {
			return reply(response{Error: "audit: blocks not sorted and unique", Code: "bad-request"})
		}
	}
	m, err := s.st.Meta(id)
	if errors.Is(err, store.ErrNotFound) {
		return reply(response{Error: "share not found", Code: "not-found"})
	}
	if err != nil {
		return err
	}
	if remote != m.Owner {
		if d, r := s.decideAudit(remote, m, req); !d.Allow {
			return reply(r)
		}
	}
	rc, err := s.st.Get(context.Background(), id)
	if err != nil {
		return err
	}
	defer rc.Close()
	hdr := make([]byte, vault.ShareHeaderSize)
	if _, err := io.ReadFull(rc, hdr); err != nil {
		return err
	}
	block, err := vault.ShareBlockSize(hdr)
	if err != nil {
		return reply(response{Error: "audit: the stored share has no valid header", Code: "not-found"})
	}
	// Offsets and lengths of the blocks asked for, within the share.
	type span struct{ off, n int64 }
	spans := make([]span, len(req.Blocks))
	var total int64
	for i, b := range req.Blocks {
		off := vault.ShareHeaderSize + int64(b)*block
		if off >= m.Size {
			return reply(response{Error: fmt.Sprintf("audit: the share has no block %d", b), Code: "bad-request"})
		}
		spans[i] = span{off, min(block, m.Size-off)}
		total += spans[i].n
	}
	if total > MaxAuditBytes {
		return reply(response{Error: "audit: too many bytes asked for", Code: "bad-request"})
	}
	if err := reply(response{OK: true, Size: total, Nonce: req.Nonce}); err != nil {
		return err
	}
	at := int64(vault.ShareHeaderSize)
	for _, sp := range spans {
		if _, err := io.CopyN(io.Discard, rc, sp.off-at); err != nil {
			return err
		}
		if _, err := io.CopyN(w, rc, sp.n); err != nil {
			return err
		}
		at = sp.off + sp.n
	}
	s.log.Debug("share audited", "share", id.String()[:12], "blocks", len(spans))
	return nil
}

// decideAudit decides a repairer's audit (consent.Decide on the request
// the audit carries; not logged, see the package comment). It returns the
// refusal to answer when the audit is not allowed.
func (s *Service) decideAudit(remote consent.ID, m store.ShareMeta, req request) (consent.Decision, response) {
	ar, err := consent.DecodeRequest(req.Access)
	if err != nil {
		return consent.Decision{}, response{Error: "audit: only the owner or an authorised repairer may audit", Code: "bad-request"}
	}
	if ar.Owner != m.Owner || ar.Record != m.Record || ar.Requester != remote || ar.Purpose != consent.PurposeRepair {
		return consent.Decision{}, response{Error: "request does not match this share or this connection", Code: "bad-request"}
	}
	if s.gate != nil {
		if err := s.gate(ar); err != nil {
			return consent.Decision{}, response{Error: err.Error(), Code: "busy"}
		}
	}
	var d consent.Decision
	s.ledger.View(func(v *consent.View) { d = consent.Decide(v, ar, s.now()) })
	if !d.Allow {
		return d, response{Error: "denied", Code: "denied", Reason: d.Reason}
	}
	return d, response{}
}

// Audit challenges peer p to prove it holds share i of the record c
// describes: it asks for up to blocks random blocks (at most
// MaxAuditBlocks) with a fresh nonce and checks each against c. ar is the
// repairer's signed repair request for the record, nil when the host is
// the owner. It returns nil for a share the peer proved it holds, an
// error wrapping ErrAuditFailed (an *AuditError) for a wrong answer,
// ErrNotFound for a share the peer does not hold, and the call's error
// otherwise (unreachable, busy, denied).
func Audit(ctx context.Context, h host.Host, p peer.ID, c *vault.RepairCap, i int, ar *consent.Request, blocks int, opts ...CallOption) error {
	if i < 0 || i >= len(c.Shares) {
		return fmt.Errorf("audit: share index %d out of range", i)
	}
	id := c.Shares[i].ID
	stripes := c.Stripes()
	want := pickBlocks(stripes, min(max(blocks, 1), MaxAuditBlocks))
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	req := request{Op: OpAudit, Share: id[:], Blocks: want, Nonce: nonce}
	if ar != nil {
		req.Access = ar.Encode()
	}
	s, t, err := open(ctx, h, p, req, budget(ctx, opts))
	if err != nil {
		return err
	}
	_ = s.CloseWrite()
	br := bufio.NewReader(t)
	resp, err := readResponse(s, br, p)
	if err != nil {
		s.Reset()
		return err
	}
	fail := func(detail string) error {
		s.Reset()
		return &AuditError{Peer: p, Share: id, Index: i, Detail: detail}
	}
	if !slices.Equal(resp.Nonce, nonce) {
		return fail("the answer carries another nonce")
	}
	var total int64
	for _, b := range want {
		total += c.BlockLen(int64(b))
	}
	if resp.Size != total {
		return fail(fmt.Sprintf("the answer has %d bytes, the blocks %d", resp.Size, total))
	}
	for _, b := range want {
		buf := make([]byte, c.BlockLen(int64(b)))
		if _, err := io.ReadFull(br, buf); err != nil {
			return fail(fmt.Sprintf("block %d: %v", b, err))
		}
		if err := c.CheckBlock(i, int64(b), buf); err != nil {
			return fail(fmt.Sprintf("block %d does not match its hash", b))
		}
	}
	s.Close()
	return nil
}

// pickBlocks picks n distinct random block indexes below stripes, sorted.
func pickBlocks(stripes int64, n int) []uint32 {
	if int64(n) >= stripes {
		out := make([]uint32, stripes)
		for i := range out {
			out[i] = uint32(i)
		}
		return out
	}
	seen := map[uint32]bool{}
	for len(seen) < n {
		x, err := rand.Int(rand.Reader, big.NewInt(stripes))
		if err != nil {
			panic(err)
		}
		seen[uint32(x.Int64())] = true
	}
	out := make([]uint32, 0, n)
	for b := range seen {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}
