//go:build linux

package netbed_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/netbed"
)

// TestClinicBehindNAT: public peers on the internet, a home peer behind a
// NAT that only dials out, a patient with a public address and a
// clinician behind the clinic's NAT. The clinician imports what the
// patient granted, byte-identical, and is denied after the revocation.
func TestClinicBehindNAT(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := w.bed
	home, clinic := b.NAT("home1", netbed.Cone), b.NAT("clinic", netbed.Cone)
	relay := w.newPeer(b.Public("relay"), "relay")
	pub := w.newPeer(b.Public("pub"), "pub")
	pub.args = append(pub.args, "--bootstrap", relay.direct()[0])
	h1 := w.newPeer(b.Behind(home, "h1"), "h1", "--bootstrap", relay.direct()[0], "--bootstrap", pub.direct()[0])
	for _, p := range []*mwPeer{relay, pub, h1} {
		w.start(p)
	}
	for _, p := range []*mwPeer{relay, pub, h1} {
		w.waitUp(p)
	}
	alice := w.newUser(ctx, b.Public("alice"), "Alice", "patient")
	bob := w.newUser(ctx, b.Behind(clinic, "bob"), "Bob", "clinician")
	n := network{Peers: append(relay.direct(), pub.direct()...)}
	w.setNetwork(alice, n)
	w.setNetwork(bob, n)
	w.exchangeCards(ctx, alice, bob)

	data := make([]byte, 1<<20)
	rand.Read(data)
	file := filepath.Join(w.dir, "scan.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := w.mustRun(ctx, alice, "record", "add", file, "--k", "1", "--n", "2")
	grant := w.mustRun(ctx, alice, "grant", "--to", "Bob", "--record", rec, "--scope", "patient/*.rs", "--purpose", "TREAT")
	out := filepath.Join(w.dir, "bob-import")
	w.mustRun(ctx, bob, "import", grant, "--out", out)
	got, err := os.ReadFile(filepath.Join(out, rec+".bin"))
	if err != nil {
		entries, _ := os.ReadDir(out)
		t.Fatalf("import: %v (wrote %v)", err, entries)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the imported record differs from the patient's")
	}
	w.mustRun(ctx, alice, "revoke", grant)
	_, err = w.run(ctx, bob, "import", grant, "--out", filepath.Join(w.dir, "bob-late"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 4 {
		t.Fatalf("import after the revocation: %v, want exit 4 (denied)", err)
	}
}
