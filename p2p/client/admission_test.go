package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
)

// A peer that refuses a share (here: its allowlist does not name the
// patient) is passed over: the share goes to another peer, and the
// record is whole. With no peer left to take it, the error says why.
func TestSharePlacedElsewhereWhenRefused(t *testing.T) {
	ctx := context.Background()
	d := startDevnet(t, 6)
	patient := newActor(t, d)
	if err := patient.c.Require(6); err != nil {
		t.Fatal(err)
	}
	closed := store.Limits{Allowlist: map[consent.ID]bool{}}
	d.Peers[0].Store.SetLimits(closed)
	refusing := d.Peers[0].ID()

	data := make([]byte, 1<<20+7)
	rand.Read(data)
	seal := func() (*vault.Manifest, error) {
		return vault.Seal(ctx, bytes.NewReader(data), patient.c.ShareSink(), vault.SealOptions{
			Params: vault.Params{K: 3, N: 5, StripeSize: 1 << 20}, Owner: patient.key.Public().(ed25519.PublicKey)})
	}
	m, err := seal()
	if err != nil {
		t.Fatalf("with one peer refusing and one to spare: %v", err)
	}
	for _, s := range m.Shares {
		hs := patient.c.Holders(ctx, s.ID)
		if len(hs) != 1 || consent.ID(hs[0].String()) == refusing {
			t.Fatalf("share held by %v (the refusing peer is %s)", hs, refusing.Short())
		}
	}
	if u := d.Peers[0].Store.Usage(); u.Total.Objects() != 0 {
		t.Fatalf("the refusing peer stored %+v", u.Total)
	}
	// Manifests go to the next peer too.
	n, err := patient.c.PutManifest(ctx, m.RecordID.String(), patient.signer.ID(), []byte("envelope"), 6)
	if err != nil || n != 5 {
		t.Fatalf("manifest on %d peers, %v; want the 5 that take it", n, err)
	}

	// Two peers refuse and there is no spare: nothing is stored, and the
	// refusal is in the error.
	d.Peers[1].Store.SetLimits(store.Limits{MinFree: 1 << 40})
	_, err = seal()
	if !errors.Is(err, store.ErrNotAllowed) && !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("got %v, want a refusal", err)
	}
	total := 0
	for _, p := range d.Peers {
		total += p.Store.Usage().Total.Shares
	}
	if total != len(m.Shares) {
		t.Fatalf("%d shares on the peers after the failed add, want the first record's %d", total, len(m.Shares))
	}
}
