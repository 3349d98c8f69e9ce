package boltstore

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// BenchmarkLedgerOpenSave measures what every command pays for the saved
// view state, at 1k, 10k and 100k stored entries (benchLedger's shape:
// a quarter of them grants): "open" is OpenLedger from the saved state;
// "append-save" opens, appends 4 entries and saves the state again (what
// a small command pays at Close). Both should cost about the same
// whatever the history.
func BenchmarkLedgerOpenSave(b *testing.B) {
	seed := sha256.Sum256([]byte("medwallet open-save bench"))
	sg, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1000, 10_000, 100_000} {
		path := filepath.Join(b.TempDir(), "ledger.db")
		benchLedger(b, path, n)
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		l, err := consent.OpenLedger(s) // reads every entry, saves the state
		if err != nil {
			b.Fatal(err)
		}
		if err := l.SaveState(); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("open/%d", n), func(b *testing.B) {
			measure(b, n, func() {
				l, err := consent.OpenLedger(s)
				if err != nil {
					b.Fatal(err)
				}
				if !l.OpenedFromState() {
					b.Fatal("not opened from the state")
				}
			})
		})
		t := time.Unix(1767225600, 0).Add(time.Duration(n) * time.Second)
		b.Run(fmt.Sprintf("append-save/%d", n), func(b *testing.B) {
			measure(b, n, func() {
				l, err := consent.OpenLedger(s)
				if err != nil {
					b.Fatal(err)
				}
				for range 4 {
					t = t.Add(time.Second)
					if _, err := l.Append(sg, t, consent.KindAnchor, &consent.AnchorBody{Record: "rec-b", Manifest: consent.HashBytes([]byte(t.String()))}); err != nil {
						b.Fatal(err)
					}
				}
				if err := l.SaveState(); err != nil {
					b.Fatal(err)
				}
			})
		})
		s.Close()
	}
}
