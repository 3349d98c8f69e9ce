package consent_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/medwallet/medwallet/consent"
)

var bt0 = time.Unix(1767225600, 0).UTC()

func batchSigner(tb testing.TB, name string) *consent.KeySigner {
	tb.Helper()
	seed := sha256.Sum256([]byte("medwallet batch test key: " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// chainOf signs n chained anchor entries by s; variant changes their content.
func chainOf(tb testing.TB, s consent.Signer, n int, variant string) []*consent.Entry {
	tb.Helper()
	var es []*consent.Entry
	var head consent.Head
	for i := range n {
		e, err := consent.NewEntry(s, head, bt0.Add(time.Duration(i)*time.Second), consent.KindAnchor,
			&consent.AnchorBody{Record: fmt.Sprintf("rec-%d", i%5), Manifest: consent.HashBytes([]byte(variant + fmt.Sprint(i)))})
		if err != nil {
			tb.Fatal(err)
		}
		es = append(es, e)
		head = e.Head()
	}
	return es
}

func cloneEntry(e *consent.Entry) *consent.Entry {
	c := *e
	c.Body = bytes.Clone(e.Body)
	c.Sig = bytes.Clone(e.Sig)
	return &c
}

// smallOrder are the 14 encodings of points of small order that the
// ZIP-215 test vectors combine (8 canonical, 6 not): as keys and as R
// with s = 0, every pair verifies under ZIP-215 (the cofactored equation
// and permissive decoding), while crypto/ed25519 refuses many of them.
var smallOrder = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"0000000000000000000000000000000000000000000000000000000000000000",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"0100000000000000000000000000000000000000000000000000000000000080",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
}

// batchCases returns entries to verify, each with a name: valid ones,
// ones with corrupted signatures, ones signed by the wrong key, ones by
// small-order keys, and every entry of the test vectors.
func batchCases(t *testing.T) (names []string, es []*consent.Entry) {
	add := func(name string, e *consent.Entry) {
		names = append(names, name)
		es = append(es, e)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 8 {
		for j, e := range chainOf(t, batchSigner(t, fmt.Sprint("valid-", i)), 20, "") {
			add(fmt.Sprintf("valid %d#%d", i, j+1), e)
		}
	}
	valid := chainOf(t, batchSigner(t, "victim"), 40, "")
	for i, e := range valid {
		c := cloneEntry(e)
		switch i % 8 {
		case 0: // a bit of R
			c.Sig[r.IntN(32)] ^= 1 << r.IntN(8)
		case 1: // a bit of s
			c.Sig[32+r.IntN(31)] ^= 1 << r.IntN(8)
		case 2: // s >= L (not canonical): s + L
			c.Sig[63] |= 0x10
		case 3: // high bits of s
			c.Sig[63] |= 0xe0
		case 4: // truncated
			c.Sig = c.Sig[:63]
		case 5: // missing
			c.Sig = nil
		case 6: // signed content changed
			c.Time++
		case 7: // all zero
			c.Sig = make([]byte, 64)
		}
		add(fmt.Sprintf("corrupt %d (%d)", i, i%8), c)
	}
	// Wrong key: mallory signs entries that name victim as the author.
	mallory := batchSigner(t, "mallory")
	for i, e := range chainOf(t, batchSigner(t, "victim"), 10, "w") {
		c := cloneEntry(e)
		sig, _ := mallory.Sign(c.SignedMessage())
		c.Sig = sig
		add(fmt.Sprintf("wrong key %d", i), c)
	}
	// A torsion component in R: signed by a real key with R = rB + T, T of
	// small order, valid under ZIP-215 (cofactored) and refused by
	// crypto/ed25519 (cofactorless) for T != 0.
	torsioned := batchSigner(t, "torsion")
	for i, ts := range smallOrder[:8] {
		e := &consent.Entry{Author: torsioned.ID(), Seq: 1, Time: bt0.Unix(), Kind: consent.KindAnchor, Body: anchorBody(t, i)}
		e.Sig = torsionSign(t, "torsion", ts, e.SignedMessage())
		add(fmt.Sprintf("torsion R %d", i), e)
	}
	// Small-order keys with small-order R and s = 0: valid under ZIP-215
	// as signatures, refused as identities (consent.ErrSmallOrderKey).
	for i, ks := range smallOrder {
		pub, _ := hex.DecodeString(ks)
		id, err := consent.IDFromPublicKey(pub)
		if err != nil {
			t.Fatalf("small-order key %d: %v", i, err)
		}
		for j, rs := range smallOrder {
			e := &consent.Entry{Author: id, Seq: 1, Time: bt0.Unix(), Kind: consent.KindAnchor,
				Body: anchorBody(t, j)}
			rb, _ := hex.DecodeString(rs)
			e.Sig = append(rb, make([]byte, 32)...)
			add(fmt.Sprintf("zip215 key %d R %d", i, j), e)
		}
	}
	for _, c := range loadVectors(t, "feeds.json").Cases {
		for i, h := range c.Entries {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			e, err := consent.DecodeEntry(b)
			if err != nil {
				continue // refused before any signature check
			}
			add(fmt.Sprintf("vector %s#%d", c.Name, i+1), e)
		}
	}
	return names, es
}

// torsionSign signs msg with batchSigner(name)'s key, adding the
// small-order point of encoding ts (hex) to R: R = rB + T, s = r + k·a.
func torsionSign(tb testing.TB, name, ts string, msg []byte) []byte {
	tb.Helper()
	seed := sha256.Sum256([]byte("medwallet batch test key: " + name))
	h := sha512.Sum512(seed[:])
	a, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		tb.Fatal(err)
	}
	A := new(edwards25519.Point).ScalarBaseMult(a)
	rh := sha512.Sum512(append([]byte("torsion r "+ts), msg...))
	r, _ := edwards25519.NewScalar().SetUniformBytes(rh[:])
	tb2, _ := hex.DecodeString(ts)
	T, err := new(edwards25519.Point).SetBytes(tb2)
	if err != nil {
		tb.Fatal(err)
	}
	R := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(r), T)
	kh := sha512.New()
	kh.Write(R.Bytes())
	kh.Write(A.Bytes())
	kh.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	sc := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return append(R.Bytes(), sc.Bytes()...)
}

func anchorBody(tb testing.TB, i int) []byte {
	b, err := consent.Marshal(&consent.AnchorBody{Record: "rec-1", Manifest: consent.HashBytes([]byte{byte(i)})})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestBatchMatchesSingle: batch verification, in any batch, accepts
// exactly what single verification accepts, and both accept every
// signature crypto/ed25519 accepts.
func TestBatchMatchesSingle(t *testing.T) {
	names, es := batchCases(t)
	single := make([]error, len(es))
	nValid, nStd := 0, 0
	for i, e := range es {
		single[i] = consent.VerifyEntry(e)
		pub, err := e.Author.PublicKey()
		std := err == nil && len(e.Sig) == ed25519.SignatureSize && ed25519.Verify(pub, e.SignedMessage(), e.Sig)
		if std {
			nStd++
			if single[i] != nil {
				t.Errorf("%s: crypto/ed25519 accepts, ZIP-215 refuses: %v", names[i], single[i])
			}
		}
		if strings.HasPrefix(names[i], "zip215 ") && (single[i] == nil || !strings.Contains(single[i].Error(), "small order")) {
			t.Errorf("%s: a small-order key: %v, want refused as an identity", names[i], single[i])
		}
		if strings.HasPrefix(names[i], "torsion R ") && single[i] != nil {
			t.Errorf("%s: refused under ZIP-215: %v", names[i], single[i])
		}
		if single[i] == nil {
			nValid++
		} else if !errors.Is(single[i], consent.ErrBadSignature) && !errors.Is(single[i], consent.ErrMalformed) {
			t.Errorf("%s: unexpected error %v", names[i], single[i])
		}
	}
	t.Logf("%d cases: %d valid under ZIP-215, %d under crypto/ed25519", len(es), nValid, nStd)
	if nValid == 0 || nValid == len(es) || nStd == 0 || nStd == nValid {
		t.Fatalf("%d valid of %d cases (%d by crypto/ed25519): the cases test nothing", nValid, len(es), nStd)
	}
	check := func(label string, idx []int, got []error) {
		t.Helper()
		if len(got) != len(idx) {
			t.Fatalf("%s: %d results for %d entries", label, len(got), len(idx))
		}
		for k, i := range idx {
			if (got[k] == nil) != (single[i] == nil) || got[k] != nil && got[k].Error() != single[i].Error() {
				t.Errorf("%s: %s: batch %v, single %v", label, names[i], got[k], single[i])
			}
		}
	}
	all := make([]int, len(es))
	for i := range all {
		all[i] = i
	}
	check("all in order", all, consent.VerifyBatch(es))
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 5 {
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		in := make([]*consent.Entry, len(all))
		for k, i := range all {
			in[k] = es[i]
		}
		check(fmt.Sprint("shuffled ", round), all, consent.VerifyBatch(in))
	}
	for i, e := range es {
		check("alone", []int{i}, consent.VerifyBatch([]*consent.Entry{e}))
	}
	if got := consent.VerifyBatch(nil); len(got) != 0 {
		t.Fatalf("empty batch: %v", got)
	}
}

// TestVerifyOnce: an entry checked when it arrived (VerifyEntry, as
// ledgersync does) is not checked again when the ledger ingests it, and
// IngestBatch checks each new entry once. Not parallel: it counts the
// signature checks of the whole process.
func TestVerifyOnce(t *testing.T) {
	es := chainOf(t, batchSigner(t, "once"), 10, "")
	l, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	before := consent.SigChecks()
	for _, e := range es[:5] {
		if err := consent.VerifyEntry(e); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Ingest(e); err != nil {
			t.Fatal(err)
		}
	}
	if n := consent.SigChecks() - before; n != 5 {
		t.Fatalf("5 entries verified then ingested: %d signature checks, want 5", n)
	}
	before = consent.SigChecks()
	// Fresh copies: nothing remembered about them but their bytes.
	batch := make([]*consent.Entry, 0, 10)
	for _, e := range es {
		batch = append(batch, cloneEntry(e))
	}
	acc, err := l.IngestBatch(batch)
	if err != nil || len(acc) != 5 {
		t.Fatalf("IngestBatch: %d accepted, %v", len(acc), err)
	}
	if n := consent.SigChecks() - before; n > 5 {
		t.Fatalf("IngestBatch of 5 known and 5 new entries: %d signature checks, want at most 5", n)
	}
	// A changed entry is never taken for the one remembered.
	bad := cloneEntry(es[9])
	bad.Sig[5] ^= 1
	if err := consent.VerifyEntry(bad); !errors.Is(err, consent.ErrBadSignature) {
		t.Fatalf("tampered copy of a verified entry: %v", err)
	}
}

// ingestCases builds entries of several feeds in a random order, with
// what a replica meets: duplicates, gaps filled later, an equivocation,
// a bad signature, a malformed entry and an entry that can never join.
func ingestCases(t *testing.T) []*consent.Entry {
	var out []*consent.Entry
	for i := range 4 {
		out = append(out, chainOf(t, batchSigner(t, fmt.Sprint("feed-", i)), 25, "")...)
	}
	eq := batchSigner(t, "equivocator")
	a, b := chainOf(t, eq, 8, "a"), chainOf(t, eq, 8, "b")
	out = append(out, a...)
	out = append(out, b[5], b[6]) // forks at seq 6
	out = append(out, out[3], out[30], out[3])
	bad := cloneEntry(out[10])
	bad.Sig[40] ^= 4
	out = append(out, bad)
	mal := cloneEntry(out[11])
	mal.Kind = 99
	out = append(out, mal)
	stray := cloneEntry(chainOf(t, batchSigner(t, "stray"), 3, "")[2]) // seq 3 of a feed whose 1, 2 never come
	out = append(out, stray)
	return out
}

type ingestOutcome struct {
	acc   []consent.Hash
	errs  []string
	heads map[consent.ID]consent.Head
	equiv []consent.ID
	pend  int
	store []consent.Hash
}

func outcomeOf(t *testing.T, l *consent.Ledger, st consent.Store, acc []*consent.Entry, errs []error) ingestOutcome {
	var o ingestOutcome
	for _, e := range acc {
		o.acc = append(o.acc, e.Hash())
	}
	for _, err := range errs {
		s := ""
		if err != nil {
			s = err.Error()
		}
		o.errs = append(o.errs, s)
	}
	o.heads = map[consent.ID]consent.Head{}
	l.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			o.heads[a] = v.Head(a)
			if v.Equivocating(a) {
				o.equiv = append(o.equiv, a)
			}
		}
		o.pend = v.Pending()
	})
	if err := st.Scan(func(e *consent.Entry) error { o.store = append(o.store, e.Hash()); return nil }); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o ingestOutcome) String() string {
	return fmt.Sprintf("%d accepted, %d heads, %d equivocating, %d pending, %d stored", len(o.acc), len(o.heads), len(o.equiv), o.pend, len(o.store))
}

