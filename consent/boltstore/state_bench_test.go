package boltstore

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/medwallet/medwallet/consent"
	bolt "go.etcd.io/bbolt"
)

// noState hides a store's StateStore: OpenLedger then reads every entry,
// as it did before the state existed.
type noState struct {
	consent.Store
	consent.RawScanner
}

// BenchmarkOpenLedgerState opens a ledger of 1k, 10k and 100k stored
// entries (benchLedger) by reading every entry ("scan") and from the
// saved view state ("state"), and measures rebuilding that state
// ("rebuild": reading every entry and saving the whole state, what the
// first open of a ledger without a state pays; "scan" less that is the
// save). heap-MiB is the heap the open ledger holds.
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
		if _, err := consent.OpenLedger(s); err != nil { // reads every entry and saves the state
			b.Fatal(err)
		}
		size := stateSize(b, s)
		b.ReportMetric(float64(size)/(1<<20), "state-MiB")
		b.Run(fmt.Sprintf("state/%d", n), func(b *testing.B) {
			openWith(b, s)
			b.ReportMetric(float64(size)/(1<<20), "state-MiB")
		})
		b.Run(fmt.Sprintf("rebuild/%d", n), func(b *testing.B) {
			measure(b, n, func() {
				if err := s.DropState(); err != nil {
					b.Fatal(err)
				}
				if _, err := consent.OpenLedger(s); err != nil {
					b.Fatal(err)
				}
			})
		})
		s.Close()
	}
}

// stateSize is the size of the keys and values of the saved state.
func stateSize(b *testing.B, s *Store) int {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(stateBucket)
		return sb.ForEachBucket(func(name []byte) error {
			return sb.Bucket(name).ForEach(func(k, v []byte) error { n += len(k) + len(v); return nil })
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
