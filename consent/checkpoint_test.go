package consent

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// feed signs n identity-free anchor entries by s, starting after head.
func testFeed(t testing.TB, s Signer, head Head, n int, label string) []*Entry {
	t.Helper()
	var out []*Entry
	for i := 0; i < n; i++ {
		var h Hash
		copy(h[:], label)
		h[31] = byte(i)
		e, err := NewEntry(s, head, t0.Add(time.Duration(i)*time.Second), KindAnchor, &AnchorBody{Record: "r", Manifest: h})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		head = e.Head()
	}
	return out
}

func hashesOf(es []*Entry) []Hash {
	out := make([]Hash, len(es))
	for i, e := range es {
		out[i] = e.Hash()
	}
	return out
}

func TestCheckpointKeyDeterministic(t *testing.T) {
	alice := testSigner(t, "alice")
	k1, err := DeriveCheckpointKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := DeriveCheckpointKey(testSigner(t, "alice"))
	kb, _ := DeriveCheckpointKey(testSigner(t, "bob"))
	if !bytes.Equal(k1.Public(), k2.Public()) || k1.Origin() != k2.Origin() {
		t.Fatal("the checkpoint key of one identity changed")
	}
	if bytes.Equal(k1.Public(), kb.Public()) {
		t.Fatal("two identities share a checkpoint key")
	}
	if strings.Contains(k1.Origin(), string(alice.ID())) || !strings.HasPrefix(k1.Origin(), OriginPrefix) {
		t.Fatalf("origin %q", k1.Origin())
	}
	cert, err := k1.Certify(alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.Verify(); err != nil {
		t.Fatal(err)
	}
	cert.Author = testSigner(t, "bob").ID()
	if err := cert.Verify(); !errors.Is(err, ErrCheckpointCert) {
		t.Fatalf("certificate under another author: %v", err)
	}
}

func TestTreeMatchesTlog(t *testing.T) {
	es := testFeed(t, testSigner(t, "alice"), Head{}, 13, "a")
	tree := NewTree(hashesOf(es))
	for n := uint64(1); n <= 13; n++ {
		// Root by hand: RFC 6962 over the entry hashes as leaf data.
		var leaves []tlog.Hash
		for _, e := range es[:n] {
			h := e.Hash()
			leaves = append(leaves, tlog.RecordHash(h[:]))
		}
		want := rfc6962(leaves)
		got, err := tree.Root(n)
		if err != nil || got != Hash(want) {
			t.Fatalf("root of %d: %v %v", n, got, err)
		}
		for old := uint64(0); old <= n; old++ {
			oldRoot, _ := tree.Root(old)
			p, err := tree.Prove(old, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckConsistency(p, old, oldRoot, n, got); err != nil {
				t.Fatalf("%d -> %d: %v", old, n, err)
			}
			if old > 0 && old < n {
				bad := oldRoot
				bad[0] ^= 1
				if err := CheckConsistency(p, old, bad, n, got); !errors.Is(err, ErrInconsistent) {
					t.Fatalf("%d -> %d with a wrong old root: %v", old, n, err)
				}
			}
		}
	}
}

// rfc6962 is the tree hash of RFC 6962 section 2.1, recursively.
func rfc6962(leaves []tlog.Hash) tlog.Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return tlog.NodeHash(rfc6962(leaves[:k]), rfc6962(leaves[k:]))
}

func TestCheckpointSignAndCosign(t *testing.T) {
	alice := testSigner(t, "alice")
	w1, w2 := testSigner(t, "witness-1"), testSigner(t, "witness-2")
	k, _ := DeriveCheckpointKey(alice)
	tree := NewTree(hashesOf(testFeed(t, alice, Head{}, 5, "a")))
	root, _ := tree.Root(5)
	msg, err := k.Sign(5, root)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := OpenCheckpoint(msg, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if sc.Size != 5 || sc.Root != root || len(sc.Cosigners) != 0 {
		t.Fatalf("opened %+v", sc.Checkpoint)
	}
	l1, err := Cosign(msg, w1, t0)
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := Cosign(msg, w2, t0.Add(time.Second))
	both := AddCosignatures(msg, l1, l2, l1)
	sc, err = OpenCheckpoint(both, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Cosigners) != 2 || sc.Cosigners[0].Witness != w1.ID() || sc.Cosigners[1].Time != t0.Unix()+1 {
		t.Fatalf("cosigners %+v", sc.Cosigners)
	}
	// A cosignature line is C2SP cosignature/v1: 4-byte key ID, 8-byte
	// time, 64-byte signature.
	if !bytes.HasPrefix(l1, []byte("— "+WitnessNamePrefix)) || len(strings.Fields(string(l1))[2]) != 104 {
		t.Fatalf("cosignature line %q", l1)
	}

	other, _ := DeriveCheckpointKey(testSigner(t, "bob"))
	if _, err := OpenCheckpoint(msg, other.Public()); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("opened with another key: %v", err)
	}
	// A cosignature moved onto another checkpoint does not verify.
	root6 := root
	root6[0] ^= 1
	msg6, _ := k.Sign(5, root6)
	if _, err := OpenCheckpoint(AddCosignatures(msg6, l1), k.Public()); !errors.Is(err, ErrCosignature) {
		t.Fatalf("moved cosignature: %v", err)
	}
	// A tampered body fails.
	bad := bytes.Replace(msg, []byte("\n5\n"), []byte("\n6\n"), 1)
	if _, err := OpenCheckpoint(bad, k.Public()); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("tampered size: %v", err)
	}
}

