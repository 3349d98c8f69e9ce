package client

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/vault"
)

const benchSize = 256 << 20

// prng is a fast deterministic byte stream (incompressible enough for age).
type prng struct {
	r    *rand.ChaCha8
	left int64
}

func newPRNG(n int64) *prng {
	var seed [32]byte
	return &prng{r: rand.NewChaCha8(seed), left: n}
}

func (p *prng) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.r.Read(b)
	p.left -= int64(n)
	return n, nil
}

func benchDevnet(b *testing.B, n int) *devnet.Devnet {
	d, err := devnet.Start(context.Background(), devnet.Options{Peers: n, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// BenchmarkPlainAge is the yardstick: age encryption of the same bytes to nowhere.
func BenchmarkPlainAge(b *testing.B) {
	id, _ := age.GenerateX25519Identity()
	b.SetBytes(benchSize)
	for b.Loop() {
		w, err := age.Encrypt(io.Discard, id.Recipient())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(w, newPRNG(benchSize)); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
}

// BenchmarkNetworkAddImport seals 256 MiB onto 6 loopback peers at k=4,n=6
// (add) and reads it back as a grantee through consent (import).
func BenchmarkNetworkAddImport(b *testing.B) {
	ctx := context.Background()
	d := benchDevnet(b, 6)
	_, pk, _ := ed25519.GenerateKey(nil)
	_, ck, _ := ed25519.GenerateKey(nil)
	patient, err := Dial(ctx, pk, d.Addrs())
	if err != nil {
		b.Fatal(err)
	}
	defer patient.Close()
	clinician, err := Dial(ctx, ck, d.Addrs())
	if err != nil {
		b.Fatal(err)
	}
	defer clinician.Close()
	ps, _ := consent.NewKeySigner(pk)
	cs, _ := consent.NewKeySigner(ck)
	var m *vault.Manifest
	b.Run("add", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			m, err = vault.Seal(ctx, newPRNG(benchSize), patient.ShareSink(), vault.SealOptions{
				Params: vault.Params{K: 4, N: 6}, Owner: pk.Public().(ed25519.PublicKey)})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	rec := m.RecordID.String()
	gl, _ := consent.OpenLedger(consent.NewMemStore())
	g, _ := gl.Append(ps, time.Now(), consent.KindGrant, &consent.Grant{Grantee: cs.ID(), Records: []string{rec},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", NotBefore: time.Now().Add(-time.Minute).Unix()})
	if _, err := patient.Push(ctx, []*consent.Entry{g}); err != nil {
		b.Fatal(err)
	}
	waitAll(b, d, func(v *consent.View) bool { _, ok := v.Grant(g.Hash()); return ok })
	b.Run("import", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			access := Access{Owner: ps.ID(), Record: rec, Scope: "patient/*.rs", Purpose: "TREAT"}
			if err := vault.Open(ctx, m, clinician.Getter(access), io.Discard, vault.OpenOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func waitAll(b *testing.B, d *devnet.Devnet, cond func(v *consent.View) bool) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := true
		for _, p := range d.Peers {
			ok := false
			p.Ledger.View(func(v *consent.View) { ok = cond(v) })
			all = all && ok
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("entry did not reach every peer")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkPullFrom3Peers pulls a feed of 10,000 and of 100,000 entries,
// held by each of 3 peers, into a fresh ledger on disk (as a wallet's
// sync does: PullInto, one IngestBatch per batch). peak-heap-MiB is the
// largest heap growth seen during the pull, the peers' own included.
func BenchmarkPullFrom3Peers(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) { benchPull(b, n) })
	}
}

func benchPull(b *testing.B, n int) {
	ctx := context.Background()
	d := benchDevnet(b, 3)
	_, key, _ := ed25519.GenerateKey(nil)
	s, _ := consent.NewKeySigner(key)
	feed := testFeed(b, s, n)
	for _, p := range d.Peers {
		for i := 0; i < len(feed); i += 1024 {
			if _, err := p.Ledger.IngestBatch(feed[i:min(i+1024, len(feed))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	var peak uint64
	var ingestTime, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		st, err := boltstore.Open(filepath.Join(b.TempDir(), "ledger.db"))
		if err != nil {
			b.Fatal(err)
		}
		l, err := consent.OpenLedger(st)
		if err != nil {
			b.Fatal(err)
		}
		_, rk, _ := ed25519.GenerateKey(nil)
		c, err := Dial(ctx, rk, d.Addrs())
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > base {
					peak = max(peak, ms.HeapInuse-base)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		})
		b.StartTimer()
		cpu0 := cpuTime()
		got := 0
		var ingest time.Duration
		err = c.PullInto(ctx, map[consent.ID]uint64{}, func(es []*consent.Entry) error {
			start := time.Now()
			acc, err := l.IngestBatch(es)
			ingest += time.Since(start)
			got += len(acc)
			return err
		})
		ingestTime += ingest
		cpu += cpuTime() - cpu0
		b.StopTimer()
		close(done)
		wg.Wait()
		if err != nil || got != n {
			b.Fatalf("pulled %d of %d: %v", got, n, err)
		}
		c.Close()
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(ingestTime.Seconds()/float64(b.N), "ingest-s/op")
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
