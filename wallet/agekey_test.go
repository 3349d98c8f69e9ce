package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/devnet"
)

// Rotating the age key: the keyring holds the new identity as current and
// the card's as retired (a reopened wallet too), the ledger names the new
// recipient, the first entry still carries the card's, and what was sealed
// to the old identity still opens. Rotating again for the same device does
// nothing; a rotation cut short after the keyring was written is finished
// with the same identity, not another.
func TestRotateAgeKeyKeyring(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice := cw.alice
	id0, err := alice.Identity()
	if err != nil {
		t.Fatal(err)
	}
	old := id0.Age
	dev := testID(t)
	rotated, err := alice.rotateAgeKey(dev)
	if err != nil || !rotated {
		t.Fatalf("rotateAgeKey = %v, %v", rotated, err)
	}
	cur, err := alice.CurrentAgeRecipient()
	if err != nil {
		t.Fatal(err)
	}
	if cur == old.Recipient().String() || cur == "" {
		t.Fatalf("current recipient %q after rotating", cur)
	}

	// A wallet opened afresh reads the same keyring item.
	again, err := Open(alice.cfg)
	if err != nil {
		t.Fatal(err)
	}
	id1, err := again.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if id1.Age.Recipient().String() != cur || len(id1.Retired) != 1 || id1.Retired[0].String() != old.String() {
		t.Fatalf("keyring after rotating: current %s, %d retired", id1.Age.Recipient(), len(id1.Retired))
	}
	// The local manifest, sealed to the old identity, still opens.
	if _, err := again.RecordKey(ctx, cw.record.ID); err != nil {
		t.Fatalf("a manifest sealed to the retired identity: %v", err)
	}
	// The first entry is unchanged; the last is the age-key entry.
	es, err := again.LedgerEntries()
	if err != nil {
		t.Fatal(err)
	}
	first, _ := es[0].DecodedBody()
	if ib := first.(*consent.IdentityBody); ib.AgeRecipient != alice.Card().AgeRecipient {
		t.Fatal("the identity entry changed")
	}
	last, _ := es[len(es)-1].DecodedBody()
	if ak, ok := last.(*consent.AgeKeyBody); !ok || ak.AgeRecipient != cur || ak.Device != dev || ak.Reason != consent.AgeKeyDeviceRevoke {
		t.Fatalf("last entry = %+v", last)
	}

	// Done for this device: nothing more.
	if rotated, err := again.rotateAgeKey(dev); err != nil || rotated {
		t.Fatalf("rotating again for the same device = %v, %v", rotated, err)
	}

	// Cut short: the keyring holds a newer identity the ledger does not
	// name. The next rotation appends the entry for it.
	a, _ := age.GenerateX25519Identity()
	if err := again.storeIdentity(id1.withCurrent(a)); err != nil {
		t.Fatal(err)
	}
	// Sync's pick-up leaves a keyring that is ahead alone (it needs no
	// network to know).
	if got, err := again.pickUpAgeKey(ctx, nil); err != nil || got {
		t.Fatalf("pick-up with the keyring ahead = %v, %v", got, err)
	}
	if rotated, err := again.rotateAgeKey(testID(t)); err != nil || !rotated {
		t.Fatalf("finishing a rotation = %v, %v", rotated, err)
	}
	if cur, _ := again.CurrentAgeRecipient(); cur != a.Recipient().String() {
		t.Fatalf("after finishing: current %s, want the keyring's %s", cur, a.Recipient())
	}
	id2, _ := again.Identity()
	if len(id2.Retired) != 2 || id2.Retired[0].Recipient().String() != id1.Age.Recipient().String() || id2.Retired[1].String() != old.String() {
		t.Fatal("retired identities are not newest first")
	}

	// A key export carries the retired identities.
	var exp bytes.Buffer
	if err := again.ExportKey(&exp, "pass"); err != nil {
		t.Fatal(err)
	}
	restored, err := ImportKey(memConfig(t), exp.Bytes(), "pass")
	if err != nil {
		t.Fatal(err)
	}
	rid, err := restored.Identity()
	if err != nil || rid.Age.String() != a.String() || len(rid.Retired) != 2 {
		t.Fatalf("restored identity: %v", err)
	}
}

