package wallet

// Serving: the peers that serve this wallet's identity (keep its feeds and
// answer ledger requests about it) learn it from a serve entry in the
// wallet's feed and from an enrolment that carries the wallet's rendezvous
// secret (p2p/serving). Both happen where placement ends, before the feed
// is pushed: a peer refuses the entries of identities it does not serve.

import (
	"context"
	"slices"
	"sync"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/serving"
)

// serveOn enrols the reachable peers of c (the wallet's network, on which
// its shares and manifests are placed) and, when they differ from the
// peers of the wallet's latest serve entry, appends a serve entry naming
// them. A peer that refuses enrolment is left out of the entry; one that
// holds the wallet's shares serves it anyway. The entry reaches the peers
// with the next push.
func (w *Wallet) serveOn(ctx context.Context, c *client.Client) error {
	l, signer, err := w.openLedger(true)
	if err != nil {
		return err
	}
	defer l.Close()
	secret, err := consent.Rendezvous(signer)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var enrolled []consent.ID
	var wg sync.WaitGroup
	for _, p := range c.Reachable() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if serving.Enrol(ctx, c.Host(), p, serving.Secret(secret)) == nil {
				mu.Lock()
				enrolled = append(enrolled, consent.ID(p.String()))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	slices.Sort(enrolled)
	enrolled = slices.Compact(enrolled)
	if len(enrolled) == 0 {
		return nil
	}
	if len(enrolled) > consent.MaxServePeers {
		enrolled = enrolled[:consent.MaxServePeers]
	}
	var same bool
	l.View(func(v *consent.View) { same = slices.Equal(v.ServingPeers(w.ID()), enrolled) })
	if same {
		return nil
	}
	_, err = l.Append(signer, w.Now(), consent.KindServe, &consent.ServeBody{Peers: enrolled})
	return err
}
