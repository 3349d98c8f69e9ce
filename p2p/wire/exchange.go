package wire

import (
	"bufio"
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Exchange is one request and one response on a new stream of proto to
// p: it writes req, closes its side for writing and reads a response of at
// most limit bytes into resp, within b (its Total cut to ctx's deadline).
// The stream may run over a limited (relayed) connection, for the reason
// given (network.WithAllowLimitedConn): only small control messages should.
// On any error the stream is reset.
func Exchange(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, reason string, b Budget, limit int, req, resp any) error {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, reason), p, proto)
	if err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		if left := max(time.Until(d), time.Nanosecond); b.Total == 0 || left < b.Total {
			b.Total = left
		}
	}
	t := NewTransfer(st, b)
	if err := Write(t, req); err != nil {
		st.Reset()
		return err
	}
	_ = st.CloseWrite()
	if err := Read(st, bufio.NewReader(t), limit, resp); err != nil {
		st.Reset()
		return err
	}
	_ = st.Close() // the answer is in: a failing close changes nothing
	return nil
}
