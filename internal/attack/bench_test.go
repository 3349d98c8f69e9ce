package attack

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// benchRow is one line of BenchmarkAttacks' table.
type benchRow struct {
	name        string
	get, reach  []time.Duration
	hwm         []int64
	failed      string
	attackStart time.Duration
}

// BenchmarkAttacks measures, on a fresh network per attack, the patient's
// `record get` of the 1 MiB record and the reach of a revocation (from
// the start of `revoke` until every peer denies the revoked grantee), a
// few times each, without attack and with each attack running, and every
// peer's peak RSS under it. It prints one table on stdout. Run it with
// scripts/attack-bench.sh (-benchtime=1x; MEDWALLET_ATTACK_RUNS sets the
// runs per figure, 5 by default), not in CI.
func BenchmarkAttacks(b *testing.B) {
	needBinary(b)
	runs := 5
	if v, err := strconv.Atoi(os.Getenv("MEDWALLET_ATTACK_RUNS")); err == nil && v > 0 {
		runs = v
	}
	var forgers []consent.ID
	var mu sync.Mutex
	var gets atomic.Int64
	none := attack{name: "none", run: func(ctx context.Context, _ *testnet, ready func()) error {
		ready()
		<-ctx.Done()
		return nil
	}}
	scenarios := []struct {
		a    attack
		opts func(testing.TB) netOptions
	}{
		{none, nil},
		{slowShares, nil},
		{slowPush, nil},
		{slowSync, nil},
		{gapEntries, func(testing.TB) netOptions { return netOptions{peerArgs: []string{"--ledger-gap-mib", "16"}} }},
		{validEntries, nil},
		{storageFill, func(t testing.TB) netOptions { return netOptions{peerArgs: storageArgs(t)} }},
		{manifestFrames, nil},
		{forgeAccess(&forgers, &mu), nil},
		{farFuture(&forgers, &mu), nil},
		{strangerEquivocates, nil},
		{manyConns, nil},
		{tinyFetch(&gets, 3000, nil), nil},
	}
	only := os.Getenv("MEDWALLET_ATTACK_ONLY")
	var rows []*benchRow
	for _, sc := range scenarios {
		if only != "" && !strings.Contains(sc.a.name, only) {
			continue
		}
		row := &benchRow{name: sc.a.name}
		rows = append(rows, row)
		ok := b.Run(strings.ReplaceAll(sc.a.name, " ", "_"), func(b *testing.B) {
			var o netOptions
			if sc.opts != nil {
				o = sc.opts(b)
			}
			n := newNetwork(b, o)
			start := time.Now()
			n.during(sc.a, func(ctx context.Context) {
				row.attackStart = time.Since(start)
				for range runs {
					row.get = append(row.get, n.recordGet(ctx))
				}
				for i := range runs {
					if i > 0 {
						n.carolGrant = n.grant(ctx, "Carol")
					}
					n.waitAllServe(ctx)
					t0 := time.Now()
					n.mustRun(ctx, n.alice, "revoke", n.carolGrant)
					row.reach = append(row.reach, n.waitAllDeny(ctx, t0))
				}
				for _, p := range n.peers {
					h, _ := procMem(p.pid())
					row.hwm = append(row.hwm, h)
				}
			})
		})
		if !ok {
			row.failed = "failed (see the log)"
		}
	}
	printTable(os.Stdout, rows, runs)
}

// waitAllServe polls every peer as Carol until each serves her (her new
// grant reached it), so that a revocation's reach is measured from a
// network that honours the grant.
func (n *testnet) waitAllServe(ctx context.Context) {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range n.peers {
		for {
			o, why := n.carolGet(ctx, p)
			if o == served {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("peer %s did not serve Carol's new grant within 2 min: %s %s", p.name, o, why)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func pct(ds []time.Duration, q float64) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.5)
	i = min(max(i-1, 0), len(s)-1)
	return s[i].Round(time.Millisecond).String()
}

func printTable(w *os.File, rows []*benchRow, runs int) {
	fmt.Fprintf(w, "\nmedwallet under attack: 5 peer processes on loopback, %d runs per figure (p99 of %d runs is their maximum)\n", runs, runs)
	fmt.Fprintf(w, "%-32s %10s %10s %12s %12s  %s\n", "attack", "get p50", "get p99", "revoke p50", "revoke p99", "peak RSS MiB p1..p5")
	for _, r := range rows {
		var rss []string
		for _, h := range r.hwm {
			rss = append(rss, strconv.FormatInt(h>>20, 10))
		}
		line := fmt.Sprintf("%-32s %10s %10s %12s %12s  %s", r.name, pct(r.get, 0.5), pct(r.get, 0.99),
			pct(r.reach, 0.5), pct(r.reach, 0.99), strings.Join(rss, " "))
		if r.failed != "" {
			line += "  " + r.failed
		}
		fmt.Fprintln(w, line)
	}
}
