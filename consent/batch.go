package consent

import (
	"crypto/ed25519"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hdevalence/ed25519consensus"
)

// Signatures follow ZIP-215 (github.com/hdevalence/ed25519consensus), for
// single and batch verification alike, so that both accept exactly the
// same set of signatures and every replica reaches the same verdict
// whichever way it checked. See the package comment.

// batchSize is how many signatures one batch verification checks: large
// enough to amortise the multi-scalar multiplication, small enough that a
// failed batch costs little to search for its culprit.
const batchSize = 64

// VerifyBatch checks every entry of es as VerifyEntry would (fields, body,
// signature) and returns one error per entry, nil for a valid one: errs[i]
// is what VerifyEntry(es[i]) returns. Signatures are checked in batches of
// 64 with ZIP-215 batch verification, spread over GOMAXPROCS goroutines; a
// batch that fails is checked entry by entry to name the invalid ones.
// Batch and single verification accept exactly the same signatures.
func VerifyBatch(es []*Entry) []error {
	errs, _ := verifyEntries(es, false)
	return errs
}

// verifyEntries is VerifyBatch. It also returns each entry's hash, and
// records the valid entries in the memo of verified entries; with
// useMemo, an entry found there is not verified again.
func verifyEntries(es []*Entry, useMemo bool) ([]error, []Hash) {
	errs := make([]error, len(es))
	hashes := make([]Hash, len(es))
	nBatches := (len(es) + batchSize - 1) / batchSize
	workers := min(runtime.GOMAXPROCS(0), nBatches)
	var next atomic.Int64
	work := func() {
		var bv batchVerifier
		for {
			b := int(next.Add(1)) - 1
			if b >= nBatches {
				return
			}
			lo, hi := b*batchSize, min((b+1)*batchSize, len(es))
			bv.verify(es[lo:hi], errs[lo:hi], hashes[lo:hi], useMemo)
		}
	}
	if workers <= 1 {
		work()
		return errs, hashes
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
	return errs, hashes
}

// batchVerifier is one worker's reusable state.
type batchVerifier struct {
	pubs []ed25519.PublicKey
	msgs [][]byte
	idx  []int // positions in the batch of the entries whose signature is checked
}

// verify checks es, writing each entry's error and hash.
func (bv *batchVerifier) verify(es []*Entry, errs []error, hashes []Hash, useMemo bool) {
	bv.pubs, bv.msgs, bv.idx = bv.pubs[:0], bv.msgs[:0], bv.idx[:0]
	for i, e := range es {
		hashes[i] = e.Hash()
		if useMemo && memoHas(hashes[i]) {
			continue
		}
		if err := e.checkFields(); err != nil {
			errs[i] = err
			continue
		}
		pub, err := cachedPublicKey(e.Author)
		if err != nil || len(e.Sig) != ed25519.SignatureSize {
			// checkFields parsed the key already; a wrong signature
			// length is simply a bad signature.
			errs[i] = &EntryError{Author: e.Author, Seq: e.Seq, Err: ErrBadSignature}
			continue
		}
		bv.pubs = append(bv.pubs, pub)
		bv.msgs = append(bv.msgs, e.SignedMessage())
		bv.idx = append(bv.idx, i)
	}
	if len(bv.idx) == 0 {
		return
	}
	if len(bv.idx) > 1 {
		sigChecks.Add(int64(len(bv.idx)))
		v := ed25519consensus.NewPreallocatedBatchVerifier(len(bv.idx))
		for j, i := range bv.idx {
			v.Add(bv.pubs[j], bv.msgs[j], es[i].Sig)
		}
		if v.Verify() {
			for _, i := range bv.idx {
				memoAdd(hashes[i])
			}
			return
		}
	}
	// One entry, or a batch holding at least one bad signature: check
	// each on its own to name the culprits.
	for j, i := range bv.idx {
		sigChecks.Add(1)
		if ed25519consensus.Verify(bv.pubs[j], bv.msgs[j], es[i].Sig) {
			memoAdd(hashes[i])
			continue
		}
		errs[i] = &EntryError{Author: es[i].Author, Seq: es[i].Seq, Err: ErrBadSignature}
	}
}

// sigChecks counts the entry signatures checked (in a batch or alone), for
// the tests that make sure an entry is verified once.
var sigChecks atomic.Int64

// The memo of verified entries: hashes of entries that passed VerifyEntry
// or VerifyBatch lately. An entry's hash covers its whole encoding,
// signature included, so a hit means these very bytes verified; a replica
// that checked an entry when it arrived (ledgersync does, before its
// admission checks) then ingests it without checking the signature a
// second time. Two generations of memoSize hashes bound the memory
// (about 3 MiB at most); a miss only costs a verification.
const memoSize = 1 << 14

var memo struct {
	sync.Mutex
	cur, old map[Hash]struct{}
}

func memoHas(h Hash) bool {
	memo.Lock()
	defer memo.Unlock()
	if _, ok := memo.cur[h]; ok {
		return true
	}
	_, ok := memo.old[h]
	return ok
}

func memoAdd(h Hash) {
	memo.Lock()
	defer memo.Unlock()
	if len(memo.cur) >= memoSize || memo.cur == nil {
		memo.old, memo.cur = memo.cur, make(map[Hash]struct{}, 256)
	}
	memo.cur[h] = struct{}{}
}
