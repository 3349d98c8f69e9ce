package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/blake3"
)

// OpenOptions configure Open.
type OpenOptions struct {
	// Progress, if set, receives the number of plaintext bytes written.
	Progress Progress
}

// NotEnoughSharesError reports that a record cannot be rebuilt: fewer than
// K of its shares are usable. Shares says what is wrong with each one that
// was tried.
type NotEnoughSharesError struct {
	K, N   int
	Usable int
	Shares []ShareHealth
}

func (e *NotEnoughSharesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: need %d of %d shares, %d usable", ErrNotEnoughShares, e.K, e.N, e.Usable)
	var bad []string
	for _, s := range e.Shares {
		if s.Status != StatusOK {
			bad = append(bad, fmt.Sprintf("share %d %s", s.Index, s.Status))
		}
	}
	if len(bad) > 0 {
		b.WriteString(" (" + strings.Join(bad, ", ") + ")")
	}
	return b.String()
}

func (e *NotEnoughSharesError) Unwrap() error { return ErrNotEnoughShares }

// Open rebuilds the record described by m from the shares in src and
// writes the plaintext to w. It reads K shares, checks every block against
// its hash before use, and switches to another share when one is missing,
// truncated or corrupt. If fewer than K usable shares remain it returns a
// *NotEnoughSharesError. Memory is bounded by a few stripes.
//
// Output is written as it is authenticated (age authenticates every 64 KiB
// chunk), so on error w may hold a correct but incomplete prefix: write to
// a temporary file and rename it on success.
func Open(ctx context.Context, m *Manifest, src ShareGetter, w io.Writer, opts OpenOptions) error {
	if err := m.validate(); err != nil {
		return err
	}
	key, err := m.Identity()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var asmErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		asmErr = Reassemble(ctx, m, src, pw)
		pw.CloseWithError(asmErr)
	}()
	err = func() error {
		dr, err := age.Decrypt(pr, key)
		if err != nil {
			return err
		}
		_, err = io.Copy(&outWriter{w: w, p: opts.Progress}, dr)
		return err
	}()
	pr.CloseWithError(errDecryptStopped)
	<-done
	if asmErr != nil && !errors.Is(asmErr, errDecryptStopped) {
		return asmErr
	}
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return we.err
		}
		return fmt.Errorf("%w: %w", ErrCiphertext, err)
	}
	return nil
}

var errDecryptStopped = errors.New("vault: decryption stopped")

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// outWriter reports progress and marks the destination's errors, so that
// they are not mistaken for a bad ciphertext.
type outWriter struct {
	w io.Writer
	p Progress
}

func (ow *outWriter) Write(b []byte) (int, error) {
	n, err := ow.w.Write(b)
	if n > 0 && ow.p != nil {
		ow.p.Add(int64(n))
	}
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// shareReader reads the blocks of one share in order, checking each.
type shareReader struct {
	index  int
	rc     io.ReadCloser
	next   int64 // next stripe to read
	health ShareHealth
}

func (m *Manifest) openShare(ctx context.Context, src ShareGetter, i int) *shareReader {
	sr := &shareReader{index: i, health: ShareHealth{Index: i, ID: m.Shares[i].ID, Status: StatusOK}}
	rc, err := src.Get(ctx, m.Shares[i].ID)
	if err != nil {
		sr.fail(err)
		return sr
	}
	sr.rc = rc
	hdr := make([]byte, ShareHeaderSize)
	if _, err := io.ReadFull(rc, hdr); err != nil {
		sr.fail(truncated(err, "header"))
		return sr
	}
	if err := checkShareHeader(hdr, m.RecordID, i, m.K, m.N, m.StripeSize/int64(m.K)); err != nil {
		sr.fail(err)
	}
	return sr
}

func truncated(err error, where string) error {
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: share truncated in %s", errTruncated, where)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// A reader that says why it stopped short (a relay that cut the
		// stream at its budget): keep its words for the share's detail,
		// which the CLI's hints read.
		return fmt.Errorf("%w: share truncated in %s: %w", errTruncated, where, err)
	}
	return err
}

var errTruncated = fmt.Errorf("%w: truncated", ErrCorruptShare)

func (sr *shareReader) ok() bool { return sr.health.Status == StatusOK }

func (sr *shareReader) fail(err error) {
	sr.health.Status = statusOf(err)
	sr.health.Detail = err.Error()
	if sr.rc != nil {
		sr.rc.Close()
		sr.rc = nil
	}
}

