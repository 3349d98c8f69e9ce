// Package wire frames the messages of medwallet's libp2p protocols: a
// uvarint length, then that many bytes, usually deterministic CBOR (as
// package consent encodes, strictly decoded). Bulk data (shares) follows a
// frame as raw bytes.
//
// Every protocol reads its frames through ReadFrame or Read, which refuse
// a length over the caller's limit and reserve the frame's memory in the
// stream's resource scope before allocating it, so that what a remote
// peer can make this process allocate is bounded by the resource manager
// (per peer, per protocol, per stream), not by what its length prefix
// claims. Each protocol keeps its own frame size caps.
//
// Time is bounded the same way for every protocol: a Transfer reads and
// writes a stream within a Budget, an overall deadline and a minimum rate
// (a remote sending or taking a byte every few seconds is reset, it does
// not renew a deadline). Slots count the streams of one kind in progress
// per remote and in total, so that no identity holds what others need; a
// Pool bounds the bytes a service holds in frames from all remotes.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
)

// ErrTooLarge reports a frame over the reader's limit.
var ErrTooLarge = errors.New("frame too large")

// WriteFrame writes b as one frame.
func WriteFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 0, binary.MaxVarintLen64+len(b))
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	buf = append(buf, b...)
	_, err := w.Write(buf)
	return err
}

// Write encodes v canonically and sends it as one frame.
func Write(w io.Writer, v any) error {
	b, err := consent.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, b)
}

// Reader is what the frame reader reads from: a *bufio.Reader over the
// stream, shared across the frames of the stream, does.
type Reader interface {
	io.Reader
	io.ByteReader
}

// Scoped is the part of a stream the frame reader needs: its resource
// scope. network.Stream is one.
type Scoped interface {
	Scope() network.StreamScope
}

// ReadFrame reads one frame of at most limit bytes from r, which reads
// stream s. The frame's memory is reserved in s's resource scope before it
// is allocated; a reservation the resource manager refuses fails with an
// error wrapping network.ErrResourceLimitExceeded, before anything is
// allocated. The caller calls release once done with the bytes. io.EOF
// means the stream ended cleanly before a frame began.
func ReadFrame(s Scoped, r Reader, limit int) (b []byte, release func(), err error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(limit) {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, limit)
	}
	release = func() {}
	if n > 0 {
		if err := s.Scope().ReserveMemory(int(n), network.ReservationPriorityAlways); err != nil {
			return nil, nil, fmt.Errorf("reserving %d bytes for a frame: %w", n, err)
		}
		release = func() { s.Scope().ReleaseMemory(int(n)) }
	}
	b = make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		release()
		return nil, nil, fmt.Errorf("reading a frame: %w", io.ErrUnexpectedEOF)
	}
	return b, release, nil
}

// Read reads one frame of at most limit bytes, as ReadFrame does, and
// strictly decodes it into v.
func Read(s Scoped, r Reader, limit int, v any) error {
	b, release, err := ReadFrame(s, r, limit)
	if err != nil {
		return err
	}
	defer release()
	if err := consent.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %T: %w", v, err)
	}
	return nil
}

// ReadKeep reads one frame and decodes it into v as Read does, for a
// value that keeps copies of the frame's byte strings (a manifest
// envelope): before decoding, it reserves the frame's size a second time
// through keep (a service's Pool.Take, say), and holds that reservation
// until the caller calls release, so the decoded value is counted for as
// long as it lives. The frame itself is released once decoded.
func ReadKeep(s Scoped, r Reader, limit int, v any, keep func(n int) (release func(), err error)) (release func(), err error) {
	b, releaseFrame, err := ReadFrame(s, r, limit)
	if err != nil {
		return nil, err
	}
	defer releaseFrame()
	release = func() {}
	if len(b) > 0 {
		if release, err = keep(len(b)); err != nil {
			return nil, fmt.Errorf("reserving %d bytes for a decoded frame: %w", len(b), err)
		}
	}
	if err := consent.Unmarshal(b, v); err != nil {
		release()
		return nil, fmt.Errorf("decoding %T: %w", v, err)
	}
	return release, nil
}
