//go:build linux

package netbed_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkNATFigures prints the figures of issue 13 as a table (they are
// figures, not assertions: they depend on the machine and its load). Run
// it once:
//
//	go test -run '^$' -bench NATFigures -benchtime 1x -timeout 30m ./internal/netbed
//
// $MEDWALLET_NETBED_ROUNDS sets the rounds of each repeated figure (10).
func BenchmarkNATFigures(b *testing.B) {
	for range b.N {
		natFigures(b)
	}
}

// imports is how many times each 64 MiB import runs.
const imports = 3

// figure is one row of the table.
type figure struct {
	name    string
	samples []time.Duration
	note    string
}

func (f figure) row() string {
	s := slices.Clone(f.samples)
	slices.Sort(s)
	if len(s) == 0 {
		return fmt.Sprintf("| %s | - | - | - | 0 | %s |", f.name, f.note)
	}
	return fmt.Sprintf("| %s | %v | %v | %v | %d | %s |", f.name, pct(s, 50), pct(s, 99), s[len(s)-1].Round(time.Millisecond), len(s), f.note)
}

// pct is the p-th percentile of sorted s (nearest rank).
func pct(s []time.Duration, p int) time.Duration {
	i := (p*len(s) + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1].Round(time.Millisecond)
}

func rounds() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("MEDWALLET_NETBED_ROUNDS"), &n); err == nil && n > 0 {
		return n
	}
	return 10
}

func natFigures(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	n := rounds()
	w := newNATWorld(ctx, b)
	// go-libp2p logs each hole punch and its duration at debug level
	w.extraEnv = append(w.extraEnv, "GOLOG_LOG_LEVEL=p2p-holepunch=debug", "GOLOG_LOG_FMT=nocolor")
	h1, h2, h3 := w.homes[0], w.homes[1], w.homes[2]
	var figs []figure

	// 1. a home peer's start until its relay address is announced (its
	// --addr-file is written within 100 ms of the reservation), over n
	// restarts of h1 and h2
	reach := figure{name: "home peer start to reachable through the relay", note: "cone-NAT peers h1, h2, restarted; --reachability private"}
	for range (n + 1) / 2 {
		for _, h := range []*mwPeer{h1, h2} {
			h.proc.Stop()
			w.start(h)
			w.circuit[h] = w.waitAddr(h, time.Minute, "relay address", isCircuit)
			reach.samples = append(reach.samples, time.Since(h.started))
		}
	}
	figs = append(figs, reach)

	// 2. the clinician (behind NAT) to a home peer (behind NAT): until
	// `medwallet peers` lists a direct connection, and the hole punch
	// itself as go-libp2p times it on the home peer
	cmdDirect := figure{name: "`peers` from the clinician (NAT) until direct to a home peer (NAT)", note: "whole command: process start, relay, DCUtR"}
	failed := 0
	for i := range n {
		h := w.homes[i%2]
		start := time.Now()
		k := w.kinds(ctx, w.bob, w.network(h))
		if !has(k[h.id], "direct") {
			failed++
			continue
		}
		cmdDirect.samples = append(cmdDirect.samples, time.Since(start))
	}
	if failed > 0 {
		cmdDirect.note += fmt.Sprintf("; %d of %d runs stayed relayed", failed, n)
	}
	punch := figure{name: "DCUtR hole punch (go-libp2p's own timing, on the home peer)", note: "from the CONNECT exchange to the direct connection"}
	for _, h := range []*mwPeer{h1, h2} {
		punch.samples = append(punch.samples, holePunchTimes(b, h.proc.Log)...)
	}
	figs = append(figs, cmdDirect, punch)

	// 3. 64 MiB: import from the two cone homes over hole-punched
	// connections, and the same on loopback peers in one namespace
	const size = 64 << 20
	_, file := w.randomFile("64mib.bin", size)
	w.setNetwork(w.alice, w.network(h1, h2))
	rec := w.mustRun(ctx, w.alice, "record", "add", file, "--k", "1", "--n", "2")
	grant := w.mustRun(ctx, w.alice, "grant", "--to", "Bob", "--record", rec, "--scope", "patient/*.rs", "--purpose", "TREAT")
	w.setNetwork(w.bob, w.network(h1, h2))
	natImport := figure{name: "import 64 MiB from home peers (NAT, hole-punched)", note: "k=1 n=2 on h1, h2; clinician behind NAT"}
	for i := range imports {
		start := time.Now()
		w.mustRun(ctx, w.bob, "import", grant, "--out", filepath.Join(w.dir, fmt.Sprintf("import64-%d", i)))
		natImport.samples = append(natImport.samples, time.Since(start))
	}
	loopImport := loopbackImport(ctx, w.world, file)
	figs = append(figs, natImport, loopImport)

	// 4. revocation reach: n grants revoked; the time from the revoke's
	// start until each home peer holds the revocation (its log line)
	w.setNetwork(w.alice, w.network(h1, h2, h3))
	var starts []time.Time
	revokeCmd := figure{name: "the `revoke` command itself", note: "process start, keyring, own feed pulled, signed, pushed until a peer acks"}
	for range n {
		g := w.mustRun(ctx, w.alice, "grant", "--to", "Bob", "--record", rec, "--scope", "patient/*.rs", "--purpose", "TREAT")
		starts = append(starts, time.Now())
		w.mustRun(ctx, w.alice, "revoke", g)
		revokeCmd.samples = append(revokeCmd.samples, time.Since(starts[len(starts)-1]))
	}
	coneReach := figure{name: "revocation reach, cone-NAT home peers", note: "revoke start to the entry on the peer (its log)"}
	symReach := figure{name: "revocation reach, symmetric-NAT home peer", note: "its connection to the patient: direct, the home peer dials her back"}
	for _, h := range w.homes {
		got := revokeTimes(b, h.proc.Log)
		// the last n revocations are the rounds'
		if len(got) < n {
			b.Errorf("%s holds %d of the %d revocations", h.name, len(got), n)
			continue
		}
		got = got[len(got)-n:]
		for i, at := range got {
			d := at.Sub(starts[i])
			if h == h3 {
				symReach.samples = append(symReach.samples, d)
			} else {
				coneReach.samples = append(coneReach.samples, d)
			}
		}
	}
	figs = append(figs, revokeCmd, coneReach, symReach)

	var sb strings.Builder
	sb.WriteString("\n| figure | p50 | p99 | max | n | note |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, f := range figs {
		sb.WriteString(f.row() + "\n")
	}
	// on stdout: go test cuts a benchmark's long log
	fmt.Print(sb.String())
}

