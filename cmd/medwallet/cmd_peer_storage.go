package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
)

// storageFlags are `medwallet peer`'s storage admission flags.
type storageFlags struct {
	policy    string
	allowlist string
	quotaMiB  int64
	objects   int
	putRate   float64
	minFree   int64
}

func addStorageFlags(cmd *cobra.Command, o *storageFlags) {
	f := cmd.Flags()
	f.StringVar(&o.policy, "storage-policy", "open", "who may store shares and manifests here: open (anyone, within the quotas) or allowlist")
	f.StringVar(&o.allowlist, "storage-allowlist", "", "with --storage-policy allowlist: file of the owner IDs that may store here, one per line, # comments")
	f.Int64Var(&o.quotaMiB, "owner-quota-mib", store.DefaultOwnerBytes>>20, "MiB of shares and manifests each owner may keep here (0: no quota)")
	f.IntVar(&o.objects, "owner-max-objects", store.DefaultOwnerObjects, "shares and manifest copies each owner may keep here (0: no limit)")
	f.Float64Var(&o.putRate, "owner-put-rate", store.DefaultPutRate, "puts per second each owner may make, in bursts of 10 seconds' worth (0: no limit)")
	f.Int64Var(&o.minFree, "min-free-mib", store.DefaultMinFree>>20, "refuse new shares and manifests when the data directory's disk has less free (kept for the access log)")
}

// limits checks the flags and turns them into the store's limits.
func (o storageFlags) limits() (*store.Limits, error) {
	if o.quotaMiB < 0 || o.quotaMiB > 1<<40 || o.objects < 0 || o.minFree < 0 || o.minFree > 1<<40 || o.putRate < 0 {
		return nil, usageError{errors.New("--owner-quota-mib, --owner-max-objects, --owner-put-rate and --min-free-mib take a number of 0 or more")}
	}
	l := &store.Limits{OwnerBytes: o.quotaMiB << 20, OwnerObjects: o.objects, PutRate: o.putRate,
		PutBurst: max(1, int(o.putRate*10)), MinFree: o.minFree << 20}
	switch {
	case o.policy == "open" && o.allowlist != "":
		return nil, usageError{errors.New("--storage-allowlist needs --storage-policy allowlist")}
	case o.policy == "open":
	case o.policy == "allowlist" && o.allowlist == "":
		return nil, usageError{errors.New("--storage-policy allowlist needs --storage-allowlist FILE")}
	case o.policy == "allowlist":
		m, err := store.ReadAllowlist(o.allowlist)
		if err != nil {
			return nil, err
		}
		l.Allowlist = m
	default:
		return nil, usageError{fmt.Errorf("bad --storage-policy %q: want open or allowlist", o.policy)}
	}
	return l, nil
}

type peerUsageOptions struct {
	data string
}

func newPeerUsageCommand(g *globalOptions) *cobra.Command {
	var o peerUsageOptions
	cmd := &cobra.Command{
		Use:   "usage [--data DIR]",
		Short: "Show what each owner stores on this peer, the quota and the free disk",
		Long: `Show the bytes and the number of shares and manifests every owner ID keeps
on the peer whose data directory is --data, the totals, the per-owner quota
and the free space of the disk. Owner IDs only: no record ID is shown.

A stopped peer's usage is read from its shares.db. A running peer holds that
file, so its usage is read from the snapshot it rewrites (usage.json in the
data directory) every 5 seconds when something changed, and when it stops.`,
		Example: `  medwallet peer usage --data /var/lib/medwallet-peer
  medwallet peer usage --data ./p1 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPeerUsage(cmd.Context(), o, g) },
	}
	cmd.Flags().StringVar(&o.data, "data", "", "the peer's data directory (default HOME/peer)")
	return cmd
}

func runPeerUsage(ctx context.Context, o peerUsageOptions, g *globalOptions) error {
	if o.data == "" {
		o.data = filepath.Join(g.home, "peer")
	}
	u, err := boltstore.ReadUsage(filepath.Join(o.data, peer.SharesFile))
	if errors.Is(err, boltstore.ErrLocked) {
		u, err = boltstore.ReadUsageSnapshot(filepath.Join(o.data, boltstore.UsageFile))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w, and it has written no %s yet: %w", boltstore.ErrLocked, boltstore.UsageFile, err)
		}
	} else if err == nil {
		// The limits are the running peer's: a stopped peer's last snapshot
		// has the ones it ran with.
		if snap, serr := boltstore.ReadUsageSnapshot(filepath.Join(o.data, boltstore.UsageFile)); serr == nil {
			u.Policy, u.QuotaBytes, u.QuotaObjects, u.PutRate, u.MinFree = snap.Policy, snap.QuotaBytes, snap.QuotaObjects, snap.PutRate, snap.MinFree
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return usageError{fmt.Errorf("no peer data in %q: %w", o.data, err)}
	}
	if err != nil {
		return err
	}
	out := peerUsageJSON{Usage: u}
	if rep, source, err := peer.LeaseUsage(ctx, o.data); err == nil { // cmd_peer_usage.go
		out.Leases = &leasesJSON{GCReport: rep, Source: source}
	}
	return g.emit(out, func(w io.Writer) { printUsage(w, u); printLeases(w, out.Leases) })
}

func printUsage(w io.Writer, u store.Usage) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OWNER\tSHARES\tSHARE BYTES\tMANIFESTS\tMANIFEST BYTES\tOF QUOTA")
	row := func(name string, o store.OwnerUsage, quota string) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", name, o.Shares, mib(o.ShareBytes), o.Manifests, mib(o.ManifestBytes), quota)
	}
	for _, o := range u.Owners {
		q := "-"
		if u.QuotaBytes > 0 {
			q = fmt.Sprintf("%.0f%%", 100*float64(o.Bytes())/float64(u.QuotaBytes))
		}
		row(string(o.Owner), o, q)
	}
	row(fmt.Sprintf("total (%d owners)", len(u.Owners)), u.Total, "")
	tw.Flush()
	quota := "none"
	if u.QuotaBytes > 0 {
		quota = mib(u.QuotaBytes)
	}
	if u.QuotaObjects > 0 {
		quota += fmt.Sprintf(", %d objects", u.QuotaObjects)
	}
	if u.Policy == "" {
		fmt.Fprintln(w, "quota per owner: unknown (the peer has no snapshot of the limits it runs with)")
	} else {
		fmt.Fprintf(w, "quota per owner: %s; put rate: %g/s; policy: %s\n", quota, u.PutRate, u.Policy)
	}
	free := "unknown"
	if u.Free >= 0 {
		free = mib(u.Free)
	}
	if u.Policy == "" {
		fmt.Fprintf(w, "disk free: %s\n", free)
	} else {
		fmt.Fprintf(w, "disk free: %s; new puts stop below %s\n", free, mib(u.MinFree))
	}
	switch u.Source {
	case "snapshot":
		fmt.Fprintf(w, "from the running peer's snapshot of %s\n", u.Time.Local().Format(time.DateTime))
	default:
		fmt.Fprintln(w, "from shares.db (the peer is stopped)")
	}
}

// mib formats bytes for the usage table.
func mib(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
