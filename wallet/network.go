package wallet

// The network: the network file and dialling its peers (NetworkPath,
// HasNetwork, Dial).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/devnet"
)

// ErrNoNetwork reports a wallet without a network file.
var ErrNoNetwork = errors.New("no network configured")

// NetworkPath is the network file the wallet reads.
func (w *Wallet) NetworkPath() string {
	if w.cfg.Network != "" {
		return w.cfg.Network
	}
	return filepath.Join(w.cfg.Home, devnet.NetworkFile)
}

// HasNetwork reports whether a network file exists.
func (w *Wallet) HasNetwork() bool {
	_, err := os.Stat(w.NetworkPath())
	return err == nil
}

// Dial connects to the peers of the network file with the wallet's identity
// key, so that peers see the wallet's own ID on every stream.
func (w *Wallet) Dial(ctx context.Context) (*client.Client, error) {
	n, err := devnet.ReadNetwork(w.NetworkPath())
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
	c, err := client.Dial(ctx, id.Signing, n.Peers)
	if err != nil {
		return nil, err
	}
	if err := c.Require(1); err != nil {
		c.Close()
		return nil, &PeersError{Answered: len(c.Reachable()), Configured: c.Configured(), Needed: 1}
	}
	return c, nil
}
