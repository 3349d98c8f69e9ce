package boltstore

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/medwallet/medwallet/consent"
)

// noState hides a store's StateStore: OpenLedger then reads every entry,
// as it did before the state existed.
type noState struct {
	consent.Store
	consent.RawScanner
}

// BenchmarkOpenLedgerState opens a ledger of 1k, 10k and 100k stored
// entries (benchLedger) by reading every entry ("scan") and from the
// saved view state ("state"), and measures saving that state ("save":
// encoding it and writing it, what Close pays after a change). heap-MiB
// is the heap the open ledger holds.
func BenchmarkOpenLedgerState(b *testing.B) {
	for _, n := range []int{1000, 10_000, 100_000} {
		path := filepath.Join(b.TempDir(), "ledger.db")
		benchLedger(b, path, n)
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		openWith := func(b *testing.B, st consent.Store) {
			var l *consent.Ledger
			base := heapInUse()
			measure(b, n, func() {
				var err error
				if l, err = consent.OpenLedger(st); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(heapInUse()-base)/(1<<20), "heap-MiB")
			var h consent.Head
			l.View(func(v *consent.View) {
				for _, a := range v.Authors() {
					h.Seq += v.Head(a).Seq
				}
			})
			if h.Seq != uint64(n) {
				b.Fatalf("%d entries, want %d", h.Seq, n)
			}
			runtime.KeepAlive(l)
		}
		b.Run(fmt.Sprintf("scan/%d", n), func(b *testing.B) { openWith(b, noState{s, s}) })
		l, err := consent.OpenLedger(s) // reads every entry and saves the state
		if err != nil {
			b.Fatal(err)
		}
		_, st, err := s.LoadState()
		if err != nil || st == nil {
			b.Fatalf("no state saved: %v", err)
		}
		b.ReportMetric(float64(len(st))/(1<<20), "state-MiB")
		b.Run(fmt.Sprintf("state/%d", n), func(b *testing.B) {
			openWith(b, s)
			b.ReportMetric(float64(len(st))/(1<<20), "state-MiB")
		})
		b.Run(fmt.Sprintf("save/%d", n), func(b *testing.B) {
			measure(b, n, func() {
				var (
					enc []byte
					err error
				)
				l.View(func(v *consent.View) { enc, err = consent.EncodeState(v) })
				if err != nil {
					b.Fatal(err)
				}
				if err := s.SaveState(uint64(n), enc); err != nil {
					b.Fatal(err)
				}
			})
		})
		s.Close()
	}
}
