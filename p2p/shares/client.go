package shares

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

// ErrBusy reports a peer that refused for now (code "busy": too many
// transfers of this kind from this client or from everyone, or not caught
// up with the ledger); another peer, or a later try, may serve.
var ErrBusy = errors.New("peer busy")

// answerTimeout bounds the wait for a put's answer once every byte is sent
// (the peer commits the share first).
const answerTimeout = 30 * time.Second

// CallOption configures one client call.
type CallOption func(*wire.Budget)

// WithBudget sets the time budget of a call's transfer. By default a peer
// must send or take a share at 16 KiB/s or faster, averaged over 10 s,
// and finish within an hour and the context's deadline; a peer that stalls
// fails the call, so that a reader moves on to another holder.
func WithBudget(b wire.Budget) CallOption { return func(o *wire.Budget) { *o = b } }

// budget is the transfer budget of a call under ctx.
func budget(ctx context.Context, opts []CallOption) wire.Budget {
	b := transferBudget
	for _, o := range opts {
		o(&b)
	}
	if dl, ok := ctx.Deadline(); ok {
		left := max(time.Until(dl), time.Nanosecond)
		if b.Total == 0 || left < b.Total {
			b.Total = left
		}
	}
	return b
}

// DirectWait bounds how long a get or a put waits for a direct
// connection to a peer that it reaches only through a relay: DCUtR hole
// punching gives one within a few round trips where the NATs allow it.
// Then the transfer goes over the relayed connection, within the relay's
// budget per connection.
var DirectWait = 5 * time.Second

// ErrRelayOnly reports a get or a put that failed with a peer reachable
// only through a relay: no direct connection came up (hole punching
// failed, or was not possible), and the relayed connection did not carry
// the share, most likely because the relay's budget per connection ran
// out. Errors.Is finds it in a *RelayError.
var ErrRelayOnly = errors.New("reachable only through a relay")

// RelayError is a share transfer that failed over a relayed connection:
// errors.Is(err, ErrRelayOnly) holds, and Err is what the stream said.
type RelayError struct {
	Peer peer.ID
	Err  error
}

func (e *RelayError) Error() string {
	return fmt.Sprintf("peer %s is reachable only through a relay and no direct connection came up; the relayed transfer failed (the relay's budget per connection may have run out): %v",
		e.Peer.ShortString(), e.Err)
}

func (e *RelayError) Unwrap() []error { return []error{ErrRelayOnly, e.Err} }

// overRelay words err, of a transfer on s, as a *RelayError when s runs
// over a relayed connection and err is not the peer's own answer.
func overRelay(s network.Stream, p peer.ID, err error) error {
	if err == nil || err == io.EOF || isAnswer(err) || !s.Conn().Stat().Limited {
		return err
	}
	var re *RelayError
	if errors.As(err, &re) {
		return err
	}
	return &RelayError{Peer: p, Err: err}
}

// newStream opens a share stream to p. has and delete are small and go
// over a relayed (limited) connection as well; get and put move shares,
// so they first wait up to DirectWait for a direct connection, and only
// then use the relayed one.
func newStream(ctx context.Context, h host.Host, p peer.ID, op string) (network.Stream, error) {
	if op != OpGet && op != OpPut {
		return h.NewStream(network.WithAllowLimitedConn(ctx, "medwallet shares: small request"), p, ID)
	}
	relayed := network.WithAllowLimitedConn(ctx, "medwallet shares: no direct connection came up; within the relay's budget")
	if h.Network().Connectedness(p) != network.Connected {
		// Any connection first, a relayed one too; then see which.
		if err := h.Connect(relayed, peer.AddrInfo{ID: p}); err != nil {
			return nil, err
		}
	}
	if h.Network().Connectedness(p) != network.Limited {
		return h.NewStream(ctx, p, ID)
	}
	// Hole punching runs once per relayed connection: a connection
	// already waited on in vain is not waited on again.
	if !waitedOn(h, p) {
		s, err := h.NewStream(network.WithDialPeerTimeout(ctx, DirectWait), p, ID)
		if err == nil || ctx.Err() != nil || h.Network().Connectedness(p) != network.Limited {
			return s, err
		}
		noteWaited(h, p)
	}
	return h.NewStream(relayed, p, ID)
}

