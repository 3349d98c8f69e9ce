package witness

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/p2p/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Unix(1767225600, 0).UTC()

func signer(t testing.TB, name string) *consent.KeySigner {
	t.Helper()
	seed := sha256.Sum256([]byte("witness test " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feedLog is an author's feed and its tree, grown entry by entry.
type feedLog struct {
	s    *consent.KeySigner
	key  *consent.CheckpointKey
	head consent.Head
	tree *consent.Tree
}

func newFeedLog(t testing.TB, name string) *feedLog {
	s := signer(t, name)
	k, err := consent.DeriveCheckpointKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return &feedLog{s: s, key: k, tree: consent.NewTree(nil)}
}

// grow appends n entries labelled label.
func (f *feedLog) grow(t testing.TB, n int, label string) {
	for i := 0; i < n; i++ {
		var h consent.Hash
		copy(h[:], fmt.Sprintf("%s-%d", label, f.head.Seq))
		e, err := consent.NewEntry(f.s, f.head, t0, consent.KindAnchor, &consent.AnchorBody{Record: "r", Manifest: h})
		if err != nil {
			t.Fatal(err)
		}
		f.head = e.Head()
		f.tree.Append(e.Hash())
	}
}

// request builds the request for the current size, proving from old.
func (f *feedLog) request(t testing.TB, old uint64) *Request {
	root, _ := f.tree.Root(f.tree.Size())
	msg, err := f.key.Sign(f.tree.Size(), root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.tree.Prove(old, f.tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Note: msg, OldSize: old, Key: f.key.Public()}
	for _, h := range p {
		r.Proof = append(r.Proof, append([]byte(nil), h[:]...))
	}
	return r
}

func newService(t *testing.T, st Store, opts ...Option) *Service {
	h, _ := newHost(t, "witness", true)
	return NewService(h, st, signer(t, "witness-id"), append([]Option{WithClock(func() time.Time { return t0 })}, opts...)...)
}

func newHost(t *testing.T, name string, listen bool) (host.Host, consent.ID) {
	t.Helper()
	seed := sha256.Sum256([]byte("witness host " + name))
	var l []string
	if listen {
		l = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := node.New(ed25519.NewKeyFromSeed(seed[:]), node.Options{Listen: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, consent.ID(h.ID().String())
}

func TestWitnessGrowsAndRefuses(t *testing.T) {
	s := newService(t, NewMemStore())
	f := newFeedLog(t, "alice")
	f.grow(t, 3, "a")
	r := s.Witness(f.request(t, 0))
	if r.Code != CodeOK || r.Size != 3 {
		t.Fatalf("first: %+v", r)
	}
	sc, err := consent.OpenCheckpoint(consent.AddCosignatures(f.request(t, 0).Note, r.Cosignature), f.key.Public())
	if err != nil || len(sc.Cosigners) != 1 || sc.Cosigners[0].Witness != s.signer.ID() || sc.Cosigners[0].Time != t0.Unix() {
		t.Fatalf("cosignature: %v %+v", err, sc)
	}
	// The same checkpoint again: ok (idempotent).
	if r := s.Witness(f.request(t, 3)); r.Code != CodeOK {
		t.Fatalf("again: %+v", r)
	}
	f.grow(t, 5, "b")
	// Stale old size: conflict with the witness's state.
	r = s.Witness(f.request(t, 0))
	if r.Code != CodeConflict || r.Size != 3 || len(r.Latest) == 0 {
		t.Fatalf("stale old size: %+v", r)
	}
	// A wrong proof: bad-proof.
	bad := f.request(t, 3)
	bad.Proof[0][0] ^= 1
	if r := s.Witness(bad); r.Code != CodeBadProof || r.Size != 3 {
		t.Fatalf("bad proof: %+v", r)
	}
	if r := s.Witness(f.request(t, 3)); r.Code != CodeOK || r.Size != 8 {
		t.Fatalf("grown: %+v", r)
	}
	// Another key's signature on the note: bad-signature.
	other := newFeedLog(t, "bob")
	req := f.request(t, 8)
	req.Key = other.key.Public()
	if r := s.Witness(req); r.Code != CodeBadSignature {
		t.Fatalf("wrong key: %+v", r)
	}
}

// TestWitnessConflict: two branches of one feed at one size; the witness
// that cosigned branch A answers conflict to branch B with A's note,
// which with B's is a proof of the fork.
func TestWitnessConflict(t *testing.T) {
	s := newService(t, NewMemStore())
	alice := signer(t, "alice")
	key, _ := consent.DeriveCheckpointKey(alice)
	cert, _ := key.Certify(alice)
	head := consent.Head{}
	add := func(head consent.Head, label string, n int) []*consent.Entry {
		var out []*consent.Entry
		for i := 0; i < n; i++ {
			var h consent.Hash
			copy(h[:], fmt.Sprintf("%s-%d", label, i))
			e, _ := consent.NewEntry(alice, head, t0, consent.KindAnchor, &consent.AnchorBody{Record: "r", Manifest: h})
			out = append(out, e)
			head = e.Head()
		}
		return out
	}
	shared := add(head, "s", 2)
	a := append(append([]*consent.Entry(nil), shared...), add(shared[1].Head(), "A", 1)...)
	b := append(append([]*consent.Entry(nil), shared...), add(shared[1].Head(), "B", 1)...)
	note := func(es []*consent.Entry) []byte {
		var hs []consent.Hash
		for _, e := range es {
			hs = append(hs, e.Hash())
		}
		root, _ := consent.NewTree(hs).Root(uint64(len(hs)))
		m, _ := key.Sign(uint64(len(hs)), root)
		return m
	}
	ra := s.Witness(&Request{Note: note(a), Key: key.Public()})
	if ra.Code != CodeOK {
		t.Fatalf("A: %+v", ra)
	}
	for _, old := range []uint64{0, 3} {
		rb := s.Witness(&Request{Note: note(b), OldSize: old, Key: key.Public()})
		if rb.Code != CodeConflict || rb.Size != 3 {
			t.Fatalf("B with old size %d: %+v", old, rb)
		}
		// The witness's note and B's prove the fork.
		rep := consent.AuditCheckpoints(a, []*consent.CheckpointCert{cert}, [][]byte{rb.Latest, note(b)})
		if len(rep.Forks) != 1 {
			t.Fatalf("no fork from the conflict: %+v", rep.Findings)
		}
	}
}

func TestWitnessMaxLogsAndBolt(t *testing.T) {
	st, err := OpenBolt(filepath.Join(t.TempDir(), File))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lim := DefaultLimits()
	lim.MaxLogs = 2
	s := newService(t, st, WithLimits(lim))
	for i, want := range []string{CodeOK, CodeOK, CodeBusy} {
		f := newFeedLog(t, fmt.Sprint("author-", i))
		f.grow(t, 1, "x")
		if r := s.Witness(f.request(t, 0)); r.Code != want {
			t.Fatalf("log %d: %+v", i, r)
		}
	}
	if n, _ := st.Logs(); n != 2 {
		t.Fatalf("%d logs kept", n)
	}
	// A known log still grows when the store is full.
	f := newFeedLog(t, "author-0")
	f.grow(t, 1, "x")
	f.grow(t, 2, "y")
	if r := s.Witness(f.request(t, 1)); r.Code != CodeOK {
		t.Fatalf("known log: %+v", r)
	}
	rec, _ := st.Get(f.key.Origin())
	if rec == nil || rec.Size != 3 || len(rec.Note) > 1024 {
		t.Fatalf("record %+v", rec)
	}
}

func TestSubmitOverStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lim := DefaultLimits()
	lim.Rate, lim.Burst = 0.001, 2
	s := newService(t, NewMemStore(), WithLimits(lim))
	defer s.Close()
	c, _ := newHost(t, "client", false)
	c.Peerstore().AddAddrs(s.h.ID(), s.h.Addrs(), time.Hour)
	f := newFeedLog(t, "alice")
	f.grow(t, 2, "a")
	resp, err := Submit(ctx, c, s.h.ID(), f.request(t, 0))
	if err != nil || resp.Code != CodeOK {
		t.Fatalf("%v %+v", err, resp)
	}
	stale := f.request(t, 0)
	stale.OldSize = 5
	_, err = Submit(ctx, c, s.h.ID(), stale)
	if !errors.Is(err, ErrConflict) || !errors.Is(err, ErrRemote) {
		t.Fatalf("conflict: %v", err)
	}
	_, err = Submit(ctx, c, s.h.ID(), f.request(t, 2))
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third request: %v", err)
	}
	_, err = Submit(ctx, c, s.h.ID(), &Request{Note: []byte("x"), Key: []byte("short")})
	if err == nil {
		t.Fatal("bad request accepted")
	}
}

func TestFuzzSeeds(t *testing.T) {
	named := map[string][]byte{}
	for i, b := range requestSeeds(t) {
		named[fmt.Sprintf("seed-%d", i)] = b
	}
	testutil.FuzzSeeds(t, "FuzzDecodeRequest", named)
}

func requestSeeds(t testing.TB) [][]byte {
	f := newFeedLog(t, "alice")
	f.grow(t, 3, "a")
	first, _ := consent.Marshal(f.request(t, 0))
	f.grow(t, 4, "b")
	grown, _ := consent.Marshal(f.request(t, 3))
	empty, _ := consent.Marshal(&Request{})
	return [][]byte{first, grown, empty, first[:len(first)/2], {0xa0}}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, b := range requestSeeds(f) {
		f.Add(b)
	}
	s := &Service{st: NewMemStore(), signer: signer(f, "witness-id"), lim: DefaultLimits(), now: func() time.Time { return t0 }}
	s.log = slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		again, err := consent.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(b) {
			t.Fatalf("decoded a non-canonical request")
		}
		resp := s.Witness(r)
		if resp.Code == CodeOK {
			if _, err := consent.OpenCheckpoint(consent.AddCosignatures(r.Note, resp.Cosignature), r.Key); err != nil {
				t.Fatalf("cosigned a note that does not open: %v", err)
			}
		}
	})
}