// A grant to a party whose ledger shows a newer age key wraps the record
// keys to that key, not to the card's: the grantee's retired identity
// opens nothing, its current one does.
func TestGrantToRotatedGrantee(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	bid0, _ := bob.Identity()
	old := bid0.Age
	if _, err := bob.rotateAgeKey(testID(t)); err != nil {
		t.Fatal(err)
	}
	bid, _ := bob.Identity()
	var feed bytes.Buffer
	if _, err := bob.ExportLedger(&feed); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ImportLedger(&feed); err != nil {
		t.Fatal(err)
	}
	g, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{cw.record.ID},
		Scopes: []string{"patient/Observation.read"}, Purpose: "TREAT", Expires: "30d"})
	if err != nil {
		t.Fatal(err)
	}
	es, _ := alice.LedgerEntries()
	var wk []byte
	for _, e := range es {
		if e.Hash() == g.ID {
			b, _ := e.DecodedBody()
			wk = b.(*consent.Grant).Keys[0].Key
		}
	}
	if _, err := age.Decrypt(bytes.NewReader(wk), old); err == nil {
		t.Fatal("the grant's key opens with the grantee's retired age key")
	}
	r, err := age.Decrypt(bytes.NewReader(wk), bid.Age)
	if err != nil {
		t.Fatalf("the grant's key does not open with the grantee's current age key: %v", err)
	}
	got, _ := io.ReadAll(r)
	key, _ := alice.RecordKey(ctx, cw.record.ID)
	if string(got) != key.String() {
		t.Fatal("wrapped key is not the record key")
	}
}

// The escrow passphrase is a function of the seed alone and differs from
// seed to seed; a copy sealed for one seed opens with that seed's escrow
// identity and not another's. The vector, in docs/format.md, was computed
// with Python's hmac and hashlib (HKDF by RFC 5869's two steps).
func TestEscrowPassphrase(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, ed25519.SeedSize)
	a, err := escrowPassphrase(seed)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := escrowPassphrase(seed); a != b {
		t.Fatal("the escrow passphrase is not deterministic")
	}
	const want = "cyNxNil8-PneMwBP5KHUGJge-GRxQ3tobVHTUYJAAJA"
	if a != want {
		t.Errorf("escrow passphrase of seed 42..42: %s, want %s", a, want)
	}
	otherSeed := bytes.Repeat([]byte{0x43}, ed25519.SeedSize)
	if other, _ := escrowPassphrase(otherSeed); other == a {
		t.Fatal("two seeds, one escrow passphrase")
	}
	rcpt, err := escrowRecipient(seed)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := encryptTo([]byte("payload"), rcpt)
	if err != nil {
		t.Fatal(err)
	}
	mine, _ := escrowIdentity(seed)
	if got, err := decryptWith(sealed, mine, 1<<10); err != nil || string(got) != "payload" {
		t.Fatalf("the seed's own escrow identity: %q, %v", got, err)
	}
	theirs, _ := escrowIdentity(otherSeed)
	if _, err := decryptWith(sealed, theirs, 1<<10); err == nil {
		t.Fatal("another seed's escrow identity opened the copy")
	}
}

// A copy of the age key opens only for its addressee, signed by the
// identity, holding the identity the ledger names; anything else leaves
// the wallet as it is.
func TestOpenAgeKeyCopy(t *testing.T) {
	cw := newConsentWallets(t)
	alice := cw.alice
	id, _ := alice.Identity()
	devAge, _ := age.GenerateX25519Identity()
	dev := testID(t)
	next, _ := age.GenerateX25519Identity()
	rotated := id.withCurrent(next)
	env, err := alice.sealAgeKey(rotated, dev, devAge.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	owner := id.Signing.Public().(ed25519.PublicKey)
	// The device's view of itself: its own keys, the old patient key.
	held := &Identity{Age: id.Age, DeviceAge: devAge}
	want := next.Recipient().String()
	got, ok := alice.openAgeKey(env, dev, owner, devAge, held, want)
	if !ok || got.Age.String() != next.String() || len(got.Retired) != 1 || got.Retired[0].String() != id.Age.String() || got.DeviceAge != devAge {
		t.Fatalf("openAgeKey = %v, %v", got, ok)
	}
	tampered := func(f func(*sealedAgeKey)) []byte {
		var sk sealedAgeKey
		if err := json.Unmarshal(env, &sk); err != nil {
			t.Fatal(err)
		}
		f(&sk)
		b, _ := json.Marshal(sk)
		return b
	}
	otherAge, _ := age.GenerateX25519Identity()
	for name, c := range map[string]struct {
		env    []byte
		to     consent.ID
		owner  ed25519.PublicKey
		opener age.Identity
		want   string
	}{
		"another addressee":   {env, testID(t), owner, devAge, want},
		"another signer":      {env, dev, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey), devAge, want},
		"another opener":      {env, dev, owner, otherAge, want},
		"not the ledger's":    {env, dev, owner, devAge, otherAge.Recipient().String()},
		"readdressed":         {tampered(func(s *sealedAgeKey) { s.To = testID(t) }), dev, owner, devAge, want},
		"ciphertext changed":  {tampered(func(s *sealedAgeKey) { s.Sealed[len(s.Sealed)-1] ^= 1 }), dev, owner, devAge, want},
		"signature truncated": {tampered(func(s *sealedAgeKey) { s.Sig = s.Sig[:10] }), dev, owner, devAge, want},
		"not JSON":            {[]byte("age-encryption.org/v1"), dev, owner, devAge, want},
	} {
		if _, ok := alice.openAgeKey(c.env, c.to, c.owner, c.opener, held, c.want); ok {
			t.Errorf("%s: the copy opened", name)
		}
	}
}

