package wallet

import (
	"bytes"
	"context"
	"errors"
	"github.com/medwallet/medwallet/internal/testutil"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

func newRecordWallet(t *testing.T) *Wallet {
	t.Helper()
	w, err := Init(memConfig(t), "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestRecordLifecycle(t *testing.T) {
	ctx := context.Background()
	data := testutil.SharedData(t)
	w := newRecordWallet(t)
	bundle, err := os.ReadFile(filepath.Join(data, "fhir-r4/synthea/Kermit_Trantow_f1a650a5-737e-4fd7-828e-03c3348b9524.json"))
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := os.ReadFile(filepath.Join(data, "pdf/ccda-McBee-advance-directive.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.AddRecord(ctx, bytes.NewReader(bundle), AddRecordOptions{Label: "Kermit's summary"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.AddRecord(ctx, bytes.NewReader(pdf), AddRecordOptions{Label: "directive", K: 2, N: 4})
	if err != nil {
		t.Fatal(err)
	}
	if a.Metadata.Format != vault.FormatFHIR || a.K != 3 || a.N != 5 || b.Metadata.Format != vault.FormatPDF || b.K != 2 || b.N != 4 {
		t.Fatalf("added %+v / %+v", a.Metadata, b.Metadata)
	}

	// Nothing readable on disk: no label, no patient name, no bundle text.
	err = filepath.WalkDir(w.Home(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, secret := range []string{"Kermit", "summary", "directive", "Observation", "%PDF"} {
			if bytes.Contains(content, []byte(secret)) {
				t.Errorf("%s holds %q in plaintext", p, secret)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	list, err := w.ListRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d records listed", len(list))
	}
	for _, r := range list {
		if r.ID == a.ID {
			if r.Metadata.Label != "Kermit's summary" || r.Metadata.FHIR == nil || len(r.Metadata.ResourceTypes()) < 3 {
				t.Fatalf("listed metadata %+v", r.Metadata)
			}
		}
		if r.ManifestHash.IsZero() {
			t.Fatal("no manifest hash")
		}
	}

	// Get by a prefix of the ID.
	var out bytes.Buffer
	if _, err := w.GetRecord(ctx, a.ID[:8], &out, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), bundle) {
		t.Fatal("record changed")
	}

	// The record key opens the reassembled ciphertext (what a grantee gets).
	key, err := w.RecordKey(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.manifest(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	store, _, _ := w.storeFor(context.Background(), RecordOptions{}, nil)
	var ct bytes.Buffer
	if err := vault.Reassemble(ctx, m, store, &ct); err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(&ct, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, bundle) {
		t.Fatal("record key does not open the record")
	}

	h, err := w.VerifyRecord(ctx, a.ID, RecordOptions{})
	if err != nil || h.Status != HealthOK || h.Healthy != 5 {
		t.Fatalf("verify: %+v %v", h, err)
	}

	// Damage one share, lose another: degraded, still readable.
	shares := filepath.Join(w.Home(), sharesDir)
	p0 := filepath.Join(shares, a.Shares[0].String()[:2], a.Shares[0].String())
	raw, _ := os.ReadFile(p0)
	raw[len(raw)/2] ^= 1
	if err := os.WriteFile(p0, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(shares, a.Shares[3].String()[:2], a.Shares[3].String()))
	h, err = w.VerifyRecord(ctx, a.ID, RecordOptions{})
	if err != nil || h.Status != HealthDegraded || h.Healthy != 3 ||
		h.Shares[0].Status != vault.StatusCorrupt || h.Shares[3].Status != vault.StatusMissing {
		t.Fatalf("verify after damage: %+v %v", h, err)
	}
	out.Reset()
	if _, err := w.GetRecord(ctx, a.ID, &out, RecordOptions{}); err != nil || !bytes.Equal(out.Bytes(), bundle) {
		t.Fatalf("get after damage: %v", err)
	}
	// One more lost: the record cannot be rebuilt, and says so.
	os.Remove(filepath.Join(shares, a.Shares[4].String()[:2], a.Shares[4].String()))
	h, err = w.VerifyRecord(ctx, a.ID, RecordOptions{})
	if !errors.Is(err, ErrRecordLost) || !errors.Is(err, ErrVerify) || h.Status != HealthLost {
		t.Fatalf("verify with 3 of 5 gone: %+v %v", h, err)
	}
	if _, err := w.GetRecord(ctx, a.ID, io.Discard, RecordOptions{}); !errors.Is(err, vault.ErrNotEnoughShares) {
		t.Fatalf("get with 3 of 5 gone: %v", err)
	}

	// Remove.
	if _, err := w.RemoveRecord(ctx, b.ID, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Record(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed record still there: %v", err)
	}
	for _, id := range b.Shares {
		if _, err := os.Stat(filepath.Join(shares, id.String()[:2], id.String())); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("share %s left behind", id)
		}
	}
}

func TestRecordErrors(t *testing.T) {
	ctx := context.Background()
	w := newRecordWallet(t)
	for _, kn := range [][2]int{{3, 3}, {5, 2}, {-1, 4}, {2, 300}} {
		_, err := w.AddRecord(ctx, strings.NewReader("x"), AddRecordOptions{K: kn[0], N: kn[1]})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("k=%d n=%d: %v, want ErrInvalid", kn[0], kn[1], err)
		}
	}
	if ids, _ := w.recordIDs(); len(ids) != 0 {
		t.Fatal("a failed add left a manifest behind")
	}
	for ref, want := range map[string]error{
		"abcd":                             ErrNotFound,
		"0123456789abcdef0123456789abcdef": ErrNotFound,
		"ab":                               ErrInvalid,
		"xyz!":                             ErrInvalid,
		"../../etc/passwd":                 ErrInvalid,
	} {
		if _, err := w.GetRecord(ctx, ref, io.Discard, RecordOptions{}); !errors.Is(err, want) {
			t.Errorf("get %q: %v, want %v", ref, err, want)
		}
	}
	// A manifest signed by someone else is refused, not listed.
	other := newRecordWallet(t)
	info, err := other.AddRecord(ctx, strings.NewReader("hello"), AddRecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(w.recordsPath(), 0o700); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(other.manifestPath(info.ID))
	os.WriteFile(w.manifestPath(info.ID), raw, 0o600)
	if _, err := w.ListRecords(ctx); !errors.Is(err, ErrVerify) {
		t.Fatalf("foreign manifest: %v", err)
	}
}

func TestRecordPluggableStore(t *testing.T) {
	ctx := context.Background()
	w := newRecordWallet(t)
	store := memstore.New()
	opts := RecordOptions{Store: store}
	info, err := w.AddRecord(ctx, strings.NewReader(`{"resourceType":"Patient","id":"p"}`), AddRecordOptions{RecordOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	if store.Len() != 5 {
		t.Fatalf("%d shares in the plugged store", store.Len())
	}
	if _, err := os.Stat(filepath.Join(w.Home(), sharesDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the local store was used too")
	}
	var out bytes.Buffer
	if _, err := w.GetRecord(ctx, info.ID, &out, opts); err != nil || out.String() != `{"resourceType":"Patient","id":"p"}` {
		t.Fatalf("get: %v", err)
	}
}
