package boltstore

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// heapInUse is the heap in use after a full collection, in bytes.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// ledgerEntries counts a ledger's accepted entries from its heads.
func ledgerEntries(l *consent.Ledger) int {
	n := 0
	l.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			n += int(v.Head(a).Seq)
		}
	})
	return n
}

// BenchmarkLedgerHeap measures the heap a ledger of n entries holds, over
// a boltstore in a temp dir: "ingest" streams n entries (benchLedger's
// shape) from another store into a new ledger with IngestBatch, 256 at a
// time as sync does; "open" opens the ledger that wrote. heap-MiB is the
// heap in use after a collection, with the ledger open, less what was in
// use before. Run with -benchtime=1x: one op is the whole ingest.
func BenchmarkLedgerHeap(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		src := filepath.Join(b.TempDir(), "src.db")
		benchLedger(b, src, n)
		in, err := Open(src)
		if err != nil {
			b.Fatal(err)
		}
		dir, dst := b.TempDir(), ""
		b.Run(fmt.Sprintf("ingest/%d", n), func(b *testing.B) {
			var heap uint64
			for b.Loop() {
				dst = filepath.Join(dir, fmt.Sprint("ledger-", time.Now().UnixNano(), ".db"))
				s, err := Open(dst)
				if err != nil {
					b.Fatal(err)
				}
				base := heapInUse()
				l, err := consent.OpenLedger(s)
				if err != nil {
					b.Fatal(err)
				}
				var batch []*consent.Entry
				flush := func() {
					if _, err := l.IngestBatch(batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
				err = in.Scan(func(e *consent.Entry) error {
					if batch = append(batch, e); len(batch) == 256 {
						flush()
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				flush()
				batch = nil
				if got := ledgerEntries(l); got != n {
					b.Fatalf("%d entries, want %d", got, n)
				}
				after := heapInUse()
				heap = after - min(base, after)
				runtime.KeepAlive(l)
				l.Close()
			}
			b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		})
		b.Run(fmt.Sprintf("open/%d", n), func(b *testing.B) {
			if dst == "" {
				b.Skip("no ledger: the ingest case did not run")
			}
			var heap uint64
			for b.Loop() {
				s, err := Open(dst)
				if err != nil {
					b.Fatal(err)
				}
				base := heapInUse()
				l, err := consent.OpenLedger(s)
				if err != nil {
					b.Fatal(err)
				}
				if got := ledgerEntries(l); got != n {
					b.Fatalf("%d entries, want %d", got, n)
				}
				after := heapInUse()
				heap = after - min(base, after)
				runtime.KeepAlive(l)
				l.Close()
			}
			b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		})
		in.Close()
	}
}
