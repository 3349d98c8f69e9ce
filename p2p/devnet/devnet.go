// Package devnet runs a whole medwallet network on loopback in one
// process, so that one machine can try everything: N peers, each with its
// own data directory, bootstrapped to one another, and a network file that
// light clients (the CLI) read to find them (see package netfile).
package devnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/peer"
)

// Devnet is a running local network.
type Devnet struct {
	Dir   string
	Peers []*peer.Peer
}

// Options configure a devnet.
type Options struct {
	Peers        int
	Dir          string
	Logger       *slog.Logger
	SyncInterval time.Duration
}

// Start starts the peers; each bootstraps to every peer started before it.
// Peer i keeps its data in Dir/peer-i, so a devnet restarted on the same
// directory comes back with its data.
func Start(ctx context.Context, o Options) (*Devnet, error) {
	if o.Peers < 1 || o.Peers > 64 {
		return nil, fmt.Errorf("a devnet has 1 to 64 peers, not %d", o.Peers)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	d := &Devnet{Dir: o.Dir}
	var boot []string
	for i := range o.Peers {
		log := o.Logger
		if log != nil {
			log = log.With("node", i)
		}
		p, err := peer.Start(ctx, peer.Config{
			DataDir:      filepath.Join(o.Dir, fmt.Sprintf("peer-%d", i)),
			Listen:       node.LoopbackListen,
			Bootstrap:    boot,
			SyncInterval: o.SyncInterval,
			Logger:       log,
		})
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("starting peer %d: %w", i, err)
		}
		d.Peers = append(d.Peers, p)
		boot = append(boot, p.TCPAddr())
	}
	if err := netfile.Write(d.NetworkPath(), netfile.Network{Peers: d.Addrs()}); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Addrs lists one TCP multiaddr per peer.
func (d *Devnet) Addrs() []string {
	var out []string
	for _, p := range d.Peers {
		out = append(out, p.TCPAddr())
	}
	return out
}

// NetworkPath is the devnet's network file.
func (d *Devnet) NetworkPath() string { return filepath.Join(d.Dir, netfile.Name) }

// Close stops every peer.
func (d *Devnet) Close() error {
	var errs []error
	for _, p := range d.Peers {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
