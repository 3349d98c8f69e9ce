package wallet

// The network: the network file and dialling its peers (NetworkPath,
// HasNetwork, Dial).

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/netfile"
)

// ErrNoNetwork reports a wallet without a network file.
var ErrNoNetwork = errors.New("no network configured")

// NetworkPath is the network file cfg names: Network, else Home/network.json.
func (c Config) NetworkPath() string {
	if c.Network != "" {
		return c.Network
	}
	return filepath.Join(c.Home, netfile.Name)
}

// NetworkPath is the network file the wallet reads.
func (w *Wallet) NetworkPath() string { return w.cfg.NetworkPath() }

// HasNetwork reports whether a network file exists.
func (w *Wallet) HasNetwork() bool {
	_, err := os.Stat(w.NetworkPath())
	return err == nil
}

// Dial connects to the peers of the network file with the wallet's identity
// key, so that peers see the wallet's own ID on every stream.
func (w *Wallet) Dial(ctx context.Context) (*client.Client, error) {
	return w.dial(ctx, client.DialOptions{})
}

// dial is Dial with options.
func (w *Wallet) dial(ctx context.Context, o client.DialOptions) (*client.Client, error) {
	n, err := netfile.Read(w.NetworkPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoNetwork, w.NetworkPath())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	c, err := client.DialWith(ctx, id.Signing, n.Peers, o)
	if err != nil {
		return nil, err
	}
	c.SetDomains(domainsOf(n)) // place.go
	if err := c.Require(1); err != nil {
		c.Close()
		return nil, &PeersError{Answered: len(c.Reachable()), Configured: c.Configured(), Needed: 1}
	}
	return c, nil
}

// CheckPeers dials every peer of cfg's network file and pings it. It uses
// a throw-away key, so it needs no wallet and no keyring, and reveals
// nothing about the wallet to the peers.
func CheckPeers(ctx context.Context, cfg Config) ([]client.PeerHealth, error) {
	n, err := netfile.Read(cfg.NetworkPath())
	if err != nil {
		return nil, fmt.Errorf("reading the network file: %w", err)
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, key, n.Peers)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Health(ctx), nil
}
