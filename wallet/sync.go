package wallet

// Sync: pulling the network's ledger into the local one (PullLedger) and
// rebuilding a restored wallet from the network (Sync).

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/vault"
)

// pull ingests into the local ledger every entry the peers hold beyond it.
// It returns how many entries joined.
func (w *Wallet) pull(ctx context.Context, c *client.Client) (int, error) {
	return w.pullWith(ctx, c, client.PullOptions{})
}

// pullWith is pull with options.
func (w *Wallet) pullWith(ctx context.Context, c *client.Client, o client.PullOptions) (int, error) {
	l, _, st, err := w.openLedgerStore(true)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	have := map[consent.ID]uint64{}
	l.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			have[a] = v.Head(a).Seq
		}
	})
	// Each batch is ingested (one store transaction) as it comes; a later
	// peer is asked only for what the earlier ones lacked.
	n, held := 0, 0
	var bad error
	err = c.PullIntoWith(ctx, have, func(es []*consent.Entry) error {
		acc, err := l.IngestBatch(es)
		n += len(acc)
		// Storing reads the file's pages through bbolt's memory map;
		// give them back now and then, so that a long catch-up's
		// resident memory is what it holds, not the size of the file.
		if held += len(acc); held >= releaseEvery && st != nil {
			st.ReleaseMemory()
			held = 0
		}
		if err := unexpected(err); err != nil {
			bad = fmt.Errorf("an entry from the network does not verify: %w: %w", ErrVerify, err)
			return bad
		}
		return nil
	}, o)
	switch {
	case bad != nil:
		return n, bad
	case errors.Is(err, ledgersync.ErrNotAuthorised):
		// No peer holds a feed this identity may read (need to know): a
		// new identity's ledger is its own feed alone.
		return n, nil
	case err != nil && !errors.Is(err, client.ErrNoPeers):
		return n, &NetworkError{Op: OpPull, Err: err}
	case err != nil:
		return n, err
	}
	return n, nil
}

// releaseEvery is how many entries a pull stores between two
// boltstore.Store.ReleaseMemory calls.
const releaseEvery = 4096

// unexpected returns err, an IngestBatch error, unless every entry it
// names was an equivocation (recorded as evidence) or a duplicate.
func unexpected(err error) error {
	var be *consent.BatchError
	if err == nil || !errors.As(err, &be) || be.Store != nil {
		return err
	}
	for _, e := range be.Errs {
		if e != nil && !errors.Is(e, consent.ErrEquivocation) && !errors.Is(e, consent.ErrDuplicate) {
			return e
		}
	}
	return nil
}

// catchUp pulls the ledger before the wallet signs anything new, when it
// has a network: a wallet restored from a key backup must continue its
// feed where the network has it, never fork it (an equivocation).
func (w *Wallet) catchUp(ctx context.Context) error {
	if !w.HasNetwork() {
		return nil
	}
	_, err := w.PullLedger(ctx)
	return err
}

// PullLedger brings the local ledger up to date with the network.
func (w *Wallet) PullLedger(ctx context.Context) (int, error) {
	c, err := w.Dial(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return w.pull(ctx, c)
}

// SyncResult says what Sync brought back.
type SyncResult struct {
	Entries  int `json:"entries"`
	Records  int `json:"records"`
	Restored int `json:"restored"`
	Grants   int `json:"grants"`
	// Backup is what became of the backup of local state (backup.go).
	Backup BackupResult `json:"backup"`
	// AgeKey is set when sync installed the patient's current age
	// identity, rotated since (agekey.go).
	AgeKey bool `json:"age_key,omitempty"`
}

// Sync rebuilds the wallet from the network: it pulls the ledger, fetches
// the wallet's own manifests from peers (each must verify and match its
// anchor on the wallet's feed), saves the missing ones locally, and pushes
// the wallet's feed back. The peers it asks are those of the network file
// and the wallet's serving peers located through them (dialServing).
// After 'key import' on a new machine this brings back every record,
// grant and log entry, and the backup of local state (backup.go) the
// contacts and role keys.
func (w *Wallet) Sync(ctx context.Context) (SyncResult, error) {
	release := w.holdLedger() // its steps share one open ledger
	defer func() { release() }()
	var res SyncResult
	c, err := w.dialServing(ctx)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if res.Entries, err = w.pull(ctx, c); err != nil {
		return res, err
	}
	if res.Entries >= releaseEvery {
		// Ingesting a long catch-up built tables (the hash index, the
		// nonces) that a ledger opened from its saved view state builds
		// only when used: close the ledger (saving that state) and let
		// the next steps open it again, with less in memory.
		release()
		release = w.holdLedger()
	}
	// A rotated age key (agekey.go): the ledger names a recipient this
	// wallet does not hold as current; the copy for it is on the peers.
	if res.AgeKey, err = w.pickUpAgeKey(ctx, c); err != nil {
		return res, err
	}
	id, err := w.Identity()
	if err != nil {
		return res, err
	}
	copies, err := c.ListManifestsFor(ctx, w.ID(), "", w.ownCopiesRecipient())
	if err != nil {
		return res, err
	}
	// The ledger decides which copy is current: the latest anchor of each
	// record in the wallet's feed (the view keeps it; no entry is read).
	anchors := map[string]consent.Hash{}
	l, _, err := w.openLedger(false)
	if err != nil {
		return res, err
	}
	l.View(func(v *consent.View) {
		removed := w.removedRecords(v) // retire.go
		for _, cp := range copies {
			if a, ok := v.Anchor(w.ID(), cp.Record); ok && !removed[cp.Record] {
				anchors[cp.Record] = a.Manifest
			}
		}
	})
	l.Close()
	if err := os.MkdirAll(w.recordsPath(), 0o700); err != nil {
		return res, err
	}
	pub := w.ownerKey(id)
	for _, cp := range copies {
		if cp.Recipient != w.ID() {
			continue
		}
		want, anchored := anchors[cp.Record]
		if !anchored || consent.Hash(vault.ManifestHash(cp.Envelope)) != want {
			continue // stale, removed or foreign: the ledger decides what is current
		}
		m, err := vault.DecryptManifest(cp.Envelope, pub, id.Opener())
		if err != nil || m.RecordID.String() != cp.Record {
			continue
		}
		res.Records++
		path := w.manifestPath(cp.Record)
		local, err := os.ReadFile(path)
		if err == nil && consent.Hash(vault.ManifestHash(local)) == want {
			continue
		}
		// Missing, or re-keyed since (a paired device after the primary
		// revoked another device: device_rekey.go): the anchored copy
		// replaces it, and counts as restored.
		if err := fsutil.WriteFileAtomic(path, cp.Envelope, 0o600); err != nil {
			return res, err
		}
		res.Restored++
	}
	if res.Backup, err = w.syncBackup(ctx, c); err != nil {
		return res, err
	}
	if err := w.refreshGuardianBlob(ctx, c); err != nil { // guardian.go
		return res, err
	}
	if err := w.Publish(ctx, c); err != nil {
		return res, err
	}
	// The leases of every record on the peers (renew.go).
	w.renewLeases(ctx, c, nil)
	w.witnessSubFeeds(ctx, c) // the access sub-feeds about us, as witness_subfeeds.go says
	// Only their number: the newest one described, the others counted.
	gs, err := w.ListGrants(ctx, GrantsOptions{Limit: 1})
	if err != nil {
		return res, err
	}
	res.Grants = len(gs.Grants) + gs.Older
	return res, nil
}
