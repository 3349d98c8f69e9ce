package consent

import (
	"bytes"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/testutil"
)

// equivocationSeeds returns real equivocation bodies: the proof of two
// anchors, and of an identity against a grant, at one seq.
func equivocationSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	alice, bob := testSigner(tb, "alice"), testSigner(tb, "bob")
	anchor := func(m string) *Entry {
		e, err := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte(m))})
		if err != nil {
			tb.Fatal(err)
		}
		return e
	}
	grant, err := NewEntry(alice, Head{}, t0, KindGrant, &Grant{Grantee: bob.ID(), Records: []string{"rec-1"},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", NotBefore: t0.Unix()})
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, pair := range [][2]*Entry{{anchor("m1"), anchor("m2")}, {anchor("m1"), grant}} {
		p, err := NewEquivocationProof(pair[0], pair[1])
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, mustMarshal(tb, p))
	}
	// Tampered: the entries swapped, and a flipped bit in B's signature.
	p, err := NewEquivocationProof(anchor("m1"), anchor("m2"))
	if err != nil {
		tb.Fatal(err)
	}
	out = append(out, mustMarshal(tb, &EquivocationProof{A: p.B, B: p.A}))
	flipped := bytes.Clone(p.B)
	flipped[len(flipped)-1] ^= 1
	out = append(out, mustMarshal(tb, &EquivocationProof{A: p.A, B: flipped}))
	return out
}

// TestEquivocationFuzzSeeds checks that testdata/fuzz/FuzzEquivocationProof
// holds every seed (testutil.FuzzSeeds rewrites them with
// $MEDWALLET_WRITE_FUZZ_SEEDS set).
func TestEquivocationFuzzSeeds(t *testing.T) {
	names := []string{"valid-anchors", "valid-anchor-grant", "tampered-order", "tampered-signature"}
	named := map[string][]byte{}
	for i, s := range equivocationSeeds(t) {
		named[names[i]] = s
	}
	testutil.FuzzSeeds(t, "FuzzEquivocationProof", named)
}

// FuzzEquivocationProof: an equivocation body decodes strictly and
// verifies, or is refused, never panics. A proof that verifies names two
// different, validly signed entries of one author and seq; logged in an
// entry by anyone, it makes every view refuse that author's grants, and
// the audit explains it.
func FuzzEquivocationProof(f *testing.F) {
	for _, s := range equivocationSeeds(f) {
		f.Add(s)
	}
	dave, bob := testSigner(f, "dave"), testSigner(f, "bob")
	f.Fuzz(func(t *testing.T, b []byte) {
		var raw EquivocationProof
		if Unmarshal(b, &raw) == nil {
			_ = VerifyEquivocation(&raw) // in any order, any content: no panic
		}
		body, err := decodeBody(KindEquivocation, b)
		if err != nil {
			return
		}
		p := body.(*EquivocationProof)
		if again, err := Marshal(p); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("a decoded proof re-encodes differently (%v)", err)
		}
		a, err := DecodeEntry(p.A)
		if err != nil {
			t.Fatal(err)
		}
		c, err := DecodeEntry(p.B)
		if err != nil {
			t.Fatal(err)
		}
		if a.Author != c.Author || a.Seq != c.Seq || bytes.Equal(p.A, p.B) || a.verifySig() != nil || c.verifySig() != nil {
			t.Fatal("a verified proof does not prove an equivocation")
		}
		if p.Author() != a.Author || p.Seq() != a.Seq {
			t.Fatalf("proof names %s#%d", p.Author().Short(), p.Seq())
		}
		e, err := NewEntry(dave, Head{}, t0, KindEquivocation, p)
		if err != nil {
			return // over MaxEntrySize
		}
		v := NewView()
		if _, err := v.Ingest(e); err != nil {
			t.Fatal(err)
		}
		if !v.Equivocating(a.Author) || len(v.ProofLogs(a.Author)) != 1 {
			t.Fatal("a logged proof did not mark its author")
		}
		r, err := SignRequest(bob, Request{Owner: a.Author, Record: "rec-1", Scope: "patient/*.rs", Purpose: "TREAT",
			Time: t0.Unix(), Nonce: []byte("fuzz-nonce-00001")})
		if err == nil {
			if d := Decide(v, r, t0); d.Allow {
				t.Fatalf("a grant of an equivocating owner allowed: %+v", d)
			}
		}
		rep := AuditLedger([]*Entry{e})
		if len(rep.Proofs) != 1 || rep.Proofs[0].Author != a.Author || rep.OK() ||
			len(rep.Proofs[0].LoggedBy) != 1 || rep.Proofs[0].LoggedBy[0].Entry != e.Hash() {
			t.Fatalf("audit of a proof entry: %+v", rep.Proofs)
		}
		_ = time.Unix(rep.Proofs[0].Entries[0].Time, 0)
	})
}
