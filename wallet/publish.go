package wallet

// Publishing: pushing the wallet's feed and manifest copies to the peers
// (Publish).

import (
	"context"
	"errors"
	"fmt"
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
	for _, info := range infos {
		m, err := w.manifest(info.ID)
		if err != nil {
			return err
		}
		env, err := m.Encrypt(id.Signing, recipient)
		if err != nil {
			return err
		}
		if _, err := c.PutManifest(ctx, info.ID, grantee, env, ManifestReplicas); err != nil {
			return err
		}
	}
	return w.Publish(ctx, c)
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
	return w.Publish(ctx, c)
}

// Publish pushes the wallet's own feed to the network; peers keep what
// they lack, so this also repairs a feed that was only partly published.
func (w *Wallet) Publish(ctx context.Context, c *client.Client) error {
	l, signer, err := w.openLedger(true)
	if err != nil {
		return err
	}
	var n uint64
	l.View(func(v *consent.View) { n = v.Head(w.ID()).Seq })
	if n == 0 {
		l.Close()
		return nil
	}
	if err := c.Require(1); err != nil {
		l.Close()
		return &NetworkError{Op: OpPublish, Err: err}
	}
	// Peers keep only the feeds of the patients they serve.
	if err := w.enrolNew(ctx, c, l, signer); err != nil {
		l.Close()
		return &NetworkError{Op: OpPublish, Err: err}
	}
	// The pushes read the entries from the ledger as they send them, so
	// the ledger stays open until they end; the witnesses need only the
	// feed's hashes.
	err = pushFeed(ctx, c.Host(), c.Reachable(), l, w.ID(), publishGrace)
	var hashes []consent.Hash
	l.View(func(v *consent.View) { hashes = feedHashes(v, w.ID()) })
	l.Close()
	if err != nil {
		return &NetworkError{Op: OpPublish, Err: err}
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

// pushFeed pushes feed to every peer at once and succeeds once one of them
// took every entry (accepted or already held) and the others finished or
// grace passed since; the pushes still going then are cancelled.
func pushFeed(ctx context.Context, h host.Host, peers []peer.ID, l *consent.Ledger, author consent.ID, grace time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, len(peers))
	for _, p := range peers {
		go func() { done <- pushTo(ctx, h, p, l, author) }()
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
// took every entry it lacked.
func pushTo(ctx context.Context, h host.Host, p peer.ID, l *consent.Ledger, author consent.ID) error {
	return ledgersync.PushFeed(ctx, h, p, l, author, func(a ledgersync.Ack) error { return a.Err(p) })
}
