package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/p2p/store"
)

// gcFlags are `medwallet peer`'s lease and collection flags
// (docs/network.md, "Leases and garbage collection").
type gcFlags struct {
	lease, grace, interval time.Duration
}

func addGCFlags(cmd *cobra.Command, o *gcFlags) {
	f := cmd.Flags()
	f.DurationVar(&o.lease, "lease", store.DefaultLease, "how long a record's shares and manifests stay leased after the owner's (or a repairer's) last renewal")
	f.DurationVar(&o.grace, "gc-grace", store.DefaultGrace, "how long expired, orphaned and superseded shares are kept before they are collected, and how old an unreferenced share must be to count as an orphan")
	f.DurationVar(&o.interval, "gc-interval", store.DefaultGCInterval, "how often to collect (0: never; leases are still kept)")
}

// config checks the flags and turns them into the peer's.
func (o gcFlags) config() (peer.GCConfig, error) {
	if o.lease < time.Second || o.grace < time.Second || o.interval < 0 {
		return peer.GCConfig{}, usageError{errors.New("--lease and --gc-grace take a duration of 1s or more, --gc-interval one of 0 or more")}
	}
	return peer.GCConfig{Lease: o.lease, Grace: o.grace, Interval: o.interval, Off: o.interval == 0}, nil
}