// TestIngestBatchMatchesIngest: IngestBatch, in batches of any size, has
// the outcome of Ingest entry by entry: the same entries accepted in the
// same order, the same error for each entry, the same view and store.
func TestIngestBatchMatchesIngest(t *testing.T) {
	es := ingestCases(t)
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 6 {
		in := append([]*consent.Entry(nil), es...)
		r.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })

		st1 := consent.NewMemStore()
		l1, _ := consent.OpenLedger(st1)
		var acc1 []*consent.Entry
		errs1 := make([]error, len(in))
		for i, e := range in {
			a, err := l1.Ingest(cloneEntry(e))
			acc1 = append(acc1, a...)
			errs1[i] = err
		}
		want := outcomeOf(t, l1, st1, acc1, errs1)

		st2 := consent.NewMemStore()
		l2, _ := consent.OpenLedger(st2)
		var acc2 []*consent.Entry
		errs2 := make([]error, 0, len(in))
		size := []int{1, 7, 64, 1000}[round%4]
		for lo := 0; lo < len(in); lo += size {
			hi := min(lo+size, len(in))
			batch := make([]*consent.Entry, 0, hi-lo)
			for _, e := range in[lo:hi] {
				batch = append(batch, cloneEntry(e))
			}
			a, err := l2.IngestBatch(batch)
			acc2 = append(acc2, a...)
			var be *consent.BatchError
			switch {
			case err == nil:
				errs2 = append(errs2, make([]error, len(batch))...)
			case errors.As(err, &be) && be.Store == nil && len(be.Errs) == len(batch):
				errs2 = append(errs2, be.Errs...)
			default:
				t.Fatalf("IngestBatch: %v", err)
			}
		}
		got := outcomeOf(t, l2, st2, acc2, errs2)
		if fmt.Sprint(got.acc, got.errs, got.heads, got.equiv, got.pend, got.store) !=
			fmt.Sprint(want.acc, want.errs, want.heads, want.equiv, want.pend, want.store) {
			t.Fatalf("round %d (batches of %d): IngestBatch gave %v, Ingest %v", round, size, got, want)
		}
		if len(want.equiv) != 1 || want.pend == 0 || len(want.heads) != 5 {
			t.Fatalf("the cases test less than they should: %v", want)
		}
		// Errors keep their types through the BatchError.
		var eqErr *consent.EquivocationError
		found := false
		for _, err := range errs2 {
			found = found || errors.As(err, &eqErr)
		}
		if !found {
			t.Fatal("no *EquivocationError among the batch errors")
		}
	}
}

