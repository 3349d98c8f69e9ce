package client_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// reachServing is the size of the patient's serving set in
// BenchmarkRevocationReach: the peers holding the shares of its record.
const reachServing = 20

// BenchmarkRevocationReach measures revocation reach as issue 12 asks:
// a patient whose record's shares are on reachServing loopback peers (its
// serve entry names them) revokes a grant through the wallet, as
// `medwallet revoke` does (wallet.Revoke: catch up, sign, publish), and
// reach is the time from the call to the moment the last serving peer
// enforces the revocation (its view holds it, so Decide denies the
// grantee from then on), over 50 trials. p50-ms, p99-ms and max-ms are
// that reach; call-p50-ms is how long Revoke itself took (it also asks
// witnesses to cosign the feed). publish-p50-ms (p99, max) is the
// network's part alone: the revocation already signed, the wallet already
// connected to its peers, reach from the start of Publish.
func BenchmarkRevocationReach(b *testing.B) {
	ctx := context.Background()
	d, err := devnet.Start(ctx, devnet.Options{Peers: reachServing, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	pcfg := wallet.Config{Home: b.TempDir(), Keystore: keystore.NewMemory(), ExportWorkFactor: 10, Network: d.NetworkPath()}
	patient, err := wallet.Init(pcfg, "Alice", "patient")
	if err != nil {
		b.Fatal(err)
	}
	// The same wallet without a network file: Revoke only signs.
	ocfg := pcfg
	ocfg.Network = filepath.Join(b.TempDir(), "no-network.json")
	offline, err := wallet.Open(ocfg)
	if err != nil {
		b.Fatal(err)
	}
	clinician := reachWallet(b, d, "Dr Bob", "clinician")
	if _, err := patient.AddContact("Bob", clinician.Card().String()); err != nil {
		b.Fatal(err)
	}
	rec, err := patient.AddRecord(ctx, bytes.NewReader(bytes.Repeat([]byte(`{"resourceType":"Observation"}`+"\n"), 100)),
		wallet.AddRecordOptions{K: 3, N: reachServing})
	if err != nil {
		b.Fatal(err)
	}
	serving := servingPeers(b, d, patient.ID())

	var mu sync.Mutex
	enforced := map[consent.Hash]map[consent.ID]time.Time{} // grant -> serving peer -> when
	for _, p := range serving {
		cancel := p.Sync.OnAccepted(func(e *consent.Entry) {
			if e.Kind != consent.KindRevoke {
				return
			}
			now := time.Now()
			body, err := e.DecodedBody()
			if err != nil {
				return
			}
			g := body.(*consent.RevokeBody).Grant
			mu.Lock()
			if enforced[g] == nil {
				enforced[g] = map[consent.ID]time.Time{}
			}
			enforced[g][consent.ID(p.Host.ID().String())] = now
			mu.Unlock()
		})
		b.Cleanup(cancel)
	}

	const trials = 50
	var reach, call, pub []time.Duration
	grantNow := func() consent.Hash {
		g, err := patient.Grant(ctx, wallet.GrantOptions{To: "Bob", Records: []string{rec.ID},
			Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", Expires: "30d"})
		if err != nil {
			b.Fatal(err)
		}
		// Every serving peer holds the grant before it is revoked.
		waitServing(b, serving, func(v *consent.View) bool { _, ok := v.Grant(g.ID); return ok })
		return g.ID
	}
	// lastEnforced waits for every serving peer's hook and returns the
	// latest time one of them saw the revocation of g.
	lastEnforced := func(g consent.Hash) time.Time {
		waitServing(b, serving, func(v *consent.View) bool { return v.Revoked(g) })
		// The hooks run just after the views change: wait for them.
		for {
			mu.Lock()
			ts := enforced[g]
			n := len(ts)
			var last time.Time
			for _, t := range ts {
				if t.After(last) {
					last = t
				}
			}
			mu.Unlock()
			if n == len(serving) {
				return last
			}
			time.Sleep(time.Millisecond)
		}
	}
	for b.Loop() {
		reach, call, pub = reach[:0], call[:0], pub[:0]
		for range trials {
			g := grantNow()
			start := time.Now()
			if _, err := patient.Revoke(ctx, g.String()); err != nil {
				b.Fatal(err)
			}
			call = append(call, time.Since(start))
			reach = append(reach, lastEnforced(g).Sub(start))
		}
		// The network's part alone: the wallet already connected (the
		// client dialled once, as a long-running wallet holds it), the
		// revocation signed, reach measured from the start of Publish.
		c, err := patient.Dial(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for range trials {
			g := grantNow()
			if _, err := offline.Revoke(ctx, g.String()); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := patient.Publish(ctx, c); err != nil {
				b.Fatal(err)
			}
			pub = append(pub, lastEnforced(g).Sub(start))
		}
		c.Close()
	}
	b.StopTimer()
	report(b, reach, "")
	report(b, call, "call-")
	report(b, pub, "publish-")
}

// report reports the p50, p99 and max of ds in milliseconds.
func report(b *testing.B, ds []time.Duration, prefix string) {
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[len(ds)/2]), prefix+"p50-ms")
	b.ReportMetric(ms(ds[len(ds)*99/100]), prefix+"p99-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), prefix+"max-ms")
}

// reachWallet makes a wallet on d's network, its keys in memory.
func reachWallet(tb testing.TB, d *devnet.Devnet, name, role string) *wallet.Wallet {
	tb.Helper()
	w, err := wallet.Init(wallet.Config{Home: tb.TempDir(), Keystore: keystore.NewMemory(), ExportWorkFactor: 10,
		Network: d.NetworkPath()}, name, role)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// servingPeers returns the peers of d that subject's serve entry names,
// once all of them hold it.
func servingPeers(tb testing.TB, d *devnet.Devnet, subject consent.ID) []*peer.Peer {
	tb.Helper()
	var named []consent.ID
	deadline := time.Now().Add(30 * time.Second)
	for len(named) == 0 {
		d.Peers[0].Ledger.View(func(v *consent.View) { named = v.ServingPeers(subject) })
		if time.Now().After(deadline) {
			tb.Fatal("no serve entry reached the first peer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var out []*peer.Peer
	for _, p := range d.Peers {
		if slices.Contains(named, consent.ID(p.Host.ID().String())) {
			out = append(out, p)
		}
	}
	if len(out) != len(named) {
		tb.Fatalf("the serve entry names %d peers, %d of them in the devnet", len(named), len(out))
	}
	waitServing(tb, out, func(v *consent.View) bool { return len(v.ServingPeers(subject)) > 0 })
	return out
}

// waitServing waits until cond holds on the view of every peer of ps.
func waitServing(tb testing.TB, ps []*peer.Peer, cond func(v *consent.View) bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := true
		for _, p := range ps {
			ok := false
			p.Ledger.View(func(v *consent.View) { ok = cond(v) })
			if all = all && ok; !all {
				break
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("an entry did not reach every serving peer")
		}
		time.Sleep(time.Millisecond)
	}
}