// waited holds the relayed connections a get or put waited on for a
// direct connection in vain (by connection ID), so that the next transfer
// over one does not wait again. It is cleared when it grows past
// maxWaited.
var waited struct {
	sync.Mutex
	ids map[string]bool
}

const maxWaited = 1024

// waitedOn reports whether every connection of h to p is a relayed one
// already waited on.
func waitedOn(h host.Host, p peer.ID) bool {
	waited.Lock()
	defer waited.Unlock()
	conns := h.Network().ConnsToPeer(p)
	for _, c := range conns {
		if !waited.ids[c.ID()] {
			return false
		}
	}
	return len(conns) > 0
}

// noteWaited notes h's relayed connections to p as waited on.
func noteWaited(h host.Host, p peer.ID) {
	waited.Lock()
	defer waited.Unlock()
	if waited.ids == nil || len(waited.ids) >= maxWaited {
		waited.ids = map[string]bool{}
	}
	for _, c := range h.Network().ConnsToPeer(p) {
		if c.Stat().Limited {
			waited.ids[c.ID()] = true
		}
	}
}

func open(ctx context.Context, h host.Host, p peer.ID, req request, b wire.Budget) (network.Stream, *wire.Transfer, error) {
	s, err := newStream(ctx, h, p, req.Op)
	if err != nil {
		return nil, nil, err
	}
	t := wire.NewTransfer(s, b)
	if err := wire.Write(t, req); err != nil {
		s.Reset()
		return nil, nil, err
	}
	return s, t, nil
}

func readResponse(s wire.Scoped, r wire.Reader, p peer.ID) (response, error) {
	var resp response
	if err := wire.Read(s, r, maxFrame, &resp); err != nil {
		return resp, err
	}
	if resp.OK {
		return resp, nil
	}
	switch resp.Code {
	case "denied":
		return resp, &DeniedError{Peer: p, Reason: resp.Reason}
	case "not-found":
		return resp, fmt.Errorf("peer %s: %w", p.ShortString(), ErrNotFound)
	case "rate-limited":
		return resp, fmt.Errorf("peer %s: %w", p.ShortString(), ErrRateLimited)
	case "bad-request":
		return resp, fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrBadRequest, resp.Error)
	case "busy":
		return resp, fmt.Errorf("peer %s: %w: %w: %s", p.ShortString(), ErrRemote, ErrBusy, resp.Error)
	}
	if e := store.CodeError(resp.Code); e != nil {
		return resp, fmt.Errorf("peer %s: %w", p.ShortString(), e)
	}
	return resp, fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrRemote, resp.Error)
}

