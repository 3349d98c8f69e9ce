package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
	ledgerstore "github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/wallet"
)

// ledger verify re-checks every stored signature: a signature changed on
// disk is found there (exit 5), while every other command opens the ledger
// without checking signatures again.
func TestLedgerVerify(t *testing.T) {
	ctx := context.Background()
	g, out, _ := disclosureFixture(t)
	g.json = true
	if err := runLedgerVerify(ctx, ledgerVerifyOptions{}, g); err != nil {
		t.Fatalf("ledger verify: %v", err)
	}
	var j ledgerVerifyJSON
	if err := json.Unmarshal(out.Bytes(), &j); err != nil || !j.OK || j.Entries < 4 || j.Feeds != 1 || j.Bad != 0 {
		t.Fatalf("ledger verify: %+v %v\n%s", j, err, out)
	}

	w, err := g.openWallet()
	if err != nil {
		t.Fatal(err)
	}
	// Flip a bit of the signature of the last entry of the wallet's feed
	// (the encoding ends with the signature).
	db, err := bolt.Open(filepath.Join(g.home, wallet.LedgerFile), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("entries"))
		var last []byte
		b.ForEach(func(k, _ []byte) error {
			if bytes.HasPrefix(k, append([]byte(w.ID()), 0)) {
				last = bytes.Clone(k)
			}
			return nil
		})
		if last == nil {
			return errors.New("no entry of the wallet's feed")
		}
		v := bytes.Clone(b.Get(last))
		v[len(v)-10] ^= 1
		return b.Put(last, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	if _, err := w.LedgerEntries(); err != nil {
		t.Fatalf("the ledger no longer opens: %v", err)
	}
	out.Reset()
	err = runLedgerVerify(ctx, ledgerVerifyOptions{}, g)
	if !errors.Is(err, wallet.ErrVerify) || exitCode(err) != exitVerify {
		t.Fatalf("ledger verify of a changed signature: %v", err)
	}
	code := g.finish(err)
	j = ledgerVerifyJSON{}
	if jerr := json.Unmarshal(out.Bytes(), &j); jerr != nil || j.OK || j.Bad != 1 || len(j.Problems) != 1 ||
		!strings.Contains(j.Problems[0], "bad signature") || code != exitVerify {
		t.Fatalf("ledger verify --json: %+v %v\n%s", j, jerr, out)
	}
	g.json = false
	out.Reset()
	if err := runLedgerVerify(ctx, ledgerVerifyOptions{}, g); err == nil ||
		!strings.Contains(out.String(), "ledger bad: 1 of ") || !strings.Contains(out.String(), "bad: ledger entry ") {
		t.Fatalf("ledger verify: %v\n%s", err, out)
	}
}

// peer --verify-ledger refuses to start on a ledger whose stored
// signatures do not verify; without the flag start-up does not check them.
func TestPeerVerifyLedger(t *testing.T) {
	g := newGlobals(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if f := newPeerCommand(g).Flags().Lookup("verify-ledger"); f == nil || f.DefValue != "false" {
		t.Fatalf("peer --verify-ledger: %+v", f)
	}
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	if err := verifyPeerLedger(dir, log); err != nil {
		t.Fatalf("no ledger yet: %v", err)
	}
	s, err := ledgerstore.Open(filepath.Join(dir, peer.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	signer, err := consent.NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	var head consent.Head
	for i := range 3 {
		e, err := consent.NewEntry(signer, head, time.Unix(1767225600+int64(i), 0), consent.KindAnchor,
			&consent.AnchorBody{Record: "rec-1", Manifest: consent.HashBytes([]byte{byte(i)})})
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			e.Sig[3] ^= 1 // stored as is: stores do not verify
		}
		if err := s.Put(e); err != nil {
			t.Fatal(err)
		}
		head = e.Head()
	}
	s.Close()
	err = verifyPeerLedger(dir, log)
	if !errors.Is(err, wallet.ErrVerify) || exitCode(err) != exitVerify || !strings.Contains(err.Error(), "1 of 3 stored entries") {
		t.Fatalf("verify a peer ledger with a bad signature: %v", err)
	}
}
