package consent

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestViewPendingUntilGapFills(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	w := newWorld(t)
	var es []*Entry
	for i := range 5 {
		es = append(es, w.add(alice, t0.Add(time.Duration(i)*time.Minute), KindGrant, &Grant{
			Grantee: bob.ID(), Records: []string{"rec-1"}, Scopes: []string{"patient/Observation.rs"},
			Purpose: "TREAT", NotBefore: t0.Unix() + int64(i)}))
	}
	v := NewView()
	for _, i := range []int{4, 2, 3, 1} {
		acc, err := v.Ingest(es[i])
		if err != nil || len(acc) != 0 {
			t.Fatalf("entry %d: accepted %d, err %v; want held", i+1, len(acc), err)
		}
	}
	if v.Pending() != 4 || len(v.Grants()) != 0 {
		t.Fatalf("pending %d, grants %d", v.Pending(), len(v.Grants()))
	}
	acc, err := v.Ingest(es[0])
	if err != nil || len(acc) != 5 {
		t.Fatalf("gap filled: accepted %d, err %v; want 5", len(acc), err)
	}
	if v.Pending() != 0 || len(v.Grants()) != 5 || v.Head(alice.ID()) != es[4].Head() {
		t.Fatal("view did not converge")
	}
	// Duplicates are no-ops.
	if acc, err := v.Ingest(es[2]); err != nil || acc != nil {
		t.Fatalf("duplicate: %v %v", acc, err)
	}
}

func TestViewRefusesInvalid(t *testing.T) {
	alice := testSigner(t, "alice")
	e, err := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m"))})
	if err != nil {
		t.Fatal(err)
	}
	bad := *e
	bad.Sig = bytes.Clone(e.Sig)
	bad.Sig[0] ^= 1
	v := NewView()
	if _, err := v.Ingest(&bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v", err)
	}
	// The forged entry did not take the slot: the real one is accepted.
	if acc, err := v.Ingest(e); err != nil || len(acc) != 1 {
		t.Fatalf("real entry: %v %v", acc, err)
	}
}

func TestEquivocationProofEntry(t *testing.T) {
	alice, bob, dave := testSigner(t, "alice"), testSigner(t, "bob"), testSigner(t, "dave")
	a1, _ := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("1"))})
	a1b, _ := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("2"))})
	v := NewView()
	v.Ingest(a1)
	_, err := v.Ingest(a1b)
	var eq *EquivocationError
	if !errors.As(err, &eq) || eq.Proof.Author() != alice.ID() || eq.Proof.Seq() != 1 {
		t.Fatalf("err = %v", err)
	}
	// Dave logs the proof; a replica that never saw the conflict learns it
	// from dave's feed alone.
	pe, err := NewEntry(dave, Head{}, t0, KindEquivocation, eq.Proof)
	if err != nil {
		t.Fatal(err)
	}
	v2 := NewView()
	v2.Ingest(a1)
	if _, err := v2.Ingest(pe); err != nil {
		t.Fatal(err)
	}
	if !v2.Equivocating(alice.ID()) || v2.Equivocating(dave.ID()) {
		t.Fatal("proof entry did not mark the author")
	}
	// A proof is refused if it is not one: same entry twice, different
	// authors, wrong order.
	b1, _ := NewEntry(bob, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("1"))})
	for name, p := range map[string]*EquivocationProof{
		"same":     {A: a1.Encode(), B: a1.Encode()},
		"authors":  sortedProof(a1, b1),
		"reversed": {A: sortedProof(a1, a1b).B, B: sortedProof(a1, a1b).A},
	} {
		if err := VerifyEquivocation(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func sortedProof(x, y *Entry) *EquivocationProof {
	a, b := x.Encode(), y.Encode()
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	return &EquivocationProof{A: a, B: b}
}

func TestGrantValidate(t *testing.T) {
	bob := testSigner(t, "bob")
	ok := Grant{Grantee: bob.ID(), Records: []string{"a", "b"}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(g *Grant){
		"no grantee":      func(g *Grant) { g.Grantee = "nobody" },
		"no records":      func(g *Grant) { g.Records = nil },
		"records and all": func(g *Grant) { g.All = true },
		"unsorted":        func(g *Grant) { g.Records = []string{"b", "a"} },
		"reserved record": func(g *Grant) { g.Records = []string{"all"} },
		"v1 scope":        func(g *Grant) { g.Scopes = []string{"patient/Observation.read"} },
		"no scope":        func(g *Grant) { g.Scopes = nil },
		"purpose":         func(g *Grant) { g.Purpose = "FUN" },
		"no start":        func(g *Grant) { g.NotBefore = 0 },
		"ends first":      func(g *Grant) { g.Expires = 1 },
		"key for other":   func(g *Grant) { g.Keys = []WrappedKey{{Record: "c", Key: []byte("k")}} },
		"two keys": func(g *Grant) {
			g.Keys = []WrappedKey{{Record: "a", Key: []byte("k")}, {Record: "a", Key: []byte("k")}}
		},
	} {
		g := ok
		g.Records = append([]string(nil), ok.Records...)
		mut(&g)
		if err := g.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestViewBoundsPending(t *testing.T) {
	alice := testSigner(t, "alice")
	var es []*Entry
	var head Head
	for i := range MaxPendingPerAuthor + 2 {
		e, err := NewEntry(alice, head, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte{byte(i), byte(i >> 8)})})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
		head = e.Head()
	}
	v := NewView()
	for _, e := range es[1 : MaxPendingPerAuthor+1] {
		if _, err := v.Ingest(e); err != nil {
			t.Fatal(err)
		}
	}
	last := es[MaxPendingPerAuthor+1]
	if _, err := v.Ingest(last); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("err = %v, want ErrTooManyPending", err)
	}
	if acc, err := v.Ingest(es[0]); err != nil || len(acc) != MaxPendingPerAuthor+1 {
		t.Fatalf("gap filled: %d accepted, %v", len(acc), err)
	}
	// The refused entry was not remembered: offered again, it joins.
	if acc, err := v.Ingest(last); err != nil || len(acc) != 1 || v.Pending() != 0 {
		t.Fatalf("offered again: %d accepted, %v", len(acc), err)
	}
}
