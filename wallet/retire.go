package wallet

// Retiring: when a record is removed, or rotated onto new shares, the
// wallet signs a retire entry (consent.RetireBody) naming the manifest
// whose shares are no longer needed and their share IDs, so that peers
// that were offline when the shares were deleted remove them once they
// learn it from the ledger (p2p/peer, gc.go). Leases (renewLeases) tell
// the peers which shares the current manifest lists.

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/vault"
)

// retireBody is the retire entry of manifest m, whose encrypted file
// hashes to h.
func retireBody(m *vault.Manifest, h vault.Hash, removed bool) *consent.RetireBody {
	b := &consent.RetireBody{Record: m.RecordID.String(), Manifest: consent.Hash(h), Removed: removed}
	for _, s := range m.Shares {
		b.Shares = append(b.Shares, consent.Hash(s.ID))
	}
	slices.SortFunc(b.Shares, func(a, b consent.Hash) int { return bytes.Compare(a[:], b[:]) })
	b.Shares = slices.Compact(b.Shares)
	if len(b.Shares) > consent.MaxRetireShares {
		b.Shares = nil // a removed record's shares all go without a list
	}
	return b
}

// retire appends a retire entry to the wallet's feed (the caller pushes
// it).
func (w *Wallet) retire(b *consent.RetireBody) error {
	if !b.Removed && len(b.Shares) == 0 {
		return nil
	}
	l, s, err := w.openLedger(true)
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := l.Append(s, w.Now(), consent.KindRetire, b); err != nil {
		return fmt.Errorf("retiring the old shares of record %s: %w", b.Record, err)
	}
	return nil
}

// removedRecords returns the records the wallet's feed retired as
// removed, so that sync does not bring one back from a peer that was
// offline when it was removed.
func (w *Wallet) removedRecords(v *consent.View) map[string]bool {
	out := map[string]bool{}
	_ = v.FeedFrom(w.ID(), 1, func(e *consent.Entry) error {
		if e.Kind != consent.KindRetire {
			return nil
		}
		if b, err := e.DecodedBody(); err == nil && b.(*consent.RetireBody).Removed {
			out[b.(*consent.RetireBody).Record] = true
		}
		return nil
	})
	return out
}

// retireOnPeers appends a retire entry once the wallet has caught up with
// its own feed on the network, and pushes it.
func (w *Wallet) retireOnPeers(ctx context.Context, c *client.Client, b *consent.RetireBody) error {
	if _, err := w.pull(ctx, c); err != nil {
		return err
	}
	if err := w.retire(b); err != nil {
		return err
	}
	return w.Publish(ctx, c)
}
