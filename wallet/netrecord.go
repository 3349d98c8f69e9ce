package wallet

// Records on the network: where shares are stored and how many peers
// an add needs.

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/dirstore"
)

// The scope and purpose of the owner's own reads: a patient request for
// every resource type.
const (
	ownerScope   = "patient/*.rs"
	ownerPurpose = "PATRQT"
)

// ManifestReplicas is how many peers keep a copy of each manifest.
const ManifestReplicas = 3

// storeFor picks where a record's shares live: an explicit store, the peers
// of the network file (unless Local), or the local directory store. With
// the network it also returns the connected client, which the caller
// closes. m may be nil when the record does not exist yet.
func (w *Wallet) storeFor(ctx context.Context, o RecordOptions, m *vault.Manifest) (vault.ShareStore, *client.Client, error) {
	if o.Store != nil {
		return o.Store, nil, nil
	}
	if !o.Local && w.HasNetwork() {
		c, err := w.Dial(ctx)
		if err != nil {
			return nil, nil, err
		}
		a := client.Access{Owner: w.ID(), Scope: ownerScope, Purpose: ownerPurpose}
		if m != nil {
			a.Record = m.RecordID.String()
		}
		return c.RecordStore(a), c, nil
	}
	s, err := dirstore.Open(filepath.Join(w.cfg.Home, sharesDir))
	if err != nil {
		return nil, nil, fmt.Errorf("opening the share store: %w", err)
	}
	return s, nil, nil
}

// adaptN fits the coding parameters to the reachable peers: n shrinks to
// the number of distinct peers, and an add fails when fewer than k+1 answer.
func adaptN(c *client.Client, k, n int) (int, int, error) {
	if k == 0 {
		k = vault.DefaultK
	}
	if n == 0 {
		n = vault.DefaultN
	}
	up := len(c.Reachable())
	if up < k+1 {
		return 0, 0, WithHint(fmt.Errorf("%w: %d of %d peers answer, and k=%d needs at least %d distinct peers",
			client.ErrNoPeers, up, c.Configured(), k, k+1), "start more peers, or lower --k")
	}
	return k, min(n, up), nil
}
