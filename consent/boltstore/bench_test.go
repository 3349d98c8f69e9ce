package boltstore

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// benchLedger writes n entries to a new store in dir, the shape of the
// ledger the issue measured: a patient's grants and revocations to one
// clinician, and a peer's access entries carrying the clinician's signed
// requests (about half of the entries).
func benchLedger(b *testing.B, path string, n int) {
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Keys of their own per size, so that no entry of one ledger is in
	// another (the memo of verified entries would skew "reverify").
	es, _ := genEntriesOf(b, fmt.Sprint("bench-", n), n)
	for len(es) > 0 {
		k := min(len(es), 1024)
		if err := s.PutBatch(es[:k]); err != nil {
			b.Fatal(err)
		}
		es = es[k:]
	}
}

// cpuTime is the CPU time (user and system, every thread) the process
// used so far: on a shared machine it measures cost where wall time
// measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs f b.N times and reports entries/s and CPU ms per op.
func measure(b *testing.B, n int, f func()) {
	start := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkOpenLedger opens a ledger of 1k, 10k and 100k stored entries:
// "open" is OpenLedger (chains checked, signatures trusted: stored entries
// were verified on ingest); "reverify" is what opening cost before, every
// signature checked again one by one (View.Ingest of every stored entry);
// "verify-store" is VerifyStore, the full re-check of 'ledger verify'
// (batch verification on every core).
func BenchmarkOpenLedger(b *testing.B) {
	for _, n := range []int{1000, 10_000, 100_000} {
		path := filepath.Join(b.TempDir(), "ledger.db")
		benchLedger(b, path, n)
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("open/%d", n), func(b *testing.B) {
			measure(b, n, func() {
				l, err := consent.OpenLedger(s)
				if err != nil {
					b.Fatal(err)
				}
				if got := ledgerEntries(l); got != n {
					b.Fatalf("%d entries, want %d", got, n)
				}
			})
		})
		b.Run(fmt.Sprintf("reverify/%d", n), func(b *testing.B) {
			measure(b, n, func() {
				v := consent.NewView()
				if err := s.Scan(func(e *consent.Entry) error { _, err := v.Ingest(e); return err }); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run(fmt.Sprintf("verify-store/%d", n), func(b *testing.B) {
			measure(b, n, func() {
				rep, err := consent.VerifyStore(s)
				if err != nil || !rep.OK() || rep.Entries != n {
					b.Fatalf("%+v %v", rep, err)
				}
			})
		})
		s.Close()
	}
}
