package wallet

// Records on the network: where shares are stored and how many peers
// an add needs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/dirstore"
)

// The scope and purpose of the owner's own reads: a patient request for
// every resource type.
const (
	ownerScope   = "patient/*.rs"
	ownerPurpose = "PATRQT"
)

// ManifestReplicas is how many peers keep a copy of each manifest.
const ManifestReplicas = 3

// storeFor picks where a record's shares live: an explicit store, the peers
// of the network file (unless Local), or the local directory store. With
// the network it also returns the connected client, which the caller
// closes. m may be nil when the record does not exist yet.
func (w *Wallet) storeFor(ctx context.Context, o RecordOptions, m *vault.Manifest) (vault.ShareStore, *client.Client, error) {
	if o.Store != nil {
		return o.Store, nil, nil
	}
	if !o.Local && w.HasNetwork() {
		c, err := w.Dial(ctx)
		if err != nil {
			return nil, nil, err
		}
		a := client.Access{Owner: w.ID(), Scope: ownerScope, Purpose: ownerPurpose}
		if m != nil {
			a.Record = m.RecordID.String()
		}
		return c.RecordStore(a), c, nil
	}
	s, err := dirstore.Open(filepath.Join(w.cfg.Home, sharesDir))
	if err != nil {
		return nil, nil, fmt.Errorf("opening the share store: %w", err)
	}
	return s, nil, nil
}

// adaptN fits n to the reachable peers: it shrinks to the number of
// distinct peers, and an add fails when fewer than k+1 answer.
func adaptN(c *client.Client, k, n int) (int, error) {
	up := len(c.Reachable())
	if up < k+1 {
		return 0, &PeersError{Answered: up, Configured: c.Configured(), Needed: k + 1, K: k}
	}
	return min(n, up), nil
}

// netShareStore is the network's share store. It marks its failures to
// store a share (a peer that went away mid-add, a reset stream) so that
// sealErr can tell them from the other failures of vault.Seal.
type netShareStore struct{ vault.ShareStore }

func (s netShareStore) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	id, err := s.ShareStore.Put(ctx, r)
	if err != nil && ctx.Err() == nil {
		err = putError{err}
	}
	return id, err
}

// putError marks a share that the network failed to store.
type putError struct{ error }

func (e putError) Unwrap() error { return e.error }

// sealErr is the error of a vault.Seal into a netShareStore: a
// NetworkError when the network failed to store a share, else err.
func sealErr(err error) error {
	var pe putError
	if errors.As(err, &pe) {
		return &NetworkError{Op: OpStoreShares, Err: err}
	}
	return err
}

// refusedByPeers reports whether err carries a peer's storage admission
// refusal: a policy, quota or disk that a spare peer or fewer shares can
// route around. (A put-rate refusal is not one: the same peers would refuse
// a second try made at once.)
func refusedByPeers(err error) bool {
	return errors.Is(err, store.ErrNotAllowed) || errors.Is(err, store.ErrQuota) || errors.Is(err, store.ErrStorageFull)
}

// onceProgress passes on the bytes of a record once, however many times
// it is sealed: after restart, bytes up to the mark already shown are not
// shown again.
type onceProgress struct {
	p           vault.Progress
	done, shown int64
}

func (o *onceProgress) Add(n int64) {
	o.done += n
	if o.p != nil && o.done > o.shown {
		o.p.Add(o.done - o.shown)
		o.shown = o.done
	}
}

func (o *onceProgress) restart() { o.done = 0 }