func TestParseCheckpointStrict(t *testing.T) {
	k, _ := DeriveCheckpointKey(testSigner(t, "alice"))
	good := Checkpoint{Origin: k.Origin(), Size: 3, Root: Hash{1}}.Text()
	if c, err := ParseCheckpoint(good); err != nil || c.Size != 3 {
		t.Fatalf("%v %v", c, err)
	}
	for _, bad := range []string{
		"", good + "extension\n", strings.Replace(good, "\n3\n", "\n03\n", 1),
		strings.Replace(good, "\n3\n", "\n-3\n", 1), strings.Replace(good, OriginPrefix, "go.sum/", 1),
		strings.TrimSuffix(good, "\n"), strings.Replace(good, "=\n", "\n", 1),
	} {
		if _, err := ParseCheckpoint(bad); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("parsed %q", bad)
		}
	}
}

// forkWorld is a feed of alice forked at seq 4: entries 1-3 shared,
// branches A and B of two entries each, and two witnesses' cosigned
// checkpoints of each branch at size 5.
type forkWorld struct {
	alice      *KeySigner
	key        *CheckpointKey
	cert       *CheckpointCert
	a, b       []*Entry // whole branches, seq 1-5
	noteA      []byte
	noteB      []byte
	w1, w2     *KeySigner
	rootA, rtB Hash
}

func newForkWorld(t testing.TB) *forkWorld {
	f := &forkWorld{alice: testSigner(t, "alice"), w1: testSigner(t, "w1"), w2: testSigner(t, "w2")}
	f.key, _ = DeriveCheckpointKey(f.alice)
	f.cert, _ = f.key.Certify(f.alice)
	shared := testFeed(t, f.alice, Head{}, 3, "s")
	head := shared[2].Head()
	f.a = append(append([]*Entry(nil), shared...), testFeed(t, f.alice, head, 2, "A")...)
	f.b = append(append([]*Entry(nil), shared...), testFeed(t, f.alice, head, 2, "B")...)
	f.rootA, _ = NewTree(hashesOf(f.a)).Root(5)
	f.rtB, _ = NewTree(hashesOf(f.b)).Root(5)
	f.noteA = f.cosigned(t, f.rootA, f.w1)
	f.noteB = f.cosigned(t, f.rtB, f.w2)
	return f
}

