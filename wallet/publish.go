package wallet

// Publishing: pushing the wallet's feed and manifest copies to the peers
// (Publish).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"filippo.io/age"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/ledgersync"
)

// publishGrant stores, for each granted record, a copy of its manifest
// encrypted to the grantee on peers (so the grantee can find and check the
// shares), then pushes the wallet's feed.
func (w *Wallet) publishGrant(ctx context.Context, grantee consent.ID, recipient *age.X25519Recipient, infos []RecordInfo) error {
	id, err := w.Identity()
	if err != nil {
		return err
	}
	c, err := w.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	w.preferPlacement(c, infos)
	for _, info := range infos {
		m, err := w.manifest(info.ID)
		if err != nil {
			return err
		}
		env, err := w.sealManifest(m, id, recipient)
		if err != nil {
			return err
		}
		if _, err := c.PutManifest(ctx, info.ID, grantee, env, ManifestReplicas); err != nil {
			return err
		}
	}
	return w.Publish(ctx, c)
}

// preferPlacement tells c which peers hold each record already
// (placement.json), so that a grantee's manifest copies join them rather
// than widen the wallet's serving set.
func (w *Wallet) preferPlacement(c *client.Client, infos []RecordInfo) {
	placementMu.Lock()
	p, err := w.readPlacement()
	placementMu.Unlock()
	if err != nil {
		return
	}
	for _, info := range infos {
		var ps []peer.ID
		for _, id := range p.Records[info.ID] {
			if pid, err := peer.Decode(string(id)); err == nil {
				ps = append(ps, pid)
			}
		}
		c.PreferHolders(info.ID, ps)
	}
}

// publishFeed dials the network and pushes the wallet's feed.
func (w *Wallet) publishFeed(ctx context.Context) error {
	c, err := w.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return w.Publish(ctx, c)
}

// signAndPublish dials the network once, catches up with it (as catchUp
// does, but asking every peer at once), calls sign to append one entry to
// the wallet's feed, and pushes that entry over the same connections (the
// whole feed to a peer that lacks more): a revocation reaches the peers
// without a second round of dials, one round trip of catch-up rather than
// one per peer, and no offer of heads. A peer that answers the dial or
// the catch-up more than publishStraggle after the first is left out, so
// that one that hangs holds nothing up; it gets the entry by gossip from
// the others, or syncs. signed reports whether sign succeeded, whatever
// publishing did next.
//
// The local ledger is opened while the peers are dialled (openAhead): a
// cold revocation waits for the slower of the two, not for both.
func (w *Wallet) signAndPublish(ctx context.Context, sign func() error) (signed bool, err error) {
	defer w.holdLedger()()
	opened := w.openAhead()
	defer opened()
	c, err := w.dial(ctx, client.DialOptions{Straggle: publishStraggle})
	if err != nil {
		return false, err
	}
	defer c.Close()
	if _, err := w.pullWith(ctx, c, client.PullOptions{Fan: true, Grace: publishStraggle}); err != nil {
		return false, err
	}
	if err := sign(); err != nil {
		return false, err
	}
	return true, w.publish(ctx, c, 1)
}

// publishStraggle is how long signAndPublish waits for the other peers
// once one answered, when dialling and when catching up.
const publishStraggle = 250 * time.Millisecond

// publishRecord replicates the encrypted manifest on peers, anchors it on
// the wallet's feed and pushes the feed.
func (w *Wallet) publishRecord(ctx context.Context, c *client.Client, rid string, enc []byte) error {
	if _, err := c.PutManifest(ctx, rid, w.ID(), enc, ManifestReplicas); err != nil {
		return err
	}
	// Catch up with our own feed first: a wallet restored on a new machine
	// must not sign a second entry at a seq the network already holds.
	if _, err := w.pull(ctx, c); err != nil {
		return err
	}
	if _, err := w.AnchorRecord(ctx, rid); err != nil {
		return err
	}
	if err := w.serveOn(ctx, c); err != nil {
		return err
	}
	if err := w.Publish(ctx, c); err != nil {
		return err
	}
	w.renewLeases(ctx, c, []string{rid}) // renew.go: the share list of the new manifest
	return nil
}

// Publish pushes the wallet's own feed to its serving peers (serve.go:
// first it records what c placed and updates the serve entry); peers keep
// what they lack, so this also repairs a feed that was only partly
// published.
func (w *Wallet) Publish(ctx context.Context, c *client.Client) error {
	return w.publish(ctx, c, 0)
}

