package wallet

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// A wallet restored from a key backup writes the same first ledger entry as
// the original, not an equivocating one.
func TestIdentityEntryDeterministic(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	if _, err := cw.alice.AnchorRecord(ctx, cw.record.ID); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if err := cw.alice.ExportKey(&backup, "backup pass"); err != nil {
		t.Fatal(err)
	}
	cfg := memConfig(t)
	cfg.Now = func() time.Time { return cw.now.Add(48 * time.Hour) }
	restored, err := ImportKey(cfg, backup.Bytes(), "backup pass")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restored.ImportLedger(bytes.NewReader(nil)); err == nil {
		t.Fatal("empty file imported")
	}
	a, _ := cw.alice.LedgerEntries()
	r, err := restored.LedgerEntries()
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 0 {
		t.Fatalf("restored wallet has %d entries before writing", len(r))
	}
	// Writing makes entry 1 appear: the same bytes as the original's.
	var out bytes.Buffer
	if _, err := cw.alice.ExportLedger(&out); err != nil {
		t.Fatal(err)
	}
	l, _, err := restored.openLedger(true)
	if err != nil {
		t.Fatal(err)
	}
	mine := l.Entries()
	l.Close()
	if len(mine) != 1 || mine[0].Hash() != a[0].Hash() {
		t.Fatal("the restored wallet's identity entry differs from the original's")
	}
	// And the original's ledger imports cleanly on top of it.
	res, err := restored.ImportLedger(&out)
	if err != nil || res.Equivocations != 0 || res.Known != 1 || res.Added != len(a)-1 {
		t.Fatalf("import: %+v %v", res, err)
	}
}
