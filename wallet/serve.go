package wallet

// Serving: the peers that serve this wallet's identity (keep its feeds and
// answer ledger requests about it) are the holders of its shares and
// manifest copies (place.go). They learn it from a serve entry in the
// wallet's feed that names exactly them and from an enrolment that
// carries the wallet's rendezvous secret (p2p/serving). Both happen where
// placement ends, before the feed is pushed: a peer refuses the entries of
// identities it does not serve, and the wallet pushes its feed to its
// serving peers only.

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/serving"
)

// serveOn records the placement c made (the peers that took shares and
// manifest copies of each record it placed) and brings the wallet's serve
// entry in line with it: when the serving set (every peer holding a share
// or a manifest copy of one of the wallet's records, servingSet) differs
// from the peers of the latest serve entry, it enrols the reachable peers
// new to the set, appends a serve entry naming exactly the set, and tells
// the other reachable peers to stop serving the wallet (leave). Nothing
// is written when nothing changed, or when the wallet placed no record
// (Publish then enrols the reachable peers, see servingTargets). A holder
// that refuses enrolment or cannot be reached is named all the same: it
// serves the wallet because it holds its shares. The entry reaches the
// peers with the next push.
func (w *Wallet) serveOn(ctx context.Context, c *client.Client) error {
	_, err := w.serveSet(ctx, c)
	return err
}

// serveSet is serveOn; it reports whether it appended a serve entry.
func (w *Wallet) serveSet(ctx context.Context, c *client.Client) (bool, error) {
	if err := w.updatePlacement(c.Placed(), c.Reachable()); err != nil {
		return false, fmt.Errorf("recording where records are placed: %w", err)
	}
	if set, err := w.servingSet(nil); err != nil || len(set) == 0 {
		return false, err // nothing placed: no serve entry (and no ledger to open)
	}
	l, signer, err := w.openLedger(true)
	if err != nil {
		return false, err
	}
	defer l.Close()
	var named []consent.ID
	l.View(func(v *consent.View) { named = v.ServingPeers(w.ID()) })
	set, err := w.servingSet(named)
	if err != nil || len(set) == 0 || slices.Equal(named, set) {
		return false, err
	}
	var skip []consent.ID
	for _, p := range c.Reachable() {
		if id := consent.ID(p.String()); slices.Contains(named, id) || !slices.Contains(set, id) {
			skip = append(skip, id)
		}
	}
	if _, err := enrol(ctx, c, signer, skip); err != nil {
		return false, err
	}
	if _, err := l.Append(signer, w.Now(), consent.KindServe, &consent.ServeBody{Peers: set}); err != nil {
		return false, err
	}
	leave(ctx, c, set)
	return true, nil
}

// leave tells the reachable peers of c that set does not name to stop
// serving the wallet (best effort: a peer that is down, or does not
// serve it, changes nothing), before the new serve entry is pushed, so
// that they leave its gossip topic and take no more of its entries.
func leave(ctx context.Context, c *client.Client, set []consent.ID) {
	var wg sync.WaitGroup
	for _, p := range c.Reachable() {
		if slices.Contains(set, consent.ID(p.String())) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = serving.Leave(ctx, c.Host(), p)
		}()
	}
	wg.Wait()
}

// unplace forgets a removed record's placement and, when that changes the
// serving set, publishes a serve entry naming the peers left (c is nil
// for a local record). A wallet's last record leaves its serve entry as
// it is: the feed must stay somewhere, and a serve entry names at least
// one peer.
func (w *Wallet) unplace(ctx context.Context, c *client.Client, rid string) error {
	var reachable []peer.ID
	if c != nil {
		reachable = c.Reachable()
	}
	if err := w.forgetPlacement(rid, reachable); err != nil {
		return fmt.Errorf("recording where records are placed: %w", err)
	}
	if c == nil {
		return nil
	}
	changed, err := w.serveSet(ctx, c)
	if err != nil || !changed {
		return err
	}
	return w.Publish(ctx, c)
}

// servingTargets returns the peers of c that Publish pushes the wallet's
// feed to: the reachable peers its latest serve entry names. A wallet
// with no serve entry (it placed no record: a clinician, or a patient
// whose first act is a grant) enrols every reachable peer that does not
// serve it yet, so that its feed is kept, and pushes to them all; that
// writes no entry.
func (w *Wallet) servingTargets(ctx context.Context, c *client.Client, l *consent.Ledger, signer consent.Signer) ([]peer.ID, error) {
	var named []consent.ID
	l.View(func(v *consent.View) { named = v.ServingPeers(w.ID()) })
	if len(named) == 0 {
		if _, err := enrol(ctx, c, signer, nil); err != nil {
			return nil, err
		}
		return c.Reachable(), nil
	}
	var out []peer.ID
	for _, p := range c.Reachable() {
		if slices.Contains(named, consent.ID(p.String())) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: none of the %d peers serving this identity answered", client.ErrNoPeers, len(named))
	}
	return out, nil
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