// Put stores the share read from r on peer p, as a share of record owned
// by the host's own ID, and returns its content address as the peer
// computed it. The peer admits the put before Put reads a byte of r: a
// refusal then (an error wrapping one of store's admission errors) leaves
// r unread, and the caller may send it to another peer. The peer's final
// answer is read while the share is sent, so a refusal while the share
// streams (busy, the quota or the disk crossed, a header naming another
// record) stops the upload at once.
func Put(ctx context.Context, h host.Host, p peer.ID, record string, r io.Reader, opts ...CallOption) (vault.ShareID, error) {
	s, t, err := open(ctx, h, p, request{Op: OpPut, Record: record, Admit: true}, budget(ctx, opts))
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

// put runs a put of the share read from src on the open stream s.
func put(s network.Stream, t *wire.Transfer, p peer.ID, src *sourceReader) (vault.ShareID, error) {
	end := t.Deadline()
	// The raw stream: the peer is silent until it has admitted the put,
	// and then until it has every byte; deadlines bound both waits.
	br := bufio.NewReader(s)
	admit := time.Now().Add(answerTimeout)
	if !end.IsZero() && end.Before(admit) {
		admit = end
	}
	_ = s.SetReadDeadline(admit)
	if _, err := readResponse(s, br, p); err != nil {
		s.Reset()
		return vault.ShareID{}, err
	}
	_ = s.SetReadDeadline(end)
	type answer struct {
		resp response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		var a answer
		a.resp, a.err = readResponse(s, br, p)
		if a.err != nil {
			s.Reset() // stops the upload
		}
		answered <- a
	}()
	_, err := io.Copy(t, src)
	if src.err != nil {
		s.Reset()
		<-answered
		return vault.ShareID{}, src.err
	}
	if err == nil {
		err = s.CloseWrite()
	}
	// Sent, or the peer stopped taking bytes: either way its answer must
	// come soon.
	wait := time.Now().Add(answerTimeout)
	if !end.IsZero() && end.Before(wait) {
		wait = end
	}
	_ = s.SetReadDeadline(wait)
	a := <-answered
	if a.err != nil {
		if err != nil && !isAnswer(a.err) {
			return vault.ShareID{}, err
		}
		return vault.ShareID{}, a.err
	}
	if err != nil {
		s.Reset()
		return vault.ShareID{}, err
	}
	s.Close()
	id, err := shareID(a.resp.Share)
	if err != nil {
		return id, fmt.Errorf("peer %s: %w", p.ShortString(), err)
	}
	return id, nil
}

// isAnswer reports an error that is the peer's own answer.
func isAnswer(err error) bool {
	var de *DeniedError
	return errors.Is(err, ErrRemote) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadRequest) ||
		errors.Is(err, ErrRateLimited) || errors.As(err, &de) || store.Code(err) != ""
}

// sourceReader remembers an error of the local source, to tell it from
// the stream's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// Get asks peer p for share id under the signed access request ar. A denial
// is a *DeniedError. The caller must verify the bytes (the manifest's block
// hashes do) and close the reader.
func Get(ctx context.Context, h host.Host, p peer.ID, id vault.ShareID, ar *consent.Request, opts ...CallOption) (io.ReadCloser, error) {
	s, t, err := open(ctx, h, p, request{Op: OpGet, Share: id[:], Access: ar.Encode()}, budget(ctx, opts))
	if err != nil {
		return nil, err
	}
	_ = s.CloseWrite()
	br := bufio.NewReader(t)
	resp, err := readResponse(s, br, p)
	if err != nil {
		s.Reset()
		if ctx.Err() == nil {
			err = overRelay(s, p, err)
		}
		return nil, err
	}
	return &shareReader{s: s, p: p, r: io.LimitReader(br, resp.Size), left: resp.Size}, nil
}

type shareReader struct {
	s    network.Stream
	p    peer.ID
	r    io.Reader
	left int64
}

func (r *shareReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		err = overRelay(r.s, r.p, err)
	}
	return n, err
}

func (r *shareReader) Close() error {
	if r.left > 0 {
		return r.s.Reset()
	}
	return r.s.Close()
}

// Has asks peer p whether it holds share id.
func Has(ctx context.Context, h host.Host, p peer.ID, id vault.ShareID, opts ...CallOption) (bool, error) {
	s, t, err := open(ctx, h, p, request{Op: OpHas, Share: id[:]}, budget(ctx, opts))
	if err != nil {
		return false, err
	}
	defer s.Close()
	_ = s.CloseWrite()
	resp, err := readResponse(s, bufio.NewReader(t), p)
	if err != nil {
		s.Reset()
		return false, err
	}
	return resp.Has, nil
}

// Delete asks peer p to delete share id; only the owner may.
func Delete(ctx context.Context, h host.Host, p peer.ID, id vault.ShareID, opts ...CallOption) error {
	s, t, err := open(ctx, h, p, request{Op: OpDelete, Share: id[:]}, budget(ctx, opts))
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.CloseWrite()
	if _, err := readResponse(s, bufio.NewReader(t), p); err != nil {
		s.Reset()
		return err
	}
	return nil
}
