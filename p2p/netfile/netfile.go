// Package netfile is the network file, the JSON file that tells a light
// client (the CLI) which peers to dial, and the parsing of the peer
// addresses it lists. It sits below both the client and the peer daemon, so
// that neither links the other to share them.
//
// The file, version 1:
//
//	{
//	  "version": 1,
//	  "peers": ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...", ...],
//	  "relays": ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...", ...],
//	  "domains": {"12D3KooW...": {"site": "clinic-a", "operator": "acme"}, ...}
//	}
//
// Every peer is a full multiaddr ending in /p2p/ID; several addresses of
// one peer may be listed. A peer behind NAT is listed at its relay
// address, RELAY-ADDR/p2p/RELAY-ID/p2p-circuit/p2p/ID. "relays", which may
// be absent, are the peers of the network that run the circuit relay
// service: full multiaddrs, never themselves relay addresses. A peer
// reading the file as its known peers' (medwallet peer --known-peers)
// reserves a slot on them when it is not publicly reachable. "domains",
// which may be absent, names the failure domains of peers by peer ID: the
// site a peer runs at and the operator that runs it (each at most 64
// characters); a wallet spreads a record's shares over them (Domain). A
// file with another version, any address without a peer ID, or a domain
// keyed by something other than a peer ID is refused.
package netfile

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/medwallet/medwallet/internal/fsutil"
)

// Name is the network file's name in a wallet's or a devnet's directory.
const Name = "network.json"

// Version is the format version this package reads and writes.
const Version = 1

// Network is the content of a network file.
type Network struct {
	Version int      `json:"version"`
	Peers   []string `json:"peers"`
	// Relays are the peers offering the circuit relay service.
	Relays []string `json:"relays,omitempty"`
	// Domains are the peers' failure domains, by peer ID.
	Domains map[string]Domain `json:"domains,omitempty"`
}

// Domain is a peer's failure domain: where it runs and who runs it.
// Empty fields are unknown: such a peer shares that domain with no other.
type Domain struct {
	Site     string `json:"site,omitempty"`
	Operator string `json:"operator,omitempty"`
}

// MaxDomainName bounds a site or operator name.
const MaxDomainName = 64

// PeerDomains returns the domains of n by peer ID.
func (n Network) PeerDomains() (map[peer.ID]Domain, error) {
	out := make(map[peer.ID]Domain, len(n.Domains))
	for k, d := range n.Domains {
		id, err := peer.Decode(k)
		if err != nil {
			return nil, fmt.Errorf("domains: %q is not a peer ID", k)
		}
		if len(d.Site) > MaxDomainName || len(d.Operator) > MaxDomainName {
			return nil, fmt.Errorf("domains: peer %s: a site or operator name is longer than %d characters", k, MaxDomainName)
		}
		out[id] = d
	}
	return out, nil
}

// Read reads and checks a network file. A missing file is an error
// wrapping os.ErrNotExist.
func Read(path string) (Network, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Network{}, err
	}
	var n Network
	if err := json.Unmarshal(b, &n); err != nil || n.Version != Version {
		return Network{}, fmt.Errorf("%s is not a medwallet network file", path)
	}
	if _, err := ParseAddrs(n.Peers); err != nil {
		return Network{}, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := ParseRelays(n.Relays); err != nil {
		return Network{}, fmt.Errorf("%s: relays: %w", path, err)
	}
	if _, err := n.PeerDomains(); err != nil {
		return Network{}, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// Write writes a network file (mode 0600) atomically: a reader sees the old
// file or the new one, never a part, even after a crash.
func Write(path string, n Network) error {
	n.Version = Version
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// ParseAddrs parses full peer multiaddrs (with /p2p/ID).
func ParseAddrs(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad multiaddr %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("multiaddr %q has no /p2p/ID: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// ParseRelays parses the full multiaddrs of relays (with /p2p/ID), several
// addresses of one relay merged into one AddrInfo. A relay address
// (/p2p-circuit) is refused: a relay must be reachable directly.
func ParseRelays(addrs []string) ([]peer.AddrInfo, error) {
	ais, err := ParseAddrs(addrs)
	if err != nil {
		return nil, err
	}
	var out []peer.AddrInfo
	at := map[peer.ID]int{}
	for i, ai := range ais {
		for _, a := range ai.Addrs {
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
				return nil, fmt.Errorf("relay %q is itself behind a relay", addrs[i])
			}
		}
		if j, ok := at[ai.ID]; ok {
			out[j].Addrs = append(out[j].Addrs, ai.Addrs...)
			continue
		}
		at[ai.ID] = len(out)
		out = append(out, ai)
	}
	return out, nil
}
