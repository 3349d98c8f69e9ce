// Package wire frames the small control messages of medwallet's libp2p
// protocols: a uvarint length, then canonical CBOR, read through a
// size-bounded reader. Bulk data (shares) follows a frame as raw bytes.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
)

// ErrTooLarge reports a frame over the reader's limit.
var ErrTooLarge = errors.New("message too large")

// Write sends v as one frame.
func Write(w io.Writer, v any) error {
	b, err := consent.Marshal(v)
	if err != nil {
		return err
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Reader is what Read needs: a *bufio.Reader shared across the frames of
// one stream does.
type Reader interface {
	io.Reader
	io.ByteReader
}

// Read reads one frame of at most limit bytes into v.
func Read(r Reader, limit int, v any) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > uint64(limit) {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return consent.Unmarshal(b, v)
}

// IdleReader renews a stream's read deadline before every read, so a
// transfer may take as long as it needs but never stalls for more than idle.
type IdleReader struct {
	S    network.Stream
	R    io.Reader
	Idle time.Duration
}

func (r *IdleReader) Read(p []byte) (int, error) {
	_ = r.S.SetReadDeadline(time.Now().Add(r.Idle))
	return r.R.Read(p)
}

// IdleWriter renews a stream's write deadline before every write.
type IdleWriter struct {
	S    network.Stream
	Idle time.Duration
}

func (w *IdleWriter) Write(p []byte) (int, error) {
	_ = w.S.SetWriteDeadline(time.Now().Add(w.Idle))
	return w.S.Write(p)
}
