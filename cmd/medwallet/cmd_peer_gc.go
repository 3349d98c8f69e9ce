package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/p2p/store"
)

// gcFlags are `medwallet peer`'s lease and collection flags
// (docs/network.md, "Leases and garbage collection").
type gcFlags struct {
	lease, grace, interval time.Duration
	site, operator         string
}

func addGCFlags(cmd *cobra.Command, o *gcFlags) {
	f := cmd.Flags()
	f.DurationVar(&o.lease, "lease", store.DefaultLease, "how long a record's shares and manifests stay leased after the owner's (or a repairer's) last renewal")
	f.DurationVar(&o.grace, "gc-grace", store.DefaultGrace, "how long expired, orphaned and superseded shares are kept before they are collected, and how old an unreferenced share must be to count as an orphan")
	f.DurationVar(&o.interval, "gc-interval", store.DefaultGCInterval, "how often to collect (0: never; leases are still kept)")
	f.StringVar(&o.site, "site", "", "the site this peer runs at, announced so that wallets spread a record's shares over sites (letters, digits, . _ -)")
	f.StringVar(&o.operator, "operator", "", "who runs this peer, announced so that wallets spread a record's shares over operators")
}

// domain checks --site and --operator.
func (o gcFlags) domain() (netfile.Domain, error) {
	for _, f := range []struct{ name, v string }{{"--site", o.site}, {"--operator", o.operator}} {
		if f.v == "" {
			continue
		}
		if err := netfile.ValidDomainName(f.v); err != nil {
			return netfile.Domain{}, usageError{fmt.Errorf("bad %s: %w", f.name, err)}
		}
	}
	return netfile.Domain{Site: o.site, Operator: o.operator}, nil
}

// config checks the flags and turns them into the peer's.
func (o gcFlags) config() (peer.GCConfig, error) {
	if o.lease < time.Second || o.grace < time.Second || o.interval < 0 {
		return peer.GCConfig{}, usageError{errors.New("--lease and --gc-grace take a duration of 1s or more, --gc-interval one of 0 or more")}
	}
	return peer.GCConfig{Lease: o.lease, Grace: o.grace, Interval: o.interval, Off: o.interval == 0}, nil
}
