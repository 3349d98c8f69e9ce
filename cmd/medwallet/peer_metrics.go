package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/p2p/metrics"
)

// peerOpsOptions are the operator's flags of the peer command that are
// not the peer's own configuration: --config (peer_config.go) and
// --metrics.
type peerOpsOptions struct {
	metrics string
}

// addPeerOps adds --config and --metrics to the peer command.
func addPeerOps(cmd *cobra.Command, o *peerOpsOptions) {
	addPeerConfig(cmd)
	cmd.Flags().StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics over HTTP at /metrics on this HOST:PORT, such as 127.0.0.1:9464 (no PHI; keep it off the internet)")
}

// startMetrics serves the peer's metrics at --metrics until ctx ends; it
// returns nil metrics (every hook a no-op) without the flag.
func (o peerOpsOptions) startMetrics(ctx context.Context, log *slog.Logger) (*metrics.Metrics, error) {
	if o.metrics == "" {
		return nil, nil
	}
	m := metrics.New()
	addr, err := m.Serve(ctx, o.metrics, log)
	if err != nil {
		return nil, fmt.Errorf("--metrics %q: %w", o.metrics, err)
	}
	log.Info("serving metrics", "url", "http://"+addr.String()+"/metrics")
	return m, nil
}
