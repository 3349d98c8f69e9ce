package shares

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

func open(ctx context.Context, h host.Host, p peer.ID, req request) (network.Stream, error) {
	s, err := h.NewStream(ctx, p, ID)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := wire.Write(&wire.IdleWriter{S: s, Idle: idleTimeout}, req); err != nil {
		s.Reset()
		return nil, err
	}
	return s, nil
}

func readResponse(s network.Stream, br *bufio.Reader, p peer.ID) (response, error) {
	var r response
	if err := wire.Read(s, &idle{s, br}, maxFrame, &r); err != nil {
		return r, err
	}
	if r.OK {
		return r, nil
	}
	switch r.Code {
	case "denied":
		return r, &DeniedError{Peer: p, Reason: r.Reason}
	case "not-found":
		return r, fmt.Errorf("peer %s: %w", p.ShortString(), ErrNotFound)
	case "rate-limited":
		return r, fmt.Errorf("peer %s: %w", p.ShortString(), ErrRateLimited)
	case "bad-request":
		return r, fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrBadRequest, r.Error)
	}
	return r, fmt.Errorf("peer %s: %w: %s", p.ShortString(), ErrRemote, r.Error)
}

// idle adapts a stream's buffered reader so every read renews the deadline.
type idle struct {
	s  network.Stream
	br *bufio.Reader
}

func (i *idle) Read(p []byte) (int, error) {
	return (&wire.IdleReader{S: i.s, R: i.br, Idle: idleTimeout}).Read(p)
}

// ReadByte lets wire.Read parse the length prefix.
func (i *idle) ReadByte() (byte, error) { return i.br.ReadByte() }

// Put stores the share read from r on peer p, as a share of record owned
// by the host's own ID, and returns its content address as the peer
// computed it.
func Put(ctx context.Context, h host.Host, p peer.ID, record string, r io.Reader) (vault.ShareID, error) {
	s, err := open(ctx, h, p, request{Op: OpPut, Record: record})
	if err != nil {
		return vault.ShareID{}, err
	}
	if _, err := io.Copy(&wire.IdleWriter{S: s, Idle: idleTimeout}, r); err != nil {
		s.Reset()
		return vault.ShareID{}, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return vault.ShareID{}, err
	}
	defer s.Close()
	resp, err := readResponse(s, bufio.NewReader(s), p)
	if err != nil {
		s.Reset()
		return vault.ShareID{}, err
	}
	id, err := shareID(resp.Share)
	if err != nil {
		return id, fmt.Errorf("peer %s: %w", p.ShortString(), err)
	}
	return id, nil
}

// Get asks peer p for share id under the signed access request ar. A denial
// is a *DeniedError. The caller must verify the bytes (the manifest's block
// hashes do) and close the reader.
func Get(ctx context.Context, h host.Host, p peer.ID, id vault.ShareID, ar *consent.Request) (io.ReadCloser, error) {
	s, err := open(ctx, h, p, request{Op: OpGet, Share: id[:], Access: ar.Encode()})
	if err != nil {
		return nil, err
	}
	_ = s.CloseWrite()
	br := bufio.NewReader(s)
	resp, err := readResponse(s, br, p)
	if err != nil {
		s.Reset()
		return nil, err
	}
	return &shareReader{s: s, r: io.LimitReader(&idle{s, br}, resp.Size), left: resp.Size}, nil
}

type shareReader struct {
	s    network.Stream
	r    io.Reader
	left int64
}

func (r *shareReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		return n, io.ErrUnexpectedEOF
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
func Has(ctx context.Context, h host.Host, p peer.ID, id vault.ShareID) (bool, error) {
	s, err := open(ctx, h, p, request{Op: OpHas, Share: id[:]})
	if err != nil {
		return false, err
	}
	defer s.Close()
	_ = s.CloseWrite()
	resp, err := readResponse(s, bufio.NewReader(s), p)
	if err != nil {
		s.Reset()
		return false, err
	}
	return resp.Has, nil
}

// Delete asks peer p to delete share id; only the owner may.
func Delete(ctx context.Context, h host.Host, p peer.ID, id vault.ShareID) error {
	s, err := open(ctx, h, p, request{Op: OpDelete, Share: id[:]})
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.CloseWrite()
	if _, err := readResponse(s, bufio.NewReader(s), p); err != nil {
		s.Reset()
		return err
	}
	return nil
}
