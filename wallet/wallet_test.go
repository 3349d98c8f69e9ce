package wallet

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/wallet/keystore"
)

// Tests derive keys cheaply: the costs are recorded with each keyring and
// export, so nothing else changes.
const testLogN = 10

func memConfig(t *testing.T) Config {
	return Config{Home: filepath.Join(t.TempDir(), "home"), Keystore: keystore.NewMemory(), ExportWorkFactor: testLogN}
}

func fileConfig(t *testing.T, home, pass string) Config {
	return Config{Home: home, ExportWorkFactor: testLogN, Keyring: keystore.Config{Backend: "file", ScryptLogN: testLogN,
		Passphrase: func(string) (string, error) { return pass, nil }}}
}

func TestInitOpenIdentity(t *testing.T) {
	cfg := memConfig(t)
	w, err := Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if w2.ID() != w.ID() || w2.Card().Name != "Alice" {
		t.Fatalf("reopened wallet differs: %v vs %v", w2.Card(), w.Card())
	}
	id, err := w2.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if id.Age.Recipient().String() != w.Card().AgeRecipient {
		t.Fatal("age key does not match the card")
	}
	if _, err := Init(cfg, "Mallory", "patient"); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: got %v, want ErrExists", err)
	}
	w3, _ := Open(cfg)
	if w3.ID() != w.ID() {
		t.Fatal("second Init replaced the wallet")
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(Config{Home: t.TempDir()})
	var nf *NotFoundError
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrNoWallet) || !errors.As(err, &nf) || nf.Kind != KindWallet {
		t.Fatalf("got %v, want a NotFoundError for the wallet", err)
	}
}

func TestIdentityMissingFromKeyring(t *testing.T) {
	cfg := memConfig(t)
	if _, err := Init(cfg, "Alice", "patient"); err != nil {
		t.Fatal(err)
	}
	cfg.Keystore = keystore.NewMemory() // another keyring
	w, _ := Open(cfg)
	if _, err := w.Identity(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

// Only public state reaches the disk, and with private permissions.
func TestNoSecretOnDisk(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	w, err := Init(fileConfig(t, home, "pass"), "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := w.Identity()
	secrets := [][]byte{id.Signing.Seed(), []byte(id.Age.String()), []byte(strings.ToLower(id.Age.String()))}
	err = filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", path, info.Mode().Perm())
		}
		if d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds secret key material", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A wrong keyring passphrase opens nothing.
	w2, _ := Open(fileConfig(t, home, "wrong"))
	if _, err := w2.Identity(); !errors.Is(err, keystore.ErrBadPassphrase) {
		t.Fatalf("got %v, want ErrBadPassphrase", err)
	}
}

func TestExportImport(t *testing.T) {
	cfg := memConfig(t)
	w, err := Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := w.ExportKey(&buf, "backup"); err != nil {
		t.Fatal(err)
	}
	exported := buf.Bytes()

	tests := []struct {
		name string
		data []byte
		pass string
		want error
	}{
		{"wrong passphrase", exported, "nope", ErrVerify},
		{"truncated", exported[:len(exported)/2], "backup", ErrInvalid},
		{"empty", nil, "backup", ErrInvalid},
		{"foreign", []byte("-----BEGIN AGE ENCRYPTED FILE-----\nAAAA\n-----END AGE ENCRYPTED FILE-----\n"), "backup", ErrInvalid},
		{"not armored", []byte(w.Card().String()), "backup", ErrInvalid},
		{"huge", bytes.Repeat([]byte("A"), maxExportSize+1), "backup", ErrBadExport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := memConfig(t)
			if _, err := ImportKey(c, tc.data, tc.pass); !errors.Is(err, tc.want) || !errors.Is(err, ErrBadExport) {
				t.Fatalf("got %v, want %v and ErrBadExport", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(c.Home, stateFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a failed import wrote wallet state")
			}
		})
	}

	c := memConfig(t)
	w2, err := ImportKey(c, exported, "backup")
	if err != nil {
		t.Fatal(err)
	}
	if w2.ID() != w.ID() || w2.Card().String() != w.Card().String() {
		t.Fatal("import changed the identity")
	}
	id1, _ := w.Identity()
	id2, err := w2.Identity()
	if err != nil || !id1.Signing.Equal(id2.Signing) || id1.Age.String() != id2.Age.String() {
		t.Fatalf("imported secrets differ: %v", err)
	}
	if _, err := ImportKey(c, exported, "backup"); !errors.Is(err, ErrExists) {
		t.Fatalf("import over a wallet: got %v, want ErrExists", err)
	}
}

func TestContacts(t *testing.T) {
	alice, _ := Init(memConfig(t), "Alice", "patient")
	bob, _ := Init(memConfig(t), "Dr Bob", "clinician")
	carol, _ := Init(memConfig(t), "Carol", "insurer")

	if _, err := alice.AddContact("Bob", bob.Card().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact("Carol", carol.Card().String()); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		name, card string
		want       error
	}{
		"dup name":  {"Bob", carol.Card().String(), ErrExists},
		"dup card":  {"Robert", bob.Card().String(), ErrExists},
		"own card":  {"Me", alice.Card().String(), ErrInvalid},
		"bad name":  {"", bob.Card().String(), ErrInvalid},
		"bad card":  {"Eve", "medwallet-card-v1:AAAA", ErrInvalid},
		"truncated": {"Eve", bob.Card().String()[:50], ErrInvalid},
	} {
		if _, err := alice.AddContact(tc.name, tc.card); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	cs, err := alice.Contacts()
	if err != nil || len(cs) != 2 || cs[0].Name != "Bob" || cs[1].Name != "Carol" {
		t.Fatalf("Contacts() = %v, %v", cs, err)
	}
	if c, err := alice.Resolve(string(bob.ID())); err != nil || c.Name != "Bob" {
		t.Fatalf("Resolve by ID = %v, %v", c, err)
	}
	if c, err := alice.Resolve("Carol"); err != nil || c.Card.ID != carol.ID() {
		t.Fatalf("Resolve by name = %v, %v", c, err)
	}
	if _, err := alice.Resolve("Nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve unknown: %v", err)
	}
	if alice.NameOf(bob.ID()) != "Bob" || alice.NameOf(alice.ID()) != "Alice" || alice.NameOf("x") != "" {
		t.Fatal("NameOf")
	}
	if err := alice.RemoveContact("Bob"); err != nil {
		t.Fatal(err)
	}
	if err := alice.RemoveContact("Bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}

	// A card edited on disk is caught on load.
	path := filepath.Join(alice.Home(), contactsFile)
	b, _ := os.ReadFile(path)
	i := bytes.Index(b, []byte("medwallet-card-v1:")) + 40
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	os.WriteFile(path, b, 0o600)
	if _, err := alice.Contacts(); err == nil {
		t.Fatal("a tampered contacts file was accepted")
	}
}