// loopbackImport times the same 64 MiB import on two peers and two
// wallets on loopback in one namespace of the bed.
func loopbackImport(ctx context.Context, w *world, file string) figure {
	t := w.t
	t.Helper()
	h := w.bed.Public("loop")
	var nf network
	for i := range 2 {
		p := w.newPeer(h, fmt.Sprintf("loop%d", i+1))
		p.listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4101+i)}
		w.start(p)
		w.waitUp(p)
		nf.Peers = append(nf.Peers, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", 4101+i, p.id))
	}
	alice := w.newUser(ctx, h, "Alice2", "patient")
	bob := w.newUser(ctx, h, "Bob2", "clinician")
	w.setNetwork(alice, nf)
	w.setNetwork(bob, nf)
	w.exchangeCards(ctx, alice, bob)
	rec := w.mustRun(ctx, alice, "record", "add", file, "--k", "1", "--n", "2")
	grant := w.mustRun(ctx, alice, "grant", "--to", "Bob2", "--record", rec, "--scope", "patient/*.rs", "--purpose", "TREAT")
	f := figure{name: "import 64 MiB on loopback (same run)", note: "k=1 n=2, two peers and both wallets in one namespace"}
	for i := range imports {
		start := time.Now()
		w.mustRun(ctx, bob, "import", grant, "--out", filepath.Join(w.dir, fmt.Sprintf("loop-import-%d", i)))
		f.samples = append(f.samples, time.Since(start))
	}
	return f
}

var (
	logTime   = regexp.MustCompile(`time=(\S+)`)
	punchDone = regexp.MustCompile(`hole punching with successful.* duration=(\S+)`)
)

// holePunchTimes reads the durations go-libp2p logged for successful hole
// punches.
func holePunchTimes(tb testing.TB, log string) []time.Duration {
	var out []time.Duration
	eachLine(tb, log, func(l string) {
		if m := punchDone.FindStringSubmatch(l); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				out = append(out, d)
			}
		}
	})
	return out
}

// revokeTimes returns when the peer first held each revoke entry, in
// order: the time of its first "pushed" or "gossip accepted" line.
func revokeTimes(tb testing.TB, log string) []time.Time {
	var out []time.Time
	seen := map[string]bool{}
	eachLine(tb, log, func(l string) {
		if !strings.Contains(l, "(revoke)") || !(strings.Contains(l, "msg=pushed") && strings.Contains(l, "ack=accepted") || strings.Contains(l, `msg="gossip accepted"`)) {
			return
		}
		i := strings.Index(l, "entry=")
		if i < 0 {
			return
		}
		entry, _, _ := strings.Cut(l[i:], " ")
		if seen[entry] {
			return
		}
		m := logTime.FindStringSubmatch(l)
		if m == nil {
			return
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return
		}
		seen[entry] = true
		out = append(out, at)
	})
	return out
}

func eachLine(tb testing.TB, path string, f func(string)) {
	fh, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f(sc.Text())
	}
}
