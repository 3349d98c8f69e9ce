package ledgersync

import "github.com/libp2p/go-libp2p/core/peer"

// SyncResult is what one pull sync with a peer found: how far behind the
// peer this one was, as far as the peer can honestly tell.
type SyncResult struct {
	// Behind are the feeds on which the remote was ahead of this peer
	// (or held another entry at this peer's head) when the sync began.
	Behind int
	// Accepted are the entries that joined a feed here.
	Accepted int
	// Err is why the sync failed, nil if it completed.
	Err error
}

// WithSyncObserver calls fn after every pull sync this service makes
// (periodic, on connect, on a gap, SyncWith) with the remote and the
// result; a peer's metrics use it. fn runs on the syncing goroutine and
// must not block.
func WithSyncObserver(fn func(peer.ID, SyncResult)) Option {
	return func(c *config) error {
		c.onSync = fn
		return nil
	}
}

// observeSync reports a sync to the observer, if any.
func (c *config) observeSync(p peer.ID, r SyncResult) {
	if c.onSync != nil {
		c.onSync(p, r)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
