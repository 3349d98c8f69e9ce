package wire

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestRemoteRates(t *testing.T) {
	r := NewRemoteRates(0.001, 3) // a burst of 3, then about nothing
	a, b := peer.ID("a"), peer.ID("b")
	for i := range 3 {
		if !r.Allow(a) {
			t.Fatalf("request %d of a's burst refused", i+1)
		}
	}
	if r.Allow(a) {
		t.Fatal("a's fourth request allowed")
	}
	if !r.Allow(b) {
		t.Fatal("b's first request refused: buckets are per remote")
	}
	// A full table starts again: a forgotten remote gets a new burst.
	for i := range MaxRateRemotes {
		r.Allow(peer.ID(fmt.Sprint("p", i)))
	}
	if !r.Allow(a) {
		t.Fatal("a still refused after the table started again")
	}
	if len(r.buckets) > MaxRateRemotes {
		t.Fatalf("%d buckets, at most %d", len(r.buckets), MaxRateRemotes)
	}
}
