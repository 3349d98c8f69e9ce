package boltstore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) consent.Store {
		s, err := Open(filepath.Join(t.TempDir(), "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := consent.OpenLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := consent.NewKeySigner(ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := l.Append(signer, time.Unix(1767225600+int64(i), 0), consent.KindAnchor,
			&consent.AnchorBody{Record: "rec-1", Manifest: consent.HashBytes([]byte{byte(i)})}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err = consent.OpenLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.Entries()); n != 3 {
		t.Fatalf("reopened ledger has %d entries, want 3", n)
	}
}
