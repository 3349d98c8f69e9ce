package wallet

// Placement: which peers hold each record's shares and manifest copies,
// as the wallet placed them, in HOME/placement.json. The wallet's serving
// set (its serve entry, see serve.go) is the union of these peers.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/vault"
)

// placementFile is HOME/placement.json.
const placementFile = "placement.json"

// placement is HOME/placement.json: for each record ID, the sorted IDs of
// the peers that took one of its shares or a copy of its manifest when
// it was last placed (added or rotated).
type placement struct {
	Version int                     `json:"version"`
	Records map[string][]consent.ID `json:"records"`
	// Leftover are, per record, the peers that held its shares or
	// copies when it was re-placed (rotated) or removed and could not be
	// reached then: they still hold what the wallet retired, so they stay
	// in the serving set (and keep following the wallet's feed, where
	// they learn of the retire entry) until the wallet pushes its feed to
	// them.
	Leftover map[string][]consent.ID `json:"leftover,omitempty"`
}

var placementMu sync.Mutex // serialises placement.json in one process

func (w *Wallet) placementPath() string { return filepath.Join(w.cfg.Home, placementFile) }

func (w *Wallet) readPlacement() (*placement, error) {
	p := &placement{Version: 1}
	if err := w.readHomeJSON(placementFile, p, func() bool { return p.Version == 1 }); err != nil {
		return nil, err
	}
	if p.Records == nil {
		p.Records = map[string][]consent.ID{}
	}
	if p.Leftover == nil {
		p.Leftover = map[string][]consent.ID{}
	}
	return p, nil
}

func (w *Wallet) writePlacement(p *placement) error { return w.writeHomeJSON(placementFile, p) }

