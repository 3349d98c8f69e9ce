package vault

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/blake3"
)

// SealOptions configure Seal.
type SealOptions struct {
	// Params are the coding parameters; zero fields take the defaults
	// (k=3, n=5, 1 MiB stripes).
	Params
	// Owner is the Ed25519 public key that will sign the manifest.
	Owner ed25519.PublicKey
	// Label is a user-supplied label kept in the encrypted manifest.
	Label string
	// Provenance, if set, is kept in the metadata (Metadata.Provenance).
	Provenance *Provenance
	// Progress, if set, receives the number of plaintext bytes read.
	Progress Progress
	// Now, if set, replaces time.Now for the manifest's creation time.
	Now func() time.Time
	// RecordID, if not zero, is the record's ID (a key rotation keeps the
	// ID so that grants naming the record still name it); zero means a
	// fresh random ID.
	RecordID RecordID
}

// MaxLabelSize bounds the user label of a record, in bytes.
const MaxLabelSize = 1024

// stripesInFlight bounds the memory of Seal and Open: at most this many
// stripes (each n blocks) are buffered at once.
const stripesInFlight = 4

// Seal reads a record from r, encrypts it to a fresh per-record age key,
// erasure-codes the ciphertext and streams the n shares concurrently into
// store. It returns the manifest (not yet signed or encrypted; see
// Manifest.Encrypt). Memory use is bounded by a few stripes whatever the
// size of r. On error, shares already stored are deleted (best effort).
func Seal(ctx context.Context, r io.Reader, store ShareSink, opts SealOptions) (*Manifest, error) {
	p, err := opts.Params.normalized()
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("vault: seal: no share store")
	}
	if len(opts.Owner) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("vault: seal: owner public key must be %d bytes", ed25519.PublicKeySize)
	}
	if !utf8.ValidString(opts.Label) || len(opts.Label) > MaxLabelSize {
		return nil, fmt.Errorf("vault: seal: label must be valid UTF-8 of at most %d bytes", MaxLabelSize)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rid := opts.RecordID
	if rid == (RecordID{}) {
		if _, err := rand.Read(rid[:]); err != nil {
			return nil, err
		}
	}
	key, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	enc, err := reedsolomon.New(p.K, p.N-p.K, reedsolomon.WithAutoGoroutines(p.StripeSize/p.K))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadParams, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sw := newStripeWriter(ctx, rid, p, enc, store)
	det := newDetector()
	src := io.TeeReader(ContextReader(ctx, r), det)
	if opts.Progress != nil {
		src = &progressReader{r: src, p: opts.Progress}
	}

	err = func() error {
		aw, err := age.Encrypt(sw, key.Recipient())
		if err != nil {
			return err
		}
		if _, err := io.Copy(aw, src); err != nil {
			if se := sw.failure(); se != nil {
				return se
			}
			return fmt.Errorf("vault: reading record: %w", err)
		}
		return aw.Close()
	}()
	ids, hashes, size, werr := sw.finish(err)
	if err == nil {
		err = werr
	}
	meta := det.finish()
	if opts.Provenance != nil {
		p := *opts.Provenance
		meta.Provenance = &p
	}
	meta = meta.sanitized()
	if err != nil {
		cleanupShares(ids, store)
		return nil, err
	}
	meta.Label = opts.Label

	m := &Manifest{
		Version:    ManifestVersion,
		RecordID:   rid,
		Owner:      append(ed25519.PublicKey(nil), opts.Owner...),
		Created:    now().UTC().Truncate(time.Second),
		Metadata:   meta,
		Key:        key.String(),
		K:          p.K,
		N:          p.N,
		StripeSize: int64(p.StripeSize),
		CipherSize: size,
		Shares:     make([]ShareRef, p.N),
	}
	for i := range m.Shares {
		m.Shares[i] = ShareRef{ID: ids[i], BlockHashes: hashes[i]}
	}
	m.CipherRoot = m.computeCipherRoot()
	return m, nil
}

func cleanupShares(ids []ShareID, store ShareSink) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		if id != (ShareID{}) {
			_ = store.Delete(ctx, id)
		}
	}
}

type progressReader struct {
	r io.Reader
	p Progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	if n > 0 {
		pr.p.Add(int64(n))
	}
	return n, err
}

// stripe is one stripe in flight: n blocks of blockLen bytes in buf.
type stripe struct {
	buf      []byte
	blocks   [][]byte
	refs     atomic.Int32
	released chan<- *stripe
}

func (s *stripe) release() {
	if s.refs.Add(-1) == 0 {
		s.released <- s
	}
}

// stripeWriter receives ciphertext, codes full stripes and hands block i of
// each stripe to share writer i, which hashes it and streams it to the
// store through a pipe. Encryption (caller), hashing (n writers) and the
// store (n Put calls) run in parallel.
type stripeWriter struct {
	ctx   context.Context
	p     Params
	enc   reedsolomon.Encoder
	block int

	free   chan *stripe
	cur    *stripe
	fill   int
	size   int64
	queues []chan *stripe

	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
	errSet  atomic.Bool
	pipes   []*io.PipeWriter
	ids     []ShareID
	hashes  [][]Hash
}

