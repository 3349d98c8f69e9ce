package wallet

// Leases: the peers keep a record's shares and manifest copies while
// their lease runs; `sync`, `record verify` and every add renew the
// leases of the wallet's records on the reachable peers, with the share
// IDs each record's current manifest lists (p2p/leases), so that a peer
// can tell the shares still referenced from those an interrupted add or
// rotation left behind.

import (
	"context"
	"os"
	"sync"

	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/leases"
	"github.com/medwallet/medwallet/vault"
)

// renewLeases renews the leases of the records rids (every record of the
// wallet if nil) on every reachable peer, best effort: a peer that does
// not answer keeps the lease it had. It returns how many (record, peer)
// leases were renewed.
func (w *Wallet) renewLeases(ctx context.Context, c *client.Client, rids []string) int {
	if rids == nil {
		var err error
		if rids, err = w.recordIDs(); err != nil {
			return 0
		}
	}
	var recs []leases.Record
	for _, rid := range rids {
		enc, err := os.ReadFile(w.manifestPath(rid))
		if err != nil {
			continue
		}
		m, err := w.loadManifest(rid)
		if err != nil {
			continue
		}
		r := leases.Record{Record: rid, Manifest: [32]byte(vault.ManifestHash(enc))}
		for _, s := range m.Shares {
			r.Shares = append(r.Shares, s.ID)
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return 0
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	for _, p := range c.Reachable() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := leases.Renew(ctx, c.Host(), p, w.ID(), recs)
			mu.Lock()
			n += k
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n
}