// publish is Publish; the peers are first sent only the newest fresh
// entries of the feed, those just signed (see pushTo).
func (w *Wallet) publish(ctx context.Context, c *client.Client, fresh int) error {
	if _, err := w.serveSet(ctx, c); err != nil { // what c placed (manifest copies for grantees)
		return err
	}
	l, signer, err := w.openLedger(true)
	if err != nil {
		return err
	}
	var n uint64
	l.View(func(v *consent.View) { n = v.Head(w.FeedID()).Seq })
	if n == 0 {
		l.Close()
		return nil
	}
	if err := c.Require(1); err != nil {
		l.Close()
		return &NetworkError{Op: OpPublish, Err: err}
	}
	// Peers keep only the feeds of the patients they serve.
	targets, err := w.servingTargets(ctx, c, l.Ledger, signer)
	if err != nil {
		l.Close()
		return &NetworkError{Op: OpPublish, Err: err}
	}
	// The pushes read the entries from the ledger as they send them, so
	// the ledger stays open until they end; the witnesses need only the
	// feed's hashes.
	var tail []*consent.Entry
	if fresh > 0 && uint64(fresh) < n {
		l.View(func(v *consent.View) {
			err = v.FeedFrom(w.FeedID(), n-uint64(fresh)+1, func(e *consent.Entry) error {
				tail = append(tail, e)
				return nil
			})
		})
		if err != nil {
			l.Close()
			return err
		}
	}
	err = pushFeed(ctx, c.Host(), targets, l.Ledger, w.FeedID(), tail, publishGrace)
	var hashes []consent.Hash
	l.View(func(v *consent.View) { hashes = feedHashes(v, w.FeedID()) })
	l.Close()
	if err != nil {
		return &NetworkError{Op: OpPublish, Err: err}
	}
	if err := w.dropLeftovers(targets); err != nil { // place.go
		return err
	}
	w.witnessFeed(ctx, c, hashes)
	return nil
}

// feedHashes returns the hashes of author's feed, in seq order.
func feedHashes(v *consent.View, author consent.ID) []consent.Hash {
	n := v.Head(author).Seq
	out := make([]consent.Hash, 0, n)
	for seq := uint64(1); seq <= n; seq++ {
		h, _ := v.HashAt(author, seq)
		out = append(out, h)
	}
	return out
}

// publishGrace is how long the pushes to other peers may go on once one
// peer took the whole feed: a peer that stalls (or is slow) cannot hold a
// revocation up, since the peers that took it gossip it and peers sync it.
const publishGrace = 5 * time.Second

// pushFeed pushes author's feed, as l holds it, to every peer at once
// (pushTo, with tail) and succeeds once one of them took every entry
// (accepted or already held) and the others finished or grace passed
// since; the pushes still going then are cancelled.
func pushFeed(ctx context.Context, h host.Host, peers []peer.ID, l *consent.Ledger, author consent.ID, tail []*consent.Entry, grace time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, len(peers))
	for _, p := range peers {
		go func() { done <- pushTo(ctx, h, p, l, author, tail) }()
	}
	var errs []error
	took := 0
	var graceC <-chan time.Time
	for left := len(peers); left > 0; {
		select {
		case err := <-done:
			left--
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if took++; took == 1 && left > 0 {
				t := time.NewTimer(grace)
				defer t.Stop()
				graceC = t.C
			}
		case <-graceC:
			graceC = nil
			cancel() // the pushes still going end at once; wait for them
		}
	}
	if took == 0 {
		return fmt.Errorf("no peer took the entries: %w", errors.Join(errs...))
	}
	return nil
}

// pushTo pushes author's feed, as l holds it, to p and fails unless p
// took every entry it lacked. With a tail (the newest entries of the
// feed, those just signed) it first sends only those: a peer that held
// the rest of the feed (the usual case: the wallet caught up with the
// network before it signed them) takes them in one round trip, without
// the offer of heads a whole feed needs; a peer that lacks an earlier
// entry holds them as pending and is then pushed the feed.
func pushTo(ctx context.Context, h host.Host, p peer.ID, l *consent.Ledger, author consent.ID, tail []*consent.Entry) error {
	if len(tail) > 0 {
		acks, err := ledgersync.Push(ctx, h, p, tail)
		if err != nil {
			return err
		}
		if err := tookAll(p, acks); err == nil || !slices.ContainsFunc(acks, func(a ledgersync.Ack) bool {
			return a.Status == ledgersync.AckPending
		}) {
			return err
		}
	}
	return ledgersync.PushFeed(ctx, h, p, l, author, func(a ledgersync.Ack) error { return a.Err(p) })
}

// tookAll is nil if p took every entry acks answer, else the first
// entry's error.
func tookAll(p peer.ID, acks []ledgersync.Ack) error {
	for _, a := range acks {
		if err := a.Err(p); err != nil {
			return err
		}
	}
	return nil
}
