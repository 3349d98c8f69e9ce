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
	enrolled, err := enrol(ctx, c, signer, nil)
	if err != nil || len(enrolled) == 0 {
		return err
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

// enrolNew enrols the reachable peers of c that the wallet's latest serve
// entry does not name (those were enrolled when it was written), so that
// a wallet which never placed a record (a grant, a revocation, a first
// publish) still has peers that keep its feed. It writes no entry.
func (w *Wallet) enrolNew(ctx context.Context, c *client.Client, l *consent.Ledger, signer consent.Signer) error {
	var named []consent.ID
	l.View(func(v *consent.View) { named = v.ServingPeers(w.ID()) })
	_, err := enrol(ctx, c, signer, named)
	return err
}

// enrol asks every reachable peer of c but those in skip to serve the
// signer, and returns the IDs of those that accepted, sorted.
func enrol(ctx context.Context, c *client.Client, signer consent.Signer, skip []consent.ID) ([]consent.ID, error) {
	secret, err := consent.Rendezvous(signer)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var enrolled []consent.ID
	var wg sync.WaitGroup
	for _, p := range c.Reachable() {
		if slices.Contains(skip, consent.ID(p.String())) {
			continue
		}
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
		return nil, err
	}
	slices.Sort(enrolled)
	return slices.Compact(enrolled), nil
}
