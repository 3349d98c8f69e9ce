package dirstore_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/dirstore"
	"github.com/medwallet/medwallet/vault/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vault.ShareStore {
		s, err := dirstore.Open(filepath.Join(t.TempDir(), "shares"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPermissionsAndNoLeftovers(t *testing.T) {
	root := filepath.Join(t.TempDir(), "shares")
	s, err := dirstore.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Put(context.Background(), bytes.NewReader([]byte("share bytes")))
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path(id)); err != nil {
		t.Fatal(err)
	}
	tmp, _ := os.ReadDir(filepath.Join(root, "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("%d temporary files left behind", len(tmp))
	}
}
