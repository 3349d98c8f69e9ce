package client

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/p2p/netfile"
)

// SetDomains tells the client the peers' failure domains (the network
// file's "domains"): a record's shares then go, in the record's
// rendezvous order, first to peers whose site and operator hold no share
// of the record yet, then to peers whose site is new, then whose operator
// is new, and only then to any peer left. A peer the map does not name
// has the domain it announces in its identify agent version, if any
// (netfile.AgentDomain); a peer without a known site or operator is a
// domain of its own.
func (c *Client) SetDomains(d map[peer.ID]netfile.Domain) {
	c.placedMu.Lock()
	defer c.placedMu.Unlock()
	c.domains = d
}

// spread picks, among the ranked peers not in used, the first whose
// domains are the least used by the peers in used.
func (c *Client) spread(ranked []peer.ID, used map[peer.ID]bool) (peer.ID, bool) {
	c.placedMu.Lock()
	doms := map[peer.ID]netfile.Domain{}
	for p, d := range c.domains {
		doms[p] = d
	}
	c.placedMu.Unlock()
	if c.h != nil {
		for _, p := range ranked {
			if _, ok := doms[p]; ok {
				continue
			}
			if v, err := c.h.Peerstore().Get(p, "AgentVersion"); err == nil {
				if a, ok := v.(string); ok {
					doms[p] = netfile.AgentDomain(a)
				}
			}
		}
	}
	sites, ops := map[string]bool{}, map[string]bool{}
	for p := range used {
		if d := doms[p]; d.Site != "" {
			sites[d.Site] = true
		}
		if d := doms[p]; d.Operator != "" {
			ops[d.Operator] = true
		}
	}
	best, score := peer.ID(""), 4
	for _, p := range ranked {
		if used[p] {
			continue
		}
		d, s := doms[p], 0
		if d.Site != "" && sites[d.Site] {
			s += 2
		}
		if d.Operator != "" && ops[d.Operator] {
			s++
		}
		if s < score {
			best, score = p, s
		}
		if s == 0 {
			break
		}
	}
	return best, best != ""
}
