package vault_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

// FuzzParseManifest feeds arbitrary bytes to the manifest decoder twice:
// as a whole envelope (stopped by the signature unless canonical and
// signed), and as a body signed with the owner key (reaching the strict
// CBOR decoder and validation). It must never panic, and whatever it
// accepts must re-sign to exactly the same bytes.
func FuzzParseManifest(f *testing.F) {
	pub, priv := fixedOwner()
	m := fixedManifest(f)
	env, err := m.Sign(priv)
	if err != nil {
		f.Fatal(err)
	}
	body, err := m.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add(body)
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, signedEnvelope(priv, data)} {
			m, err := vault.ParseManifest(in, pub)
			if err != nil {
				continue
			}
			again, err := m.Sign(priv)
			if err != nil {
				t.Fatalf("accepted manifest does not re-sign: %v", err)
			}
			if !bytes.Equal(again, in) {
				t.Fatal("accepted manifest is not canonical")
			}
		}
	})
}

// FuzzShareReader damages one share (XOR a patch at an offset, then
// optionally cut or extend it) and opens the record. With all other shares
// present Open must always succeed with the exact plaintext. With one
// other share missing, the damaged share is needed: Open must then fail or
// produce the exact plaintext, never anything else.
func FuzzShareReader(f *testing.F) {
	plain := bytes.Repeat([]byte("medwallet fuzz record "), 600) // several stripes
	p := vault.Params{K: 2, N: 3, StripeSize: 2048}
	o := newOwner(f)
	store := memstore.New()
	m := seal(f, o, store, plain, p)
	shareLen := len(store.Bytes(m.Shares[0].ID))

	f.Add(uint32(0), []byte{}, int32(0))
	f.Add(uint32(0), []byte{1}, int32(0))
	f.Add(uint32(5), []byte{0xff}, int32(0))
	f.Add(uint32(40), []byte{0, 0, 1}, int32(-1))
	f.Add(uint32(uint32(shareLen-1)), []byte{0x80}, int32(3))
	f.Add(uint32(0), []byte{}, int32(-100))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte, resize int32) {
		share := store.Bytes(m.Shares[0].ID)
		for i, b := range patch {
			if j := int(off) + i; j < len(share) {
				share[j] ^= b
			}
		}
		switch {
		case resize < 0 && int(-resize) <= len(share):
			share = share[:len(share)+int(resize)]
		case resize > 0 && resize < 1<<16:
			share = append(share, make([]byte, resize)...)
		}
		ctx := context.Background()
		for _, missing := range []int{-1, 1} {
			view := memstore.New()
			view.Replace(m.Shares[0].ID, share)
			for i := 1; i < p.N; i++ {
				if i != missing {
					view.Replace(m.Shares[i].ID, store.Bytes(m.Shares[i].ID))
				}
			}
			var out bytes.Buffer
			err := vault.Open(ctx, m, view, &out, vault.OpenOptions{})
			if missing < 0 && err != nil {
				t.Fatalf("open with two good shares failed: %v", err)
			}
			if err == nil && !bytes.Equal(out.Bytes(), plain) {
				t.Fatal("open returned wrong plaintext without an error")
			}
			if err != nil && !errors.Is(err, vault.ErrNotEnoughShares) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			health := vault.Verify(ctx, m, view)
			if ok := health[0].Status == vault.StatusOK; ok != bytes.Equal(share, store.Bytes(m.Shares[0].ID)) {
				t.Fatalf("verify says %s for a share that is equal=%v", health[0].Status, !ok)
			}
		}
	})
}

// signedEnvelope wraps body in an envelope signed by priv.
func signedEnvelope(priv ed25519.PrivateKey, body []byte) []byte {
	em, _ := cbor.CoreDetEncOptions().EncMode()
	sig := ed25519.Sign(priv, append([]byte(vault.SignatureContext), body...))
	env, _ := em.Marshal(map[string][]byte{"body": body, "sig": sig})
	return env
}