// TestIngestBatchOrderIndependent: the same entries in any order and any
// batch sizes leave the same ledger (but for the branch of a fork held).
func TestIngestBatchOrderIndependent(t *testing.T) {
	es := ingestCases(t)
	r := rand.New(rand.NewPCG(7, 8))
	var first string
	for round := range 5 {
		in := append([]*consent.Entry(nil), es...)
		r.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		st := consent.NewMemStore()
		l, _ := consent.OpenLedger(st)
		for lo := 0; lo < len(in); {
			hi := min(lo+1+r.IntN(40), len(in))
			l.IngestBatch(in[lo:hi])
			lo = hi
		}
		o := outcomeOf(t, l, st, nil, nil)
		// Which branch of a fork a replica holds depends on arrival
		// order, by design; everything else must not.
		var stored []consent.Hash
		st.Scan(func(e *consent.Entry) error {
			if len(o.equiv) == 0 || e.Author != o.equiv[0] {
				stored = append(stored, e.Hash())
			}
			return nil
		})
		for _, a := range o.equiv {
			delete(o.heads, a)
		}
		got := fmt.Sprint(o.heads, o.equiv, stored) // pending too depends on the branch
		if round == 0 {
			first = got
		} else if got != first {
			t.Fatalf("round %d: another state: %v\n%s\n%s", round, o, got, first)
		}
	}
}

