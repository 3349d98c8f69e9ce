package churnsim

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

var table = flag.Bool("table", false, "print the figure's table (scripts/churn-sim.sh)")

// TestChurn checks what the figure claims at the default churn: without
// repair records are lost, with repair none is, and repair reads at most
// k bytes per byte it rebuilds.
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates a year")
	}
	c := Default()
	c.Records = 200
	without, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	c.Repair = true
	with, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	if without.Lost == 0 {
		t.Errorf("no record lost without repair after %d departures", without.Departures)
	}
	if with.Lost != 0 {
		t.Errorf("%d records lost with repair", with.Lost)
	}
	if r := with.ReadPerRebuilt(); r <= 0 || r > float64(c.K) {
		t.Errorf("repair read %.2f bytes per byte rebuilt, bound k=%d", r, c.K)
	}
	if with.Departures != without.Departures {
		t.Errorf("the two runs saw different churn: %d and %d departures", with.Departures, without.Departures)
	}
}

// TestChurnTable prints the table of docs/bench.md with -table.
func TestChurnTable(t *testing.T) {
	if !*table {
		t.Skip("run with -table (scripts/churn-sim.sh)")
	}
	var b strings.Builder
	fmt.Fprintln(&b, "| peer lifetime (mean) | departures / joins | repair | records lost (of 1,000) | bytes read per byte rebuilt (bound k=3) | repair traffic per byte lost | storage overhead (stored / live) |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, life := range []time.Duration{365 * 24 * time.Hour, 182 * 24 * time.Hour, 91 * 24 * time.Hour} {
		for _, mode := range []struct {
			name      string
			repair    bool
			threshold int
		}{{"none", false, 0}, {"daily, at n-1 = 4 healthy", true, 4}, {"daily, at k = 3 healthy (lazy)", true, 3}} {
			c := Default()
			c.Lifetime, c.Repair, c.Threshold = life, mode.repair, mode.threshold
			r, err := Run(c)
			if err != nil {
				t.Fatal(err)
			}
			ratio, traffic := "-", "-"
			if r.Rebuilt > 0 {
				ratio = fmt.Sprintf("%.2f", r.ReadPerRebuilt())
				traffic = fmt.Sprintf("%.2f", r.TrafficPerLost())
			}
			fmt.Fprintf(&b, "| %d days | %d / %d | %s | %d | %s | %s | %.2f |\n", life/(24*time.Hour), r.Departures, r.Joins,
				mode.name, r.Lost, ratio, traffic, r.Overhead())
		}
	}
	t.Log("\n" + b.String())
}
