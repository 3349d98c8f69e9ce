package boltstore

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

func benchSigner(b *testing.B, name string) *consent.KeySigner {
	seed := sha256.Sum256([]byte("medwallet bench key: " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

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
	key := func(who string) *consent.KeySigner { return benchSigner(b, fmt.Sprint(who, "-", n)) }
	patient, clin, peer := key("patient"), key("clinician"), key("peer")
	heads := map[consent.ID]consent.Head{}
	t0 := time.Unix(1767225600, 0)
	var batch []*consent.Entry
	add := func(sg consent.Signer, kind consent.Kind, body any) *consent.Entry {
		e, err := consent.NewEntry(sg, heads[sg.ID()], t0.Add(time.Duration(len(heads))*time.Second), kind, body)
		if err != nil {
			b.Fatal(err)
		}
		heads[sg.ID()] = e.Head()
		batch = append(batch, e)
		if len(batch) == 1024 {
			if err := s.PutBatch(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
		return e
	}
	var last consent.Hash
	for i := 0; i < n; i++ {
		switch {
		case i%2 == 1:
			r, err := consent.SignRequest(clin, consent.Request{Owner: patient.ID(), Record: "rec-1",
				Scope: "patient/Observation.rs", Purpose: "TREAT", Time: t0.Unix(), Nonce: []byte(fmt.Sprintf("nonce-%012d", i))})
			if err != nil {
				b.Fatal(err)
			}
			add(peer, consent.KindAccess, &consent.AccessBody{Request: r.Encode(), Allow: true,
				Reason: consent.ReasonGranted, Grant: last, OwnerHead: heads[patient.ID()]})
		case i%6 == 4:
			add(patient, consent.KindRevoke, &consent.RevokeBody{Grant: last})
		default:
			last = add(patient, consent.KindGrant, &consent.Grant{Grantee: clin.ID(), Records: []string{"rec-1"},
				Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: t0.Unix()}).Hash()
		}
	}
	if err := s.PutBatch(batch); err != nil {
		b.Fatal(err)
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
