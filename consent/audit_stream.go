package consent

// The audit's first pass: entries are decoded, hashed and verified in
// chunks on every core, each chunk's entry signatures and the signatures
// of the requests its access entries carry checked together in ZIP-215
// batches; then, in order, each entry is chained, added to the full view
// and, once accepted, counted and indexed for the policy re-runs. Nothing
// is decoded or verified twice, and a store is read once, a chunk at a
// time.

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hdevalence/ed25519consensus"
)

// auditChunk is how many entries AuditStore reads before it verifies them.
const auditChunk = 512

// memoryReleaser is a store that can give back the memory its reads took
// (boltstore.Store: the pages of its file it mapped in).
type memoryReleaser interface{ ReleaseMemory() }

// releaseEvery is how many entries the audit reads from a store between
// two calls of ReleaseMemory: a few MiB of the file.
const releaseEvery = 2 * auditChunk

// auditItem is one entry on its way through the audit.
type auditItem struct {
	raw  []byte // the stored encoding, when the store hands it over
	e    *Entry
	h    Hash
	body any   // decoded body, when the fields are valid
	err  error // what VerifyEntry says of e
	// bad: raw does not decode: the store is damaged.
	bad error
	pre *accessPre // an access entry whose body decoded
}

// sigCheck is one signature to check.
type sigCheck struct {
	pub      ed25519.PublicKey
	msg, sig []byte
	ok       *bool
}

// prepareItems decodes (from raw), hashes and checks the fields of every
// item, and verifies the signatures of the entries and of the requests
// their access entries carry, in batches of batchSize items, on every
// core.
func prepareItems(items []auditItem) {
	n := (len(items) + batchSize - 1) / batchSize
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	work := func() {
		var cs []sigCheck
		oks := make([]bool, 2*batchSize)
		for {
			b := int(next.Add(1)) - 1
			if b >= n {
				return
			}
			lo, hi := b*batchSize, min((b+1)*batchSize, len(items))
			cs = cs[:0]
			clear(oks)
			entryOK := oks[:batchSize]
			reqOK := oks[batchSize:]
			for i := lo; i < hi; i++ {
				cs = prepareItem(&items[i], cs, &entryOK[i-lo], &reqOK[i-lo])
			}
			verifySigChecks(cs)
			for i := lo; i < hi; i++ {
				it := &items[i]
				if it.bad != nil || it.err != nil {
					continue
				}
				if !entryOK[i-lo] {
					it.err = &EntryError{Author: it.e.Author, Seq: it.e.Seq, Err: ErrBadSignature}
				}
				if p := it.pre; p != nil && p.reqErr == nil && p.sigErr == nil && timesOK(it.e, p.ab) && !reqOK[i-lo] {
					p.sigErr = fmt.Errorf("request: %w", ErrBadSignature)
				}
			}
		}
	}
	if workers <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
}

// prepareItem does the work of prepareItems on one item but the
// signature checks, which it appends to cs.
func prepareItem(it *auditItem, cs []sigCheck, entryOK, reqOK *bool) []sigCheck {
	var msg []byte
	if it.raw != nil {
		e, body, err := decodeEntry(it.raw)
		if err != nil {
			it.bad = err
			return cs
		}
		it.e, it.body = e, body
		// DecodeEntry accepts canonical encodings only: the stored bytes
		// are what e.Encode() gives.
		it.h = HashBytes(it.raw)
		msg = signedMessageOf(it.raw, e)
		it.raw = nil
	} else {
		body, err := it.e.checkFieldsBody()
		it.h = it.e.Hash()
		if err != nil {
			it.err = err
			return cs
		}
		it.body = body
		msg = it.e.SignedMessage()
	}
	e := it.e
	pub, err := cachedPublicKey(e.Author)
	if err != nil || len(e.Sig) != ed25519.SignatureSize {
		it.err = &EntryError{Author: e.Author, Seq: e.Seq, Err: ErrBadSignature}
		return cs
	}
	cs = append(cs, sigCheck{pub: pub, msg: msg, sig: e.Sig, ok: entryOK})
	ab, ok := it.body.(*AccessBody)
	if !ok {
		return cs
	}
	p := &accessPre{ab: ab}
	it.pre = p
	if p.req, p.reqErr = DecodeRequest(ab.Request); p.reqErr != nil || !timesOK(e, ab) {
		return cs
	}
	// VerifyRequest: DecodeRequest checked the fields already.
	rpub, err := cachedPublicKey(p.req.Requester)
	if err != nil || len(p.req.Sig) != ed25519.SignatureSize {
		p.sigErr = fmt.Errorf("request: %w", ErrBadSignature)
		return cs
	}
	return append(cs, sigCheck{pub: rpub, msg: p.req.SignedMessage(), sig: p.req.Sig, ok: reqOK})
}

