package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/vault"
)

func TestCapAddress(t *testing.T) {
	a, b := newRecordWallet(t).ID(), newRecordWallet(t).ID()
	if again := CapAddress(a); again != CapAddress(a) || again == CapAddress(b) || again == a {
		t.Fatal("capability addresses are not per repairer, stable and pseudonymous")
	}
	if _, err := consent.ParseID(string(CapAddress(a))); err != nil {
		t.Fatal(err)
	}
}

// The capability written beside the manifest is the owner's, holds no
// key, and is written again from the manifest when it is missing; a
// removed record takes it along.
func TestRepairCapFile(t *testing.T) {
	ctx := context.Background()
	w := newRecordWallet(t)
	info, err := w.AddRecord(ctx, bytes.NewReader([]byte(`{"resourceType":"Patient","name":[{"text":"MW-MARKER-cap"}]}`)), AddRecordOptions{Label: "label-cap"})
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(w.repairCapPath(info.ID))
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.loadManifest(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{m.Key, "label-cap", "MW-MARKER-cap"} {
		if bytes.Contains(env, []byte(s)) {
			t.Fatalf("the capability file holds %q", s)
		}
	}
	id, _ := w.Identity()
	c, err := vault.ParseRepairCap(env, id.Signing.Public().(ed25519.PublicKey))
	if err != nil || c.RecordID != m.RecordID || c.Holders != nil {
		t.Fatalf("capability: %+v, %v", c, err)
	}
	os.Remove(w.repairCapPath(info.ID))
	again, err := w.repairCap(info.ID)
	if err != nil || !bytes.Equal(again, env) {
		t.Fatalf("rewritten capability differs: %v", err)
	}
	if _, err := w.RemoveRecord(ctx, info.ID, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.repairCapPath(info.ID)); !os.IsNotExist(err) {
		t.Fatalf("the capability outlived its record: %v", err)
	}
}

func TestPlacementOrder(t *testing.T) {
	ids := make([]peer.ID, 5)
	for i := range ids {
		w := newRecordWallet(t)
		p, err := peer.Decode(string(w.ID()))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p
	}
	slices.Sort(ids)
	serving := []consent.ID{consent.ID(ids[3].String()), consent.ID(ids[1].String())}
	used := map[peer.ID]bool{ids[1]: true, ids[2]: true}
	got := placementOrder(ids, serving, used)
	if want := []peer.ID{ids[3], ids[0], ids[4]}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want serving peers first, used ones left out: %v", got, want)
	}
}

// One repair cycle in process (for the race detector; the process tests
// are cmd/medwallet/testdata/repair_*.txtar): a share lost from its
// holder's store is rebuilt on another peer, and the record reads back.
func TestRepairInProcess(t *testing.T) {
	ctx, dn := newDevnet(t, devnet.Options{Peers: 5, SyncInterval: time.Second})
	alice := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	rep := rotateWallet(t, dn.NetworkPath(), "Repairer", "peer")
	plain := bytes.Repeat([]byte("MW-MARKER-inproc "), 40_000)
	info, err := alice.AddRecord(ctx, bytes.NewReader(plain), AddRecordOptions{K: 2, N: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.GrantRepair(ctx, RepairGrantOptions{Repairer: string(rep.ID())}); err != nil {
		t.Fatal(err)
	}
	lost := info.Shares[1]
	for _, p := range dn.Peers {
		if ok, _ := p.Store.Has(ctx, lost); ok {
			if err := p.Store.Delete(ctx, lost); err != nil {
				t.Fatal(err)
			}
		}
	}
	report, err := rep.Repair(ctx, RepairOptions{})
	if err != nil {
		t.Fatalf("%v: %+v", err, report)
	}
	if len(report.Records) != 1 {
		t.Fatalf("report: %+v", report)
	}
	r := report.Records[0]
	if r.HealthyBefore != 2 || r.Rebuilt != 1 || r.HealthyAfter != 3 || r.Shares[1].Placed == "" || r.BytesFetched == 0 {
		t.Fatalf("record report: %+v", r)
	}
	var out bytes.Buffer
	if _, err := alice.GetRecord(ctx, info.ID, &out, RecordOptions{}); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("get after the repair: %v", err)
	}
	audits, err := alice.AuditRecords(ctx, nil, 4)
	if err != nil || audits[0].Healthy != 3 {
		t.Fatalf("owner's audit: %+v %v", audits, err)
	}
}
