package wallet

// Placement: which peers hold each record's shares and manifest copies,
// as the wallet placed them, in HOME/placement.json. The wallet's serving
// set (its serve entry, see serve.go) is the union of these peers.

import (
	"path/filepath"
	"slices"
	"sync"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
)

// placementFile is HOME/placement.json.
const placementFile = "placement.json"

// placement is HOME/placement.json: for each record ID, the sorted IDs of
// the peers that took one of its shares or a copy of its manifest when
// it was last placed (added or rotated).
type placement struct {
	Version int                     `json:"version"`
	Records map[string][]consent.ID `json:"records"`
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
	return p, nil
}

func (w *Wallet) writePlacement(p *placement) error { return w.writeHomeJSON(placementFile, p) }

// updatePlacement records what a client placed (client.Placed): a record
// whose shares it placed (added or rotated) is held by exactly those
// peers and its manifest's; a record of which it placed only manifest
// copies (for grantees) gains those peers. The file is written only if
// something changed.
func (w *Wallet) updatePlacement(placed map[string]client.Placement) error {
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

// forgetPlacement drops a removed record's placement.
func (w *Wallet) forgetPlacement(rid string) error {
	placementMu.Lock()
	defer placementMu.Unlock()
	p, err := w.readPlacement()
	if err != nil {
		return err
	}
	if _, ok := p.Records[rid]; !ok {
		return nil
	}
	delete(p.Records, rid)
	return w.writePlacement(p)
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
