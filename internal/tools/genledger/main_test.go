package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
)

// writeExport writes a key export (docs/cli.md "Key backups") of a fresh
// identity, with a cheap scrypt work factor.
func writeExport(t *testing.T, path, role, pass string) consent.ID {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	card, err := consent.NewCard(priv, x.Recipient().String(), "Test "+role, role, time.Now().Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(map[string]any{"format": "medwallet-key-export-v1", "card": card.String(),
		"version": 1, "ed25519_seed": base64.StdEncoding.EncodeToString(priv.Seed()), "age_identity": x.String()})
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aw := armor.NewWriter(f)
	ew, err := age.Encrypt(aw, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ew.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return card.ID
}

// The generated ledger holds exactly the entries asked for, and an audit
// from scratch (what 'medwallet audit verify' runs) finds nothing: every
// signature and chain verifies and every logged decision is what Decide
// answers as of its entry.
func TestGeneratedLedgerAudits(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MEDWALLET_EXPORT_PASSPHRASE", "test")
	patient := writeExport(t, filepath.Join(dir, "p.key"), "patient", "test")
	writeExport(t, filepath.Join(dir, "c.key"), "clinician", "test")
	for _, tc := range []struct {
		name                       string
		entries, records, patients int
	}{
		{"one record", 203, 1, 0},
		{"records and patients", 130, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ledger.db")
			c := &config{entries: tc.entries, records: tc.records, patients: tc.patients, out: out}
			if err := run(c, filepath.Join(dir, "p.key"), filepath.Join(dir, "c.key"),
				[]string{filepath.Join(dir, "peer1"), filepath.Join(dir, "peer2")}); err != nil {
				t.Fatal(err)
			}
			st, err := boltstore.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var es []*consent.Entry
			mine := 0
			if err := st.Scan(func(e *consent.Entry) error {
				es = append(es, e)
				if e.Author == patient {
					mine++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if want := tc.entries + 2 + 6*tc.patients; len(es) != want {
				t.Fatalf("%d entries, want %d", len(es), want)
			}
			rep := consent.AuditLedgerWith(es, consent.AccessCheck{Now: time.Now()})
			if len(rep.Findings) != 0 || !rep.OK() || rep.Allowed == 0 || rep.Denied == 0 || rep.Revocations == 0 {
				t.Fatalf("audit: %+v", rep)
			}
			// About half of the story is the patient's own feed.
			if mine < tc.entries/2-tc.records || mine > tc.entries/2+tc.records+2 {
				t.Fatalf("patient feed: %d of %d entries", mine, tc.entries)
			}
			// The store opens as a ledger (verified as wallets and peers do).
			l, err := consent.OpenLedger(st)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(l.Entries()); n != len(es) {
				t.Fatalf("ledger holds %d entries, want %d", n, len(es))
			}
		})
	}
	// An existing store is never overwritten.
	out := filepath.Join(dir, "exists.db")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &config{entries: 100, records: 1, out: out}
	if err := run(c, filepath.Join(dir, "p.key"), filepath.Join(dir, "c.key"), []string{filepath.Join(dir, "peer1")}); err == nil {
		t.Fatal("run over an existing store succeeded")
	}
}