// verifySigChecks checks every signature of cs as ed25519consensus.Verify
// would (ZIP-215), in one batch; when the batch fails, one by one.
func verifySigChecks(cs []sigCheck) {
	if len(cs) == 0 {
		return
	}
	sigChecks.Add(int64(len(cs)))
	if len(cs) > 1 {
		if batchVerify(cs) {
			for _, c := range cs {
				*c.ok = true
			}
			return
		}
		sigChecks.Add(int64(len(cs)))
	}
	for _, c := range cs {
		*c.ok = ed25519consensus.Verify(c.pub, c.msg, c.sig)
	}
}

// batchVerify reports whether every signature of cs verifies, with
// ed25519consensus's batch verifier (ZIP-215, the same set as Verify
// accepts). It is false when any of them does not; the caller then
// checks each one on its own.
func batchVerify(cs []sigCheck) bool {
	v := ed25519consensus.NewPreallocatedBatchVerifier(len(cs))
	for _, c := range cs {
		v.Add(c.pub, c.msg, c.sig)
	}
	return v.Verify()
}

// signedMessageOf returns e.SignedMessage() from raw, e's canonical
// encoding: a map of 7 pairs whose last is the signature (key 7, a byte
// string of 64 bytes), so the message is the context, the header of a map
// of 6 pairs and the first 6 pairs as they are.
func signedMessageOf(raw []byte, e *Entry) []byte {
	const tail = 1 + 2 + ed25519.SignatureSize
	n := len(raw) - tail
	if len(e.Sig) != ed25519.SignatureSize || n < 1 || raw[0] != 0xa7 ||
		raw[n] != 0x07 || raw[n+1] != 0x58 || raw[n+2] != ed25519.SignatureSize {
		return e.SignedMessage()
	}
	msg := make([]byte, 0, len(entryContext)+n)
	msg = append(msg, entryContext...)
	msg = append(msg, 0xa6)
	return append(msg, raw[1:n]...)
}

// errStopScan stops a store scan the audit no longer needs.
var errStopScan = errors.New("audit: scan stopped")

// scanChunks reads s in chunks of auditChunk items, in Scan's order, and
// sends them, prepared, to the returned channel, which is closed at the
// end; then *err holds the store's error. Closing stop ends the scan
// early.
func scanChunks(s Store, stop <-chan struct{}, serr *error) <-chan []auditItem {
	raw := make(chan []auditItem, 1)
	out := make(chan []auditItem, 1)
	go func() {
		defer close(raw)
		var chunk []auditItem
		send := func() error {
			select {
			case raw <- chunk:
				chunk = make([]auditItem, 0, auditChunk)
				return nil
			case <-stop:
				return errStopScan
			}
		}
		chunk = make([]auditItem, 0, auditChunk)
		var err error
		if rs, ok := s.(RawScanner); ok {
			err = rs.ScanRaw(func(b []byte) error {
				if chunk = append(chunk, auditItem{raw: bytes.Clone(b)}); len(chunk) == auditChunk {
					return send()
				}
				return nil
			})
		} else {
			err = s.Scan(func(e *Entry) error {
				if chunk = append(chunk, auditItem{e: e}); len(chunk) == auditChunk {
					return send()
				}
				return nil
			})
		}
		if err == nil && len(chunk) > 0 {
			err = send()
		}
		if err != errStopScan {
			*serr = err
		}
	}()
	go func() {
		defer close(out)
		for chunk := range raw {
			prepareItems(chunk)
			select {
			case out <- chunk:
			case <-stop:
				for range raw {
				}
				return
			}
		}
	}()
	return out
}