func newStripeWriter(ctx context.Context, rid RecordID, p Params, enc reedsolomon.Encoder, store ShareSink) *stripeWriter {
	block := p.StripeSize / p.K
	sw := &stripeWriter{
		ctx:    ctx,
		p:      p,
		enc:    enc,
		block:  block,
		free:   make(chan *stripe, stripesInFlight),
		queues: make([]chan *stripe, p.N),
		pipes:  make([]*io.PipeWriter, p.N),
		ids:    make([]ShareID, p.N),
		hashes: make([][]Hash, p.N),
	}
	for range stripesInFlight {
		sw.free <- &stripe{buf: make([]byte, p.N*block), blocks: make([][]byte, p.N), released: sw.free}
	}
	for i := range p.N {
		pr, pw := io.Pipe()
		sw.pipes[i] = pw
		sw.queues[i] = make(chan *stripe, stripesInFlight)
		sw.wg.Add(2)
		go func() {
			defer sw.wg.Done()
			id, err := store.Put(ctx, pr)
			if err != nil {
				sw.fail(fmt.Errorf("vault: storing share %d: %w", i, err))
				pr.CloseWithError(err)
				return
			}
			sw.ids[i] = id
			pr.Close()
		}()
		go func() {
			defer sw.wg.Done()
			sw.writeShare(i, pw, shareHeader(rid, i, p.K, p.N, int64(block)))
		}()
	}
	return sw
}

// writeShare is share writer i: it hashes each block and writes it to the
// share's pipe. After a failure it keeps draining its queue so that stripes
// are released and nothing blocks.
func (sw *stripeWriter) writeShare(i int, pw *io.PipeWriter, header []byte) {
	_, err := pw.Write(header)
	h := blake3.New()
	for s := range sw.queues[i] {
		if err == nil {
			b := s.blocks[i]
			h.Reset()
			h.Write(b)
			var sum Hash
			h.Sum(sum[:0])
			sw.hashes[i] = append(sw.hashes[i], sum)
			_, err = pw.Write(b)
			if err != nil {
				sw.fail(fmt.Errorf("vault: writing share %d: %w", i, err))
			}
		}
		s.release()
	}
	if err != nil {
		pw.CloseWithError(err)
		return
	}
	pw.Close()
}

func (sw *stripeWriter) fail(err error) {
	sw.errOnce.Do(func() {
		sw.err = err
		sw.errSet.Store(true)
	})
}

func (sw *stripeWriter) failure() error {
	if sw.errSet.Load() {
		return sw.err
	}
	return nil
}

// Write buffers ciphertext and dispatches every full stripe.
func (sw *stripeWriter) Write(p []byte) (int, error) {
	written := 0
	data := sw.p.StripeSize
	for len(p) > 0 {
		if err := sw.failure(); err != nil {
			return written, err
		}
		if sw.cur == nil {
			select {
			case sw.cur = <-sw.free:
			case <-sw.ctx.Done():
				return written, sw.ctx.Err()
			}
			sw.fill = 0
		}
		n := copy(sw.cur.buf[sw.fill:data], p)
		sw.fill += n
		sw.size += int64(n)
		written += n
		p = p[n:]
		if sw.fill == data {
			if err := sw.dispatch(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// dispatch codes the current stripe and queues it to every share writer.
// The last stripe may be short: its blocks are ceil(fill/k) bytes, the data
// zero-padded.
func (sw *stripeWriter) dispatch() error {
	s := sw.cur
	sw.cur = nil
	bl := sw.block
	if sw.fill < sw.p.StripeSize {
		bl = (sw.fill + sw.p.K - 1) / sw.p.K
		clear(s.buf[sw.fill : sw.p.K*bl])
	}
	for i := range s.blocks {
		s.blocks[i] = s.buf[i*bl : (i+1)*bl : (i+1)*bl]
	}
	if err := sw.enc.Encode(s.blocks); err != nil {
		sw.fail(fmt.Errorf("vault: erasure coding: %w", err))
		s.refs.Store(1)
		s.release()
		return sw.err
	}
	s.refs.Store(int32(sw.p.N))
	for _, q := range sw.queues {
		q <- s
	}
	return nil
}

// finish flushes the last stripe, waits for every share and returns their
// IDs and block hashes and the ciphertext size.
func (sw *stripeWriter) finish(cause error) ([]ShareID, [][]Hash, int64, error) {
	if cause != nil {
		sw.fail(cause)
	}
	if cause == nil && sw.cur != nil && sw.fill > 0 {
		if err := sw.dispatch(); err != nil {
			cause = err
		}
	}
	if cause != nil {
		// Make every Put fail rather than store a short share.
		for _, pw := range sw.pipes {
			pw.CloseWithError(cause)
		}
	}
	for _, q := range sw.queues {
		close(q)
	}
	sw.wg.Wait()
	if err := sw.failure(); err != nil {
		return sw.ids, nil, 0, err
	}
	if sw.size == 0 {
		return sw.ids, nil, 0, errors.New("vault: empty ciphertext")
	}
	return sw.ids, sw.hashes, sw.size, nil
}
