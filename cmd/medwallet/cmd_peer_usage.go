package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/medwallet/medwallet/p2p/store"
)

// peerUsageJSON is the --json shape of `medwallet peer usage`: the
// storage figures, and the leases (docs/network.md, "Leases and garbage
// collection").
type peerUsageJSON struct {
	store.Usage
	Leases *leasesJSON `json:"leases,omitempty"`
}

// leasesJSON is the latest collection report of a running peer
// ("snapshot"), or a dry run over a stopped peer's files ("database").
type leasesJSON struct {
	store.GCReport
	Source string `json:"source"`
}

// printLeases prints the lease table of `medwallet peer usage`.
func printLeases(w io.Writer, l *leasesJSON) {
	if l == nil {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OWNER\tLEASED\tEXPIRING\tORPHAN\tSUPERSEDED\tEXPIRED\tMANIFESTS")
	row := func(name string, u store.LeaseUsage) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", name, mib(u.Leased), mib(u.Expiring), mib(u.Orphan), mib(u.Superseded), mib(u.Expired), u.Manifests)
	}
	for _, u := range l.Owners {
		row(string(u.Owner), u)
	}
	row(fmt.Sprintf("total (%d owners)", len(l.Owners)), l.Total)
	tw.Flush()
	fmt.Fprintf(w, "lease %s, grace %s: %s collectable now (%d items)\n", days(l.Lease), days(l.Grace), mib(l.Total.CollectableBytes()), l.Total.Collectable)
	if len(l.Collected) > 0 {
		var parts []string
		for k, n := range l.Collected {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "collected since the peer started: %s (%s)\n", strings.Join(parts, ", "), mib(l.CollectedBytes))
	}
	if l.Source == "snapshot" {
		fmt.Fprintf(w, "leases from the running peer's last collection, %s\n", l.Time.Local().Format(time.DateTime))
	} else {
		fmt.Fprintln(w, "leases counted now from shares.db and ledger.db (the peer is stopped; collectable as once it catches up)")
	}
}

// days formats a lease or grace given in seconds.
func days(sec int64) string {
	d := time.Duration(sec) * time.Second
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
