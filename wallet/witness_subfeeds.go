package wallet

// Witnessed sub-feeds: the access sub-feeds about the wallet's identity
// (one per peer that decided on a request for its records) are witnessed
// like the wallet's own feed, so that a peer that forks its access chain
// about the patient is caught by `audit verify` like any author. Only the
// peer holds a sub-feed's key, so the wallet asks it for a signed
// checkpoint (p2p/witness, SignSubFeed) over the entries the wallet holds,
// checks it against them, and has witnesses other than that peer cosign
// it.

import (
	"context"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/witness"
)

// subFeedLog is an access sub-feed about the wallet, as the wallet holds it.
type subFeedLog struct {
	parent, feed consent.ID
	hashes       []consent.Hash
}

// witnessSubFeeds witnesses the sub-feeds about the wallet that its ledger
// holds, each at the size held, through the peers of c (best effort, within
// witnessTimeout: a sub-feed whose peer is unreachable or refuses waits
// for the next sync). It returns what each round did, by sub-feed.
func (w *Wallet) witnessSubFeeds(ctx context.Context, c *client.Client) map[consent.ID]*WitnessResult {
	if w.cfg.Witnesses < 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, witnessTimeout)
	defer cancel()
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil
	}
	var logs []subFeedLog
	l.View(func(v *consent.View) {
		for parent, feed := range v.SubFeeds(w.ID()) {
			sl := subFeedLog{parent: parent, feed: feed, hashes: feedHashes(v, feed)}
			if len(sl.hashes) > 0 {
				logs = append(logs, sl)
			}
		}
	})
	l.Close()
	slices.SortFunc(logs, func(a, b subFeedLog) int {
		switch {
		case a.feed < b.feed:
			return -1
		case a.feed > b.feed:
			return 1
		}
		return 0
	})
	up := c.Reachable()
	out := map[consent.ID]*WitnessResult{}
	for _, sl := range logs {
		if ctx.Err() != nil {
			break
		}
		if res := w.witnessSubFeed(ctx, c, up, sl); res != nil {
			out[sl.feed] = res
		}
	}
	return out
}

// witnessSubFeed witnesses one sub-feed: nil if the wallet did not get a
// checkpoint of it.
func (w *Wallet) witnessSubFeed(ctx context.Context, c *client.Client, up []peer.ID, sl subFeedLog) *WitnessResult {
	size := uint64(len(sl.hashes))
	if done := w.subFeedWitnessed(sl.feed, size); done != nil {
		return done
	}
	p, err := peer.Decode(string(sl.parent))
	if err != nil || !slices.Contains(up, p) {
		return nil
	}
	note, cert, err := witness.SignSubFeed(ctx, c.Host(), p, size)
	if err != nil || cert.Author != sl.feed {
		return nil
	}
	sc, err := consent.OpenCheckpoint(note, cert.Key)
	if err != nil || sc.Size != size {
		return nil
	}
	tree := consent.NewTree(sl.hashes)
	if root, _ := tree.Root(size); root != sc.Root {
		// The peer signed a checkpoint of its sub-feed that the entries
		// it signed, as held here, contradict: evidence of a fork.
		w.keepEvidence(cert, note)
		return &WitnessResult{Size: size, Conflicts: 1}
	}
	res, err := w.witnessLog(ctx, up, p, cert.Key, func() (*consent.CheckpointCert, error) { return cert, nil }, tree, note)
	if err != nil {
		return nil
	}
	return res
}

// subFeedWitnessed returns the result kept for feed when its newest
// checkpoint in witness.json already has size entries and enough
// cosignatures, so that a sync asks no one again; nil otherwise.
func (w *Wallet) subFeedWitnessed(feed consent.ID, size uint64) *WitnessResult {
	witnessMu.Lock()
	defer witnessMu.Unlock()
	st, err := w.readWitnessState()
	if err != nil {
		return nil
	}
	for _, fc := range st.Feeds {
		if fc.Cert == nil || fc.Cert.Author != feed || fc.Note == "" {
			continue
		}
		sc, err := consent.OpenCheckpoint([]byte(fc.Note), fc.Cert.Key)
		if err == nil && sc.Size == size && len(sc.Cosigners) >= w.witnessCount() {
			return &WitnessResult{Size: size, Cosigners: cosignerIDs(sc.Cosigners)}
		}
	}
	return nil
}

// keepEvidence keeps note, a signed checkpoint under cert's key, as
// evidence against its feed.
func (w *Wallet) keepEvidence(cert *consent.CheckpointCert, note []byte) {
	witnessMu.Lock()
	defer witnessMu.Unlock()
	st, err := w.readWitnessState()
	if err != nil {
		return
	}
	fc := st.Feeds[cert.Origin()]
	if fc == nil {
		fc = &feedCheckpoints{Cert: cert, Sizes: map[string]uint64{}}
		st.Feeds[cert.Origin()] = fc
	}
	fc.addEvidence(note)
	_ = w.writeWitnessState(st)
}