// A guardian recovery of an identity that rotated its age key after its
// guardians were set (so the sealed identity holds the old age key) reads
// every record after sync: the sealed identity holds the signing key, which
// opens the escrowed copy of the current age key. The guardians' pieces
// are not reissued. The backup of local state is sealed again to the new
// key on rotating, and the recovered wallet gets its contacts back.
func TestGuardianRecoveryAfterAgeKeyRotation(t *testing.T) {
	ctx, dn := newDevnet(t, devnet.Options{Peers: 3, SyncInterval: time.Second})
	net := dn.NetworkPath()
	alice := guardianWallet(t, net, "Alice", 0)
	bob := guardianWallet(t, net, "Bob", 0)
	carol := guardianWallet(t, net, "Carol", 0)
	for _, g := range []*Wallet{bob, carol} {
		if _, err := alice.AddContact(g.Card().Name, g.Card().String()); err != nil {
			t.Fatal(err)
		}
	}
	const body = `{"resourceType":"Observation","id":"g","status":"final","code":{"text":"MW-MARKER-rot15g"}}`
	rec, err := alice.AddRecord(ctx, strings.NewReader(body), AddRecordOptions{K: 2, N: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetGuardians(ctx, GuardianOptions{Threshold: 2, Guardians: []string{"Bob", "Carol"}}, false); err != nil {
		t.Fatal(err)
	}
	// The backup of local state (the contacts) goes to the peers, sealed
	// to the age key of today.
	if res, err := alice.Sync(ctx); err != nil || !res.Backup.Pushed {
		t.Fatalf("first sync: %+v, %v", res, err)
	}
	// What device revoke does after its revoke entry.
	old, _ := alice.Identity()
	oldAge := old.Age
	func() {
		defer alice.holdLedger()()
		if _, err := alice.rotateAgeKey(testID(t)); err != nil {
			t.Fatal(err)
		}
		if err := alice.withClient(ctx, func(c *client.Client) error { _, err := alice.deliverAgeKey(ctx, c); return err }); err != nil {
			t.Fatal(err)
		}
		if err := alice.publishFeed(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.rekeyAfterDevice(ctx, nil); err != nil {
			t.Fatal(err)
		}
		// The backup is sealed again, though its content did not change.
		if err := alice.withClient(ctx, func(c *client.Client) error {
			res, err := alice.syncBackup(ctx, c)
			if err == nil && !res.Pushed {
				t.Error("the backup sealed to the old age key was not sealed again")
			}
			if err != nil {
				return err
			}
			copies, err := c.ListManifestsFor(ctx, alice.ID(), consent.BackupRecord(alice.ID()), alice.ID())
			if err != nil || len(copies) == 0 {
				t.Fatalf("backup copies: %d, %v", len(copies), err)
			}
			for _, cp := range copies {
				var sb sealedBackup
				if err := json.Unmarshal(cp.Envelope, &sb); err != nil {
					t.Fatal(err)
				}
				if _, err := age.Decrypt(bytes.NewReader(sb.Sealed), oldAge); err == nil {
					t.Error("a backup copy on the peers still opens with the old age key")
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}()
	enc, err := os.ReadFile(alice.manifestPath(rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := age.Decrypt(bytes.NewReader(enc), oldAge); err == nil {
		t.Fatal("the re-keyed manifest opens with the old age key")
	}

	cfg := newMachine(t, net, 0)
	req, err := StartRecovery(ctx, cfg, RecoverOptions{Owner: string(alice.ID())})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Wallet{bob, carol} {
		if _, err := g.ApproveRecovery(ctx, req.Code, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, p, err := FinishRecovery(ctx, cfg)
	if err != nil || !p.Done {
		t.Fatalf("recovery: %+v, %v", p, err)
	}
	res, err := w.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.AgeKey {
		t.Fatal("sync after the recovery did not install the current age key")
	}
	if res.Backup.Restored == 0 {
		t.Fatal("sync after the recovery restored nothing from the backup")
	}
	if _, err := w.Resolve("Bob"); err != nil {
		t.Fatalf("the recovered wallet's contacts: %v", err)
	}
	var out bytes.Buffer
	if _, err := w.GetRecord(ctx, rec.ID, &out, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if out.String() != body {
		t.Fatal("the recovered wallet reads another record")
	}
}
