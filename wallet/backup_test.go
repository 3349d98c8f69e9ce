package wallet

import (
	"bytes"
	"testing"
	"time"

	"github.com/medwallet/medwallet/p2p/devnet"
)

// TestBackupSync: a sync pushes the local state; another device of the
// identity gets it with its first sync; a contact removed and synced on
// one device does not come back there, and the other device, which saw
// the backup before, keeps what it has (merges add, never remove).
func TestBackupSync(t *testing.T) {
	ctx, dn := newDevnet(t, devnet.Options{Peers: 2, SyncInterval: time.Second})
	net := dn.NetworkPath()
	alice := guardianWallet(t, net, "Alice", 0)
	bob := guardianWallet(t, net, "Bob", 0)
	carol := guardianWallet(t, net, "Carol", 0)
	for _, c := range []*Wallet{bob, carol} {
		if _, err := alice.AddContact(c.Card().Name, c.Card().String()); err != nil {
			t.Fatal(err)
		}
	}
	res, err := alice.Sync(ctx)
	if err != nil || !res.Backup.Pushed {
		t.Fatalf("first sync: %+v, %v", res.Backup, err)
	}
	if res, err := alice.Sync(ctx); err != nil || res.Backup.Pushed || res.Backup.Restored != 0 {
		t.Fatalf("a sync with nothing changed: %+v, %v", res.Backup, err)
	}

	var key bytes.Buffer
	if err := alice.ExportKey(&key, "pass"); err != nil {
		t.Fatal(err)
	}
	cfg := memConfig(t)
	cfg.Network, cfg.Witnesses = net, -1
	other, err := ImportKey(cfg, key.Bytes(), "pass")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := other.Sync(ctx); err != nil || res.Backup.Restored != 2 {
		t.Fatalf("the other device's first sync: %+v, %v", res.Backup, err)
	}
	if c, err := other.Resolve("Carol"); err != nil || c.Card.ID != carol.ID() {
		t.Fatalf("Carol on the other device: %v", err)
	}

	if err := alice.RemoveContact("Carol"); err != nil {
		t.Fatal(err)
	}
	if res, err := alice.Sync(ctx); err != nil || !res.Backup.Pushed || res.Backup.Restored != 0 {
		t.Fatalf("the sync after a removal: %+v, %v", res.Backup, err)
	}
	if _, err := alice.Resolve("Carol"); err == nil {
		t.Fatal("a removed contact came back from the backup")
	}
	if _, err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Resolve("Carol"); err != nil {
		t.Fatalf("a merge removed a contact: %v", err)
	}
}
