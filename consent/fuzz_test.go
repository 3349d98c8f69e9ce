package consent

import (
	"bytes"
	"testing"
	"time"
)

// The seed corpora live in testdata/fuzz/FuzzXxx (valid encodings taken
// from the test vectors, plus damaged ones); f.Add adds a few more.

// FuzzDecodeEntry: decoding never panics, and whatever decodes re-encodes
// to the same bytes (the encoding is canonical, so an entry has one
// encoding and one hash).
func FuzzDecodeEntry(f *testing.F) {
	alice := testSigner(f, "alice")
	e, err := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m"))})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e.Encode())
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("decoded entry re-encodes differently")
		}
		_ = VerifyEntry(e)
		v := NewView()
		_, _ = v.Ingest(e)
		_ = AuditLedger([]*Entry{e})
	})
}

// FuzzDecodeRequest: decoding never panics, decoded requests re-encode to
// the same bytes, and Decide on them never panics.
func FuzzDecodeRequest(f *testing.F) {
	bob := testSigner(f, "bob")
	r, err := SignRequest(bob, Request{Owner: testSigner(f, "alice").ID(), Record: "rec-1",
		Scope: "patient/Observation.rs", Purpose: "TREAT", Time: t0.Unix(), Nonce: bytes.Repeat([]byte{7}, 16)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatalf("decoded request re-encodes differently")
		}
		d := Decide(NewView(), r, time.Unix(r.Time, 0))
		if d.Allow {
			t.Fatal("empty view allowed a request")
		}
	})
}

// FuzzParseScope: parsing never panics, and the canonical form of a
// parsed scope parses to itself.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"patient/Observation.rs", "patient/*.read", "user/Condition.cruds?category=problem-list-item&x=y", "patient/Observation.sr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		again, err := ParseScope(sc.String())
		if err != nil || again.String() != sc.String() {
			t.Fatalf("canonical form %q does not round-trip: %v", sc.String(), err)
		}
	})
}

// FuzzReadExport: the export reader never panics on any file.
func FuzzReadExport(f *testing.F) {
	var buf bytes.Buffer
	alice := testSigner(f, "alice")
	e, _ := NewEntry(alice, Head{}, t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m"))})
	WriteExport(&buf, []*Entry{e})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ReadExport(bytes.NewReader(b))
		if err == nil {
			AuditLedger(es)
		}
	})
}
