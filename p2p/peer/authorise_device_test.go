package peer

import (
	"testing"

	"github.com/medwallet/medwallet/consent"
)

const deviceAge = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

// A device's feed is its owner's: the device hands its device entry and
// its grants over to a peer serving the owner (not to one serving no
// one it is about), reads the owner's feeds and those the owner's entries
// name, and stops reading once the owner revokes it; another owner's
// device reads nothing of S.
func TestAuthoriserDevices(t *testing.T) {
	w := newAuthWorld(t)
	for _, n := range []string{"D", "E", "M"} {
		w.ids[n] = signer(t, "device "+n)
	}
	enrol := func(owner, dev string) *consent.Entry {
		b, err := consent.NewDeviceBody(w.ids[owner], w.id(dev), deviceAge, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, err := consent.NewEntry(w.ids[dev], consent.Head{}, w.now, consent.KindDevice, b)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	dS, eT := enrol("S", "D"), enrol("T", "E")
	if err := w.a.MayWrite(pid(t, w.id("D")), dS); err != nil {
		t.Fatalf("S's device hands over its device entry: %v", err)
	}
	if err := w.a.MayWrite(pid(t, w.id("E")), eT); err == nil {
		t.Fatal("a device of a patient this peer does not serve was kept")
	}
	if _, err := w.ledger.Ingest(dS); err != nil {
		t.Fatal(err)
	}
	grant := w.next("D", consent.KindGrant, &consent.Grant{Grantee: w.id("C"), All: true, Scopes: []string{"patient/*.rs"},
		Purpose: "TREAT", NotBefore: w.now.Unix()})
	if err := w.a.MayWrite(pid(t, w.id("D")), grant); err != nil {
		t.Fatalf("S's device hands over its grant: %v", err)
	}
	if err := w.a.MayWrite(pid(t, w.id("G")), grant); err != nil {
		t.Fatalf("a party S names relays S's device's grant: %v", err)
	}
	for _, c := range []struct {
		remote, feed string
		want         bool
	}{
		{"D", "S", true}, {"D", "K:S", true}, {"D", "G", true}, {"D", "T", false}, {"D", "D", true},
		{"G", "D", true}, {"X", "D", false}, {"E", "S", false},
	} {
		if got := w.a.MayRead(pid(t, w.id(c.remote)), w.feed(c.feed)); got != c.want {
			t.Errorf("%s reads %s: %v, want %v", c.remote, c.feed, got, c.want)
		}
	}
	w.add("S", consent.KindDeviceRevoke, &consent.DeviceRevokeBody{Device: w.id("D"), Cut: 1})
	if w.a.MayRead(pid(t, w.id("D")), w.id("S")) {
		t.Fatal("a revoked device still reads its owner's feed")
	}
}
