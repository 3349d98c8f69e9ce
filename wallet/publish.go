package wallet

// Publishing: pushing the wallet's feed and manifest copies to the peers
// (Publish).

import (
	"context"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
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
	return w.Publish(ctx, c)
}

// Publish pushes the wallet's own feed to the network; peers keep what
// they lack, so this also repairs a feed that was only partly published.
func (w *Wallet) Publish(ctx context.Context, c *client.Client) error {
	l, _, err := w.openLedger(false)
	if err != nil {
		return err
	}
	var feed []*consent.Entry
	l.View(func(v *consent.View) { feed = v.Feed(w.ID()) })
	l.Close()
	if len(feed) == 0 {
		return nil
	}
	if _, err := c.Push(ctx, feed); err != nil {
		return &NetworkError{Op: OpPublish, Err: err}
	}
	return nil
}
