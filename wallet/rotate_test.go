package wallet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/vault"
)

// startDevnet starts four peers in this process for one test, which it
// skips under -short, and returns a context bounding the test and the
// network file's path; the peers stop when the test ends.
func startDevnet(t *testing.T) (context.Context, string) {
	t.Helper()
	ctx, dn := newDevnet(t, devnet.Options{Peers: 4, SyncInterval: time.Second})
	return ctx, dn.NetworkPath()
}

// newDevnet starts a devnet of o in this process for one test, which it
// skips under -short, in a directory of the test's, and returns it with a
// context bounding the test; the peers stop when the test ends.
func newDevnet(t *testing.T, o devnet.Options) (context.Context, *devnet.Devnet) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	o.Dir = t.TempDir()
	dn, err := devnet.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dn.Close() })
	return ctx, dn
}

// rotateWallet opens a wallet on the devnet's network file.

func rotateWallet(t *testing.T, netPath, name, role string) *Wallet {
	t.Helper()
	cfg := memConfig(t)
	cfg.Network = netPath
	w, err := Init(cfg, name, role)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// bobsKey unwraps the record key that grant g wrapped for bob.
func bobsKey(t *testing.T, alice, bob *Wallet, gid consent.Hash, record string) *age.X25519Identity {
	t.Helper()
	var wrapped []byte
	es, err := alice.LedgerEntries()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Kind == consent.KindGrant && e.Hash() == gid {
			b, _ := e.DecodedBody()
			for _, k := range b.(*consent.Grant).Keys {
				if k.Record == record {
					wrapped = k.Key
				}
			}
		}
	}
	id, err := bob.Identity()
	if err != nil {
		t.Fatal(err)
	}
	key, err := unwrapKey(wrapped, id.Age)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestRotateAfterRevoke(t *testing.T) {
	ctx, netPath := startDevnet(t)
	alice := rotateWallet(t, netPath, "Alice", "patient")
	bob := rotateWallet(t, netPath, "Dr Bob", "clinician")
	carol := rotateWallet(t, netPath, "Dr Carol", "clinician")
	for _, c := range []struct {
		name string
		w    *Wallet
	}{{"Bob", bob}, {"Carol", carol}} {
		if _, err := alice.AddContact(c.name, c.w.Card().String()); err != nil {
			t.Fatal(err)
		}
	}
	plain := bytes.Repeat([]byte(`{"resourceType":"Observation","id":"rot"}`+"\n"), 5000)
	rec, err := alice.AddRecord(ctx, bytes.NewReader(plain), AddRecordOptions{Label: "labs"})
	if err != nil {
		t.Fatal(err)
	}
	oldM, err := alice.loadManifest(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	grant := func(to string) GrantInfo {
		g, err := alice.Grant(ctx, GrantOptions{To: to, Records: []string{rec.ID}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", Expires: "30d"})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	gb, gc := grant("Bob"), grant("Carol")
	bobOld := bobsKey(t, alice, bob, gb.ID, rec.ID)
	if bobOld.String() != oldM.Key {
		t.Fatal("bob's wrapped key is not the record key")
	}
	// Bob imports before the revocation.
	if got, err := bob.Import(ctx, ImportOptions{Grant: gb.ID.String(), OutDir: filepath.Join(t.TempDir(), "bob")}); err != nil || len(got) != 1 {
		t.Fatalf("bob's import: %v %v", got, err)
	}

	// Rotate without revoking first is refused.
	if _, err := alice.Rotate(ctx, gb.ID.String()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rotate of an active grant: %v", err)
	}
	if _, err := alice.Revoke(ctx, gb.ID.String()); err != nil {
		t.Fatal(err)
	}
	res, err := alice.Rotate(ctx, gb.ID.String()[:10])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Records[0].ID != rec.ID || res.Records[0].OldSharesKept ||
		res.Records[0].OldManifest == res.Records[0].NewManifest || len(res.Replaced) != 1 ||
		res.Replaced[0].Old.ID != gc.ID || res.Replaced[0].Old.Status != GrantRevoked ||
		res.Replaced[0].New.Grantee != carol.ID() || res.Replaced[0].New.Status != GrantActive || len(res.Stale) != 0 {
		t.Fatalf("rotate result = %+v", res)
	}
	ng := res.Replaced[0].New
	if ng.Purpose.Code != "TREAT" || strings.Join(ng.Scopes, ",") != strings.Join(gc.Scopes, ",") ||
		!ng.Expires.Equal(gc.Expires) || len(ng.Records) != 1 || ng.Records[0] != rec.ID || ng.WrappedKeys != 1 {
		t.Fatalf("replacement grant = %+v, old %+v", ng, gc)
	}

	// The new manifest: same ID, new key, new shares, anchored.
	newM, err := alice.loadManifest(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newM.RecordID != oldM.RecordID || newM.Key == oldM.Key || newM.Key == bobOld.String() || newM.Metadata.Label != "labs" {
		t.Fatal("the record was not re-keyed under its own ID")
	}
	if newM.Shares[0].ID == oldM.Shares[0].ID {
		t.Fatal("the shares were not replaced")
	}
	es, _ := alice.LedgerEntries()
	var anchored bool
	for _, e := range es {
		if e.Kind == consent.KindAnchor {
			b, _ := e.DecodedBody()
			anchored = b.(*consent.AnchorBody).Manifest == consent.Hash(res.Records[0].NewManifest)
		}
	}
	if !anchored {
		t.Fatal("the last anchor is not the new manifest")
	}

	// Bob's saved key opens none of the new ciphertext; the new key does.
	c, err := alice.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	store := c.RecordStore(client.Access{Owner: alice.ID(), Record: rec.ID, Scope: ownerScope, Purpose: ownerPurpose})
	var ct bytes.Buffer
	if err := vault.Reassemble(ctx, newM, store, &ct); err != nil {
		t.Fatal(err)
	}
	if _, err := age.Decrypt(bytes.NewReader(ct.Bytes()), bobOld); err == nil {
		t.Fatal("bob's old key decrypts the new ciphertext")
	}
	newKey, _ := newM.Identity()
	if _, err := age.Decrypt(bytes.NewReader(ct.Bytes()), newKey); err != nil {
		t.Fatalf("the new key does not open the new ciphertext: %v", err)
	}
	// Each new share, taken alone, holds no age stream bob's key opens.
	for i, s := range newM.Shares {
		rc, err := store.Get(ctx, s.ID)
		if err != nil {
			t.Fatalf("new share %d: %v", i, err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		if _, err := age.Decrypt(bytes.NewReader(b.Bytes()[vault.ShareHeaderSize:]), bobOld); err == nil {
			t.Fatalf("bob's old key opens new share %d", i)
		}
	}
	// The old shares are gone from every peer.
	for i, s := range oldM.Shares {
		if ok, _ := store.Has(ctx, s.ID); ok {
			t.Fatalf("old share %d is still stored", i)
		}
	}

	// Carol imports byte-identical under the replacement grant; her old
	// grant is revoked; bob is denied.
	dir := filepath.Join(t.TempDir(), "carol")
	got, err := carol.Import(ctx, ImportOptions{Grant: ng.ID.String(), OutDir: dir})
	if err != nil || len(got) != 1 {
		t.Fatalf("carol's import: %v %v", got, err)
	}
	if b, err := os.ReadFile(got[0].File); err != nil || !bytes.Equal(b, plain) {
		t.Fatalf("carol's copy differs: %v", err)
	}
	if _, err := carol.Import(ctx, ImportOptions{Grant: gc.ID.String(), OutDir: filepath.Join(t.TempDir(), "carol-old")}); err == nil {
		t.Fatal("carol's old grant still imports")
	}
	if _, err := bob.Import(ctx, ImportOptions{Grant: gb.ID.String(), OutDir: filepath.Join(t.TempDir(), "bob-late")}); err == nil {
		t.Fatal("bob still imports")
	}

	// Alice still gets the record, and it verifies.
	var out bytes.Buffer
	if _, err := alice.GetRecord(ctx, rec.ID, &out, RecordOptions{}); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("alice's record: %v", err)
	}
	if h, err := alice.VerifyRecord(ctx, rec.ID, RecordOptions{}); err != nil || h.Status != HealthOK {
		t.Fatalf("verify: %+v %v", h, err)
	}
	// Rotating again re-keys again (a retry after a partial failure).
	if _, err := alice.Rotate(ctx, gb.ID.String()); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := alice.GetRecord(ctx, rec.ID, &out, RecordOptions{}); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("alice's record after a second rotation: %v", err)
	}
}

// TestRotateLocal rotates on the local share store: the record keeps its
// ID and bytes, the old shares are deleted, the old key opens nothing new,
// and a failing store leaves the record as it was.
func TestRotateLocal(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	var plain bytes.Buffer
	if _, err := alice.GetRecord(ctx, cw.record.ID, &plain, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	g, err := alice.Grant(ctx, GrantOptions{To: "Bob", All: true, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
	if err != nil {
		t.Fatal(err)
	}
	bobOld := bobsKey(t, alice, bob, g.ID, cw.record.ID)
	oldM, _ := alice.loadManifest(cw.record.ID)
	if _, err := alice.Revoke(ctx, g.ID.String()); err != nil {
		t.Fatal(err)
	}
	// A failure while re-encrypting keeps the old record intact and
	// leaves no new share behind: hide 3 of the 5 old shares so that the
	// old record cannot be read, rotate, then put them back.
	shares := filepath.Join(alice.cfg.Home, sharesDir)
	files := func() []string {
		var out []string
		filepath.WalkDir(shares, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	before := files()
	if len(before) != 5 {
		t.Fatalf("%d share files", len(before))
	}
	hidden := t.TempDir()
	for i, p := range before[:3] {
		if err := os.Rename(p, filepath.Join(hidden, strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Rotate(ctx, g.ID.String()); err == nil {
		t.Fatal("rotation of an unreadable record succeeded")
	}
	if n := len(files()); n != 2 {
		t.Fatalf("a failed rotation left %d share files, want the 2 old ones", n)
	}
	if m, err := alice.loadManifest(cw.record.ID); err != nil || m.Key != oldM.Key {
		t.Fatalf("a failed rotation changed the record: %v", err)
	}
	for i, p := range before[:3] {
		if err := os.Rename(filepath.Join(hidden, strconv.Itoa(i)), p); err != nil {
			t.Fatal(err)
		}
	}
	res, err := alice.Rotate(ctx, g.ID.String())
	if err != nil || len(res.Records) != 1 || len(res.Replaced) != 0 {
		t.Fatalf("rotate: %+v %v", res, err)
	}
	newM, _ := alice.loadManifest(cw.record.ID)
	store, _, err := alice.storeFor(ctx, RecordOptions{Local: true}, newM)
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	if err := vault.Reassemble(ctx, newM, store, &ct); err != nil {
		t.Fatal(err)
	}
	if _, err := age.Decrypt(&ct, bobOld); err == nil {
		t.Fatal("bob's old key decrypts the new ciphertext")
	}
	for _, s := range oldM.Shares {
		if ok, _ := store.Has(ctx, s.ID); ok {
			t.Fatal("an old share is still stored")
		}
	}
	var out bytes.Buffer
	if _, err := alice.GetRecord(ctx, cw.record.ID, &out, RecordOptions{}); err != nil || !bytes.Equal(out.Bytes(), plain.Bytes()) {
		t.Fatalf("record after rotation: %v", err)
	}
	if rep, err := alice.AuditLedger(ctx); err != nil || !rep.OK() {
		t.Fatalf("audit: %+v %v", rep, err)
	}
}