func (f *forkWorld) cosigned(t testing.TB, root Hash, w *KeySigner) []byte {
	msg, err := f.key.Sign(5, root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Cosign(msg, w, t0)
	if err != nil {
		t.Fatal(err)
	}
	return AddCosignatures(msg, l)
}

func findingKinds(fs []Finding) map[string]int {
	m := map[string]int{}
	for _, f := range fs {
		m[f.Kind]++
	}
	return m
}

func TestAuditForkFromCosignedCheckpoints(t *testing.T) {
	f := newForkWorld(t)
	var buf bytes.Buffer
	x := &ExportFile{Entries: f.a, Certs: []*CheckpointCert{f.cert}, Checkpoints: [][]byte{f.noteA, f.noteB}}
	if err := WriteExportFile(&buf, x); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExportFile(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rep := AuditExportFile(got)
	if rep.OK() || findingKinds(rep.Findings)[FindingFork] != 1 || len(rep.Forks) != 1 {
		t.Fatalf("findings %+v forks %+v", rep.Findings, rep.Forks)
	}
	fk := rep.Forks[0]
	if fk.Author != f.alice.ID() || len(fk.Evidence) != 2 {
		t.Fatalf("fork %+v", fk)
	}
	ev := map[Hash]ForkEvidence{fk.Evidence[0].Root: fk.Evidence[0], fk.Evidence[1].Root: fk.Evidence[1]}
	if ev[f.rootA].Note != string(f.noteA) || ev[f.rtB].Note != string(f.noteB) ||
		ev[f.rootA].Cosigners[0].Witness != f.w1.ID() || ev[f.rtB].Cosigners[0].Witness != f.w2.ID() {
		t.Fatalf("evidence %+v", fk.Evidence)
	}
	if len(rep.Checkpoints) != 2 {
		t.Fatalf("checkpoints %+v", rep.Checkpoints)
	}

	// B alone against A's entries: the root does not match what is held.
	a := AuditCheckpoints(f.a, []*CheckpointCert{f.cert}, [][]byte{f.noteB})
	if findingKinds(a.Findings)[FindingFork] != 1 || !a.Forks[0].Evidence[1].Held {
		t.Fatalf("held mismatch: %+v", a.Forks)
	}
	// A alone: clean; two witnesses on A merge into one checkpoint.
	noteA2 := f.cosigned(t, f.rootA, f.w2)
	a = AuditCheckpoints(f.a, []*CheckpointCert{f.cert}, [][]byte{f.noteA, noteA2})
	if len(a.Findings) != 0 || len(a.Checkpoints) != 1 || len(a.Checkpoints[0].Cosigners) != 2 {
		t.Fatalf("clean: %+v %+v", a.Findings, a.Checkpoints)
	}
}

func TestAuditWithheld(t *testing.T) {
	f := newForkWorld(t)
	a := AuditCheckpoints(f.a[:3], []*CheckpointCert{f.cert}, [][]byte{f.noteA})
	if findingKinds(a.Findings)[FindingWithheld] != 1 || len(a.Findings) != 1 {
		t.Fatalf("findings %+v", a.Findings)
	}
	// Not cosigned: only the author says so; no finding.
	msg, _ := f.key.Sign(5, f.rootA)
	if a := AuditCheckpoints(f.a[:3], []*CheckpointCert{f.cert}, [][]byte{msg}); len(a.Findings) != 0 {
		t.Fatalf("uncosigned: %+v", a.Findings)
	}
}

func TestAuditInvalidCheckpoints(t *testing.T) {
	f := newForkWorld(t)
	badCert := *f.cert
	badCert.Sig = append([]byte(nil), f.cert.Sig...)
	badCert.Sig[0] ^= 1
	// Flip one bit of w1's signature (the last base64 digits before "==").
	badCosig := append([]byte(nil), f.noteA...)
	i := bytes.LastIndex(badCosig, []byte("==\n"))
	if badCosig[i-2] == 'A' {
		badCosig[i-2] = 'B'
	} else {
		badCosig[i-2] = 'A'
	}
	tampered := bytes.Replace(f.noteA, []byte("\n5\n"), []byte("\n4\n"), 1)
	for name, c := range map[string]struct {
		certs []*CheckpointCert
		notes [][]byte
	}{
		"no certificate":  {nil, [][]byte{f.noteA}},
		"bad certificate": {[]*CheckpointCert{&badCert}, nil},
		"tampered note":   {[]*CheckpointCert{f.cert}, [][]byte{tampered}},
		"not a note":      {[]*CheckpointCert{f.cert}, [][]byte{[]byte("hello\n")}},
		"bad cosignature": {[]*CheckpointCert{f.cert}, [][]byte{badCosig}},
	} {
		a := AuditCheckpoints(f.a, c.certs, c.notes)
		if findingKinds(a.Findings)[FindingCheckpoint] == 0 {
			t.Errorf("%s: %+v", name, a.Findings)
		}
	}
}

func TestExportCompatible(t *testing.T) {
	f := newForkWorld(t)
	var old bytes.Buffer
	if err := WriteExport(&old, f.a); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(old.Bytes(), []byte(ExportMagic+"\x05")) {
		t.Fatal("an export without checkpoints changed format")
	}
	x, err := ReadExportFile(bytes.NewReader(old.Bytes()))
	if err != nil || len(x.Entries) != 5 || x.Certs != nil || x.Checkpoints != nil {
		t.Fatalf("%v %+v", err, x)
	}
	var buf bytes.Buffer
	_ = WriteExportFile(&buf, &ExportFile{Entries: f.a, Certs: []*CheckpointCert{f.cert}, Checkpoints: [][]byte{f.noteA}})
	es, err := ReadExport(bytes.NewReader(buf.Bytes()))
	if err != nil || len(es) != 5 {
		t.Fatalf("ReadExport of a file with checkpoints: %v", err)
	}
	b := buf.Bytes()
	for i := 1; i < len(b); i += 7 {
		if _, err := ReadExportFile(bytes.NewReader(b[:i])); !errors.Is(err, ErrBadExport) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := ReadExportFile(bytes.NewReader(append(b, 0))); !errors.Is(err, ErrBadExport) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// FuzzExportCheckpoints: an export with checkpoints never makes the reader
// or the checkpoint audit panic, and a checkpoint the audit accepts
// opens with its certified key.
func FuzzExportCheckpoints(f *testing.F) {
	w := newForkWorld(f)
	var buf bytes.Buffer
	_ = WriteExportFile(&buf, &ExportFile{Entries: w.a, Certs: []*CheckpointCert{w.cert}, Checkpoints: [][]byte{w.noteA, w.noteB}})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = WriteExportFile(&buf, &ExportFile{Entries: w.a[:1], Certs: []*CheckpointCert{w.cert}, Checkpoints: [][]byte{w.noteA}})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadExportFile(bytes.NewReader(b))
		if err != nil {
			return
		}
		rep := AuditExportFile(x)
		for _, c := range rep.Checkpoints {
			if c.Author == "" || !strings.HasPrefix(c.Origin, OriginPrefix) {
				t.Fatalf("checkpoint %+v", c)
			}
		}
	})
}
