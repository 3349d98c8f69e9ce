package client

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/p2p/netfile"
)

func TestSpreadOverDomains(t *testing.T) {
	a1, a2, b1, c1, x := peer.ID("a1"), peer.ID("a2"), peer.ID("b1"), peer.ID("c1"), peer.ID("x")
	c := &Client{}
	c.SetDomains(map[peer.ID]netfile.Domain{
		a1: {Site: "a", Operator: "op1"}, a2: {Site: "a", Operator: "op2"},
		b1: {Site: "b", Operator: "op1"}, c1: {Site: "c", Operator: "op3"},
	})
	ranked := []peer.ID{a1, a2, b1, x, c1}
	used := map[peer.ID]bool{}
	var got []peer.ID
	for {
		p, ok := c.spread(ranked, used)
		if !ok {
			break
		}
		used[p] = true
		got = append(got, p)
	}
	// a1 first (rank); then x (a domain of its own, unused), not a2
	// (site a used) nor b1 (operator op1 used); then c1; then b1 (new
	// site, used operator) before a2 (used site).
	want := []peer.ID{a1, x, c1, b1, a2}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Without domains the rendezvous order stands.
	plain := &Client{}
	if p, _ := plain.spread(ranked, map[peer.ID]bool{a1: true}); p != a2 {
		t.Fatalf("without domains: %v", p)
	}
}
