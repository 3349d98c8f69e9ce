package wallet

// Finding serving peers: the wallet's own (after a restore from a key
// backup, whose network file may name no peer that serves it any more)
// and a contact's, from the rendezvous secret on the contact's card.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/locate"
	"github.com/medwallet/medwallet/p2p/netfile"
)

// locateAsk is how many reachable peers a wallet asks to locate a
// subject's servers; locateTimeout bounds the whole look-up.
const (
	locateAsk     = 3
	locateTimeout = 15 * time.Second
)

// Rendezvous is the wallet's rendezvous secret, derived from its identity
// key (consent.Rendezvous): a wallet restored from a key backup derives
// the same one.
func (w *Wallet) Rendezvous() ([32]byte, error) {
	id, err := w.Identity()
	if err != nil {
		return [32]byte{}, err
	}
	s, err := consent.NewKeySigner(id.Signing)
	if err != nil {
		return [32]byte{}, err
	}
	return consent.Rendezvous(s)
}

// SharedCard is the wallet's identity card with its rendezvous secret: the
// card to give a party that may find the wallet's serving peers and
// follow its feed (a clinician it grants to). The card the wallet
// publishes carries no secret.
func (w *Wallet) SharedCard() (consent.Card, error) {
	id, err := w.Identity()
	if err != nil {
		return consent.Card{}, err
	}
	r, err := w.Rendezvous()
	if err != nil {
		return consent.Card{}, err
	}
	return consent.NewSharedCard(id.Signing, w.card, r)
}

// LocateServers asks the reachable peers of c for the serving peers of
// the wallet itself.
func (w *Wallet) LocateServers(ctx context.Context, c *client.Client) ([]peer.AddrInfo, error) {
	r, err := w.Rendezvous()
	if err != nil {
		return nil, err
	}
	return locateOn(ctx, c, consent.ServeKey(w.ID(), r)), nil
}

// LocateContact asks the reachable peers of c for the serving peers of a
// contact, with the rendezvous secret on the contact's card; a card
// without one is refused.
func (w *Wallet) LocateContact(ctx context.Context, c *client.Client, nameOrID string) ([]peer.AddrInfo, error) {
	ct, err := w.Resolve(nameOrID)
	if err != nil {
		return nil, err
	}
	r, ok := ct.Card.RendezvousSecret()
	if !ok {
		return nil, &InputError{Field: FieldCard, Problem: Malformed,
			Err: fmt.Errorf("the card of %q carries no rendezvous secret: ask them for their shared card", ct.Name)}
	}
	return locateOn(ctx, c, consent.ServeKey(ct.Card.ID, r)), nil
}

// locateOn asks up to locateAsk reachable peers of c for the providers of
// key, at once, and merges their answers. A peer that does not speak
// locate, or refuses, adds nothing.
func locateOn(ctx context.Context, c *client.Client, key [32]byte) []peer.AddrInfo {
	ctx, cancel := context.WithTimeout(ctx, locateTimeout)
	defer cancel()
	ask := c.Reachable()
	if len(ask) > locateAsk {
		ask = ask[:locateAsk]
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	byID := map[peer.ID]*peer.AddrInfo{}
	var order []peer.ID
	for _, p := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found, err := locate.Locate(ctx, c.Host(), p, key)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, ai := range found {
				old, ok := byID[ai.ID]
				if !ok {
					a := peer.AddrInfo{ID: ai.ID}
					byID[ai.ID], old = &a, &a
					order = append(order, ai.ID)
				}
				for _, ad := range ai.Addrs {
					if !slices.ContainsFunc(old.Addrs, ad.Equal) {
						old.Addrs = append(old.Addrs, ad)
					}
				}
			}
		}()
	}
	wg.Wait()
	out := make([]peer.AddrInfo, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

// dialServing dials the network file's peers, then, if the wallet's own
// serving peers located through them are not all among them, dials those
// as well: a wallet restored from a key backup finds and pulls its feed
// from the peers that serve it, whatever its network file names.
func (w *Wallet) dialServing(ctx context.Context) (*client.Client, error) {
	c, err := w.Dial(ctx)
	if err != nil {
		return nil, err
	}
	servers, err := w.LocateServers(ctx, c)
	if err != nil || len(servers) == 0 {
		return c, nil
	}
	n, err := netfile.Read(w.NetworkPath())
	if err != nil {
		return c, nil
	}
	known := map[peer.ID]bool{}
	for _, p := range c.Reachable() {
		known[p] = true
	}
	addrs := slices.Clone(n.Peers)
	added := 0
	for _, ai := range servers {
		if known[ai.ID] {
			continue
		}
		full, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil {
			continue
		}
		for _, a := range full {
			addrs = append(addrs, a.String())
		}
		added++
	}
	if added == 0 {
		return c, nil
	}
	id, err := w.Identity()
	if err != nil {
		return c, nil
	}
	c2, err := client.Dial(ctx, id.Signing, addrs)
	if err != nil || c2.Require(1) != nil {
		if c2 != nil {
			c2.Close()
		}
		return c, nil
	}
	c.Close()
	return c2, nil
}