// TestIngestBatchStoreFailure: a store that fails is reported, the entries
// that joined the view are returned.
func TestIngestBatchStoreFailure(t *testing.T) {
	st := consent.NewMemStore()
	l, _ := consent.OpenLedger(st)
	es := chainOf(t, batchSigner(t, "closed"), 3, "")
	st.Close()
	acc, err := l.IngestBatch(es)
	var be *consent.BatchError
	if !errors.As(err, &be) || !errors.Is(err, consent.ErrClosed) || len(acc) != 3 {
		t.Fatalf("IngestBatch into a closed store: %d accepted, %v", len(acc), err)
	}
}

// TestOpenLedgerTrustsItsStore: OpenLedger does not check the signatures
// of its own store (they were checked before the entries were stored),
// only their chains; VerifyStore checks everything and names what fails.
// Not parallel: it counts the signature checks of the whole process.
func TestOpenLedgerTrustsItsStore(t *testing.T) {
	alice, bob := batchSigner(t, "store-alice"), batchSigner(t, "store-bob")
	st := consent.NewMemStore()
	as, bs := chainOf(t, alice, 6, ""), chainOf(t, bob, 3, "")
	// The disk flipped a bit of the signature of alice's head (a bit
	// anywhere else in the feed would break the next entry's chain).
	bad := cloneEntry(as[5])
	bad.Sig[7] ^= 0x20
	for _, e := range append(append(as[:5:5], bad), bs...) {
		if err := st.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	before := consent.SigChecks()
	l, err := consent.OpenLedger(st)
	if err != nil {
		t.Fatalf("OpenLedger: %v", err)
	}
	if n := consent.SigChecks() - before; n != 0 {
		t.Fatalf("OpenLedger checked %d signatures, want 0", n)
	}
	if n := len(l.Entries()); n != 9 {
		t.Fatalf("opened ledger holds %d entries, want 9", n)
	}
	rep, err := consent.VerifyStore(st)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Bad != 1 || rep.Entries != 9 || rep.Feeds != 2 || len(rep.Problems) != 1 ||
		!errors.Is(rep.Problems[0], consent.ErrBadSignature) {
		t.Fatalf("VerifyStore = %+v", rep)
	}
	var ee *consent.EntryError
	if !errors.As(rep.Problems[0], &ee) || ee.Author != alice.ID() || ee.Seq != 6 {
		t.Fatalf("problem %v names the wrong entry", rep.Problems[0])
	}

	// A store whose chain is broken still fails to open, and VerifyStore
	// says where.
	st2 := consent.NewMemStore()
	other := chainOf(t, alice, 6, "other")
	for _, e := range []*consent.Entry{as[0], as[1], other[2], bs[0]} {
		if err := st2.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := consent.OpenLedger(st2); !errors.Is(err, consent.ErrGap) {
		t.Fatalf("OpenLedger of a broken chain: %v", err)
	}
	rep, err = consent.VerifyStore(st2)
	if err != nil || rep.Bad != 1 || !errors.Is(rep.Problems[0], consent.ErrWrongPrev) {
		t.Fatalf("VerifyStore of a broken chain = %+v, %v", rep, err)
	}
	rep, err = consent.VerifyStore(consent.NewMemStore())
	if err != nil || !rep.OK() || rep.Entries != 0 {
		t.Fatalf("VerifyStore of an empty store = %+v, %v", rep, err)
	}
}

// BenchmarkVerifyBatch compares checking 4096 entries one by one
// (VerifyEntry) with VerifyBatch on one core and on every core.
func BenchmarkVerifyBatch(b *testing.B) {
	const n = 4096
	var es []*consent.Entry
	for i := range 8 {
		es = append(es, chainOf(b, batchSigner(b, fmt.Sprint("bench-", i)), n/8, "")...)
	}
	run := func(name string, procs int, f func() error) {
		b.Run(name, func(b *testing.B) {
			if procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			}
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			cpu0 := ru.Utime.Nano() + ru.Stime.Nano()
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			// CPU time, every thread: on a shared machine, the cost.
			b.ReportMetric(float64(ru.Utime.Nano()+ru.Stime.Nano()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
	batch := func() error {
		for _, err := range consent.VerifyBatch(es) {
			if err != nil {
				return err
			}
		}
		return nil
	}
	run("single", 0, func() error {
		for _, e := range es {
			if err := consent.VerifyEntry(e); err != nil {
				return err
			}
		}
		return nil
	})
	run("batch-1-core", 1, batch)
	run(fmt.Sprintf("batch-%d-cores", runtime.GOMAXPROCS(0)), 0, batch)
}
