package consent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// t0 is the fixed "now" of the tests: 2026-01-01T00:00:00Z.
var t0 = time.Unix(1767225600, 0).UTC()

func testSigner(tb testing.TB, name string) *KeySigner {
	tb.Helper()
	seed := sha256.Sum256([]byte("medwallet test key: " + name))
	s, err := NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// world builds ledgers for tests: it signs entries at each author's head and
// collects them, optionally ingesting them into a view.
type world struct {
	tb      testing.TB
	view    *View
	heads   map[ID]Head
	entries []*Entry
}

func newWorld(tb testing.TB) *world {
	return &world{tb: tb, view: NewView(), heads: make(map[ID]Head)}
}

func (w *world) add(s Signer, at time.Time, kind Kind, body any) *Entry {
	w.tb.Helper()
	e, err := NewEntry(s, w.heads[s.ID()], at, kind, body)
	if err != nil {
		w.tb.Fatal(err)
	}
	w.heads[s.ID()] = e.Head()
	w.entries = append(w.entries, e)
	if _, err := w.view.Ingest(e); err != nil {
		w.tb.Fatal(err)
	}
	return e
}

func (w *world) grant(owner Signer, g Grant) Hash {
	w.tb.Helper()
	if g.NotBefore == 0 {
		g.NotBefore = t0.Add(-time.Hour).Unix()
	}
	if g.Purpose == "" {
		g.Purpose = "TREAT"
	}
	return w.add(owner, t0.Add(-time.Hour), KindGrant, &g).Hash()
}

var nonceCounter int

func newRequest(tb testing.TB, s Signer, owner ID, record, scope, purpose string, at time.Time) *Request {
	tb.Helper()
	nonceCounter++
	r, err := SignRequest(s, Request{
		Owner: owner, Record: record, Scope: scope, Purpose: purpose, Time: at.Unix(),
		Nonce: []byte(fmt.Sprintf("nonce-%010d", nonceCounter)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