// updatePlacement records what a client placed (client.Placed): a record
// whose shares it placed (added or rotated) is held by exactly those
// peers and its manifest's, and the peers that held it before and are not
// reachable now are its leftover holders; a record of which it placed
// only manifest copies (for grantees) gains those peers. The file is
// written only if something changed.
func (w *Wallet) updatePlacement(placed map[string]client.Placement, reachable []peer.ID) error {
	if len(placed) == 0 {
		return nil
	}
	placementMu.Lock()
	defer placementMu.Unlock()
	p, err := w.readPlacement()
	if err != nil {
		return err
	}
	changed := false
	for rid, pl := range placed {
		var ids []consent.ID
		if len(pl.Shares) == 0 {
			old, known := p.Records[rid]
			if !known {
				continue // copies of a record placed before placement.json (servingSet)
			}
			ids = slices.Clone(old)
		}
		for _, q := range append(slices.Clone(pl.Shares), pl.Manifests...) {
			ids = append(ids, consent.ID(q.String()))
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if len(pl.Shares) > 0 {
			changed = p.leave(rid, append(slices.Clone(p.Records[rid]), p.Leftover[rid]...), append(ids, peerIDs(reachable)...)) || changed
		}
		if len(ids) > 0 && !slices.Equal(p.Records[rid], ids) {
			p.Records[rid] = ids
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return w.writePlacement(p)
}

// forgetPlacement drops a removed record's placement; the peers that held
// it and are not reachable now stay as its leftover holders.
func (w *Wallet) forgetPlacement(rid string, reachable []peer.ID) error {
	placementMu.Lock()
	defer placementMu.Unlock()
	p, err := w.readPlacement()
	if err != nil {
		return err
	}
	if _, ok := p.Records[rid]; !ok {
		return nil
	}
	p.leave(rid, append(slices.Clone(p.Records[rid]), p.Leftover[rid]...), peerIDs(reachable))
	delete(p.Records, rid)
	return w.writePlacement(p)
}

// leave sets rid's leftover holders to the peers of held that are not in
// now, and reports whether that changed them.
func (p *placement) leave(rid string, held, now []consent.ID) bool {
	var left []consent.ID
	for _, q := range held {
		if !slices.Contains(now, q) {
			left = append(left, q)
		}
	}
	slices.Sort(left)
	left = slices.Compact(left)
	if slices.Equal(left, p.Leftover[rid]) {
		return false
	}
	if len(left) == 0 {
		delete(p.Leftover, rid)
	} else {
		p.Leftover[rid] = left
	}
	return true
}

// dropLeftovers forgets the leftover holders that were pushed the
// wallet's feed (with its retire entries): they remove what they hold by
// themselves now, and leave the serving set with the next serve entry.
func (w *Wallet) dropLeftovers(pushed []peer.ID) error {
	placementMu.Lock()
	defer placementMu.Unlock()
	p, err := w.readPlacement()
	if err != nil || len(p.Leftover) == 0 {
		return err
	}
	ids := peerIDs(pushed)
	changed := false
	for rid, left := range p.Leftover {
		changed = p.leave(rid, left, ids) || changed
	}
	if !changed {
		return nil
	}
	return w.writePlacement(p)
}

func peerIDs(ps []peer.ID) []consent.ID {
	out := make([]consent.ID, 0, len(ps))
	for _, q := range ps {
		out = append(out, consent.ID(q.String()))
	}
	return out
}

// servingSet is the wallet's serving set: every peer that holds a share
// or a manifest copy of one of its records, sorted, at most
// consent.MaxServePeers (the first in ID order). Empty when the wallet
// placed no record on the network. A record of the wallet's whose
// placement is not recorded (placed before placement.json, or on another
// machine before a restore) may be on any peer named: then the peers named
// now (the latest serve entry) stay in the set.
func (w *Wallet) servingSet(named []consent.ID) ([]consent.ID, error) {
	placementMu.Lock()
	p, err := w.readPlacement()
	placementMu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []consent.ID
	for _, ps := range p.Records {
		out = append(out, ps...)
	}
	for _, ps := range p.Leftover {
		out = append(out, ps...)
	}
	if len(out) == 0 {
		return nil, nil
	}
	if rids, err := w.recordIDs(); err == nil {
		for _, rid := range rids {
			if _, ok := p.Records[rid]; !ok {
				out = append(out, named...)
				break
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > consent.MaxServePeers {
		out = out[:consent.MaxServePeers]
	}
	return out, nil
}

// Happy placement (servers of happiness): an add succeeds only when its
// shares landed on at least a "happy" number of distinct peers, by
// default k+1 (DefaultHappy), so that the record survives the loss of any
// one peer; fewer, and the add fails with a *HappyError and removes what
// it placed. The client places each share of a record on a distinct peer
// and spreads them over the failure domains the network file names
// (p2p/client, SetDomains).

// DefaultHappy is the happy number of an add that asks none: k+1.
func DefaultHappy(k int) int { return k + 1 }

// HappyError reports an add whose shares could not land on enough
// distinct peers. It is client.ErrNoPeers.
type HappyError struct {
	Happy  int // distinct peers asked for
	Placed int // distinct peers that took a share (or could: those that answered)
	K, N   int
}

func (e *HappyError) Error() string {
	return fmt.Sprintf("%v: the record's shares could land on %d distinct peers, and it needs %d (--happy)", client.ErrNoPeers, e.Placed, e.Happy)
}

func (e *HappyError) Unwrap() error { return client.ErrNoPeers }

// happyWanted is the happy number of an add with opts' Happy (0: the
// default), checked against n: more than n distinct peers cannot hold n
// shares.
func happyWanted(happy, k, n int) (int, error) {
	if happy == 0 {
		return DefaultHappy(k), nil
	}
	if happy < 1 || happy > n {
		return 0, &InputError{Field: FieldShares, Problem: Rejected,
			Err: fmt.Errorf("--happy %d: want 1 to n=%d (distinct peers holding the record's %d shares)", happy, n, n)}
	}
	return happy, nil
}

// happyBefore fails an add before anything is stored when fewer peers
// answer than happy.
func happyBefore(c *client.Client, happy, k, n int) error {
	if happy <= k+1 {
		return nil // adaptN's PeersError says it
	}
	if up := len(c.Reachable()); up < happy {
		return &HappyError{Happy: happy, Placed: up, K: k, N: n}
	}
	return nil
}

// happyAfter checks where an add's shares landed: on fewer than happy
// distinct peers, it removes them and fails.
func happyAfter(ctx context.Context, c *client.Client, m *vault.Manifest, store vault.ShareStore, happy int) error {
	placed := len(c.Placed()[m.RecordID.String()].Shares)
	if placed >= happy {
		return nil
	}
	err := error(&HappyError{Happy: happy, Placed: placed, K: m.K, N: m.N})
	if derr := vault.DeleteShares(context.WithoutCancel(ctx), m, store); derr != nil {
		err = fmt.Errorf("%w (and removing the shares placed failed: %w)", err, derr)
	}
	return err
}

// domainsOf returns the failure domains of the network file's peers (the
// file was checked when read).
func domainsOf(n netfile.Network) map[peer.ID]netfile.Domain {
	d, _ := n.PeerDomains()
	return d
}
