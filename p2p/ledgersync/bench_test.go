package ledgersync

import (
	"sort"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// reachNet is n settled peers, each linked to the next three in a ring
// (degree about 6, gossipsub's D), with a channel that receives the hash
// of every entry any peer accepts.
type reachNet struct {
	nodes    []*node
	accepted chan consent.Hash
}

func newReachNet(tb testing.TB, n int) *reachNet {
	tb.Helper()
	r := &reachNet{accepted: make(chan consent.Hash, 1<<16)}
	for range n {
		nd := newNode(tb)
		nd.s.OnAccepted(func(e *consent.Entry) { r.accepted <- e.Hash() })
		r.nodes = append(r.nodes, nd)
	}
	for i := range n {
		for _, d := range []int{1, 2, 3} {
			connect(tb, r.nodes[i].h, r.nodes[(i+d)%n].h)
		}
	}
	for _, nd := range r.nodes {
		eventually(tb, 20*time.Second, "mesh formed, syncs done", func() bool {
			return nd.s.meshSize() >= 4 && nd.s.syncBusy.Load() == 0 && nd.s.Stats().Syncs > 0
		})
	}
	return r
}

// reach appends one entry on peer `from`, publishes it, and returns the
// time until the last other peer accepted it.
func (r *reachNet) reach(tb testing.TB, from int, s consent.Signer) time.Duration {
	tb.Helper()
	e := appendN(tb, r.nodes[from].l, s, 1)[0]
	h := e.Hash()
	start := time.Now()
	if err := r.nodes[from].s.Publish(ctxT(tb, wait), e); err != nil {
		tb.Fatal(err)
	}
	timeout := time.After(wait)
	for got := 0; got < len(r.nodes)-1; {
		select {
		case a := <-r.accepted:
			if a == h {
				got++
			}
		case <-timeout:
			tb.Fatalf("entry reached %d of %d peers", got, len(r.nodes)-1)
		}
	}
	return time.Since(start)
}

// BenchmarkGossipReach20 measures the time from Publish on one peer to the
// last of 19 others accepting the entry, over loopback TCP.
func BenchmarkGossipReach20(b *testing.B) {
	r := newReachNet(b, 20)
	signers := make([]consent.Signer, len(r.nodes))
	for i := range signers {
		signers[i] = testSigner(b, "bench author "+string(rune('a'+i)))
	}
	var ds []time.Duration
	for i := 0; b.Loop(); i++ {
		from := i % len(r.nodes)
		ds = append(ds, r.reach(b, from, signers[from]))
	}
	b.StopTimer()
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}