func (sr *shareReader) close() {
	if sr.rc != nil {
		sr.rc.Close()
		sr.rc = nil
	}
}

// readBlock reads the block of stripe s into dst (len = block length of s)
// and checks its hash; earlier blocks are skipped.
func (sr *shareReader) readBlock(m *Manifest, l layout, s int64, dst []byte) {
	if sr.next < s {
		skip := (s - sr.next) * l.block
		var err error
		if sk, ok := sr.rc.(io.Seeker); ok {
			// A seek past the end is caught by the read below.
			_, err = sk.Seek(skip, io.SeekCurrent)
		} else {
			_, err = io.CopyN(io.Discard, sr.rc, skip)
		}
		if err != nil {
			sr.fail(truncated(err, fmt.Sprintf("stripe %d", sr.next)))
			return
		}
		sr.next = s
	}
	if _, err := io.ReadFull(sr.rc, dst); err != nil {
		sr.fail(truncated(err, fmt.Sprintf("stripe %d", s)))
		return
	}
	sr.next = s + 1
	if Hash(blake3.Sum256(dst)) != m.Shares[sr.index].BlockHashes[s] {
		sr.fail(fmt.Errorf("%w: block %d hash mismatch", ErrCorruptShare, s))
	}
}

// Reassemble rebuilds the age ciphertext of the record from its shares and
// writes it to w, checking every block before use. It needs no key: repair
// and the `age` CLI both start from its output.
func Reassemble(ctx context.Context, m *Manifest, src ShareGetter, w io.Writer) error {
	if err := m.validate(); err != nil {
		return err
	}
	l := m.layout()
	enc, err := reedsolomon.New(m.K, m.N-m.K, reedsolomon.WithAutoGoroutines(int(l.block)))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadParams, err)
	}
	readers := make([]*shareReader, m.N)
	defer func() {
		for _, sr := range readers {
			if sr != nil {
				sr.close()
			}
		}
	}()
	nextCandidate := 0
	// activate opens untried shares until want are usable or none is left.
	var active []*shareReader
	activate := func(want int) {
		for len(active) < want && nextCandidate < m.N {
			i := nextCandidate
			nextCandidate++
			sr := m.openShare(ctx, src, i)
			readers[i] = sr
			if sr.ok() {
				active = append(active, sr)
			}
		}
	}
	notEnough := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &NotEnoughSharesError{K: m.K, N: m.N}
		for i, sr := range readers {
			h := ShareHealth{Index: i, ID: m.Shares[i].ID, Status: StatusUntried}
			if sr != nil {
				h = sr.health
				if sr.ok() {
					e.Usable++
				}
			}
			e.Shares = append(e.Shares, h)
		}
		return e
	}

	bufs := make([][]byte, m.N)
	for i := range bufs {
		bufs[i] = make([]byte, l.block)
	}
	shards := make([][]byte, m.N)
	for s := range l.stripes {
		bl := l.blockLen(s)
		for {
			activate(m.K)
			if len(active) < m.K {
				return notEnough()
			}
			var wg sync.WaitGroup
			for _, sr := range active {
				if sr.next > s {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					sr.readBlock(m, l, s, bufs[sr.index][:bl])
				}()
			}
			wg.Wait()
			if err := ctx.Err(); err != nil {
				return err
			}
			good := active[:0]
			for _, sr := range active {
				if sr.ok() {
					good = append(good, sr)
				}
			}
			active = good
			if len(active) == m.K {
				break
			}
		}
		for i := range shards {
			shards[i] = nil
			if i < m.K {
				shards[i] = bufs[i][:0]
			}
		}
		for _, sr := range active {
			shards[sr.index] = bufs[sr.index][:bl]
		}
		if err := enc.ReconstructData(shards); err != nil {
			return fmt.Errorf("%w: erasure decoding: %w", ErrCiphertext, err)
		}
		// A rebuilt data block must hash to the manifest's value too.
		for j := 0; j < m.K; j++ {
			if readers[j] == nil || !readers[j].ok() || readers[j].next <= s {
				if Hash(blake3.Sum256(shards[j])) != m.Shares[j].BlockHashes[s] {
					return fmt.Errorf("%w: rebuilt block %d of share %d does not match", ErrCiphertext, s, j)
				}
			}
		}
		left := l.dataLen(s)
		for j := 0; j < m.K && left > 0; j++ {
			b := shards[j][:min(int64(len(shards[j])), left)]
			if _, err := w.Write(b); err != nil {
				return err
			}
			left -= int64(len(b))
		}
	}
	return nil
}
