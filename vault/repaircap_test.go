package vault_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

func TestRepairCapRoundTrip(t *testing.T) {
	marker := []byte("REPAIRCAP-MARKER-7d1f ")
	plain := bytes.Repeat(marker, 500)
	_, m, o := sealMem(t, plain, vault.Params{K: 2, N: 4, StripeSize: 4096})
	m.Metadata.Label = "label-that-must-not-leak"
	c, err := vault.NewRepairCap(m, []string{"p0", "", "p2", "p3"})
	if err != nil {
		t.Fatal(err)
	}
	env, err := c.Sign(o.priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{[]byte(m.Key), []byte(m.Metadata.Label), marker, []byte("AGE-SECRET-KEY")} {
		if bytes.Contains(env, secret) {
			t.Fatalf("the capability holds %q", secret)
		}
	}
	got, err := vault.ParseRepairCap(env, o.pub)
	if err != nil {
		t.Fatal(err)
	}
	if got.RecordID != m.RecordID || got.K != 2 || got.N != 4 || got.CipherRoot != m.CipherRoot || !slices.Equal(got.Holders, c.Holders) {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range m.Shares {
		if got.Shares[i].ID != m.Shares[i].ID || !slices.Equal(got.Shares[i].BlockHashes, m.Shares[i].BlockHashes) {
			t.Fatalf("share %d differs", i)
		}
	}
	if again, _ := got.Sign(o.priv); !bytes.Equal(again, env) {
		t.Fatal("a parsed capability does not sign to the same bytes")
	}
	if _, err := vault.ParseRepairCap(env, nil); err != nil {
		t.Fatalf("without an expected owner: %v", err)
	}

	// Refusals.
	other := newOwner(t)
	if _, err := c.Sign(other.priv); err == nil {
		t.Fatal("signed with another key")
	}
	if _, err := vault.ParseRepairCap(env, other.pub); !errors.Is(err, vault.ErrBadRepairCap) {
		t.Fatalf("another owner expected: %v", err)
	}
	tampered := bytes.Clone(env)
	tampered[len(tampered)/2] ^= 1
	if _, err := vault.ParseRepairCap(tampered, o.pub); err == nil {
		t.Fatal("tampered capability accepted")
	}
	menv, err := m.Sign(o.priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.ParseRepairCap(menv, o.pub); err == nil {
		t.Fatal("a signed manifest parsed as a capability")
	}
	if _, err := vault.ParseManifest(env, o.pub); err == nil {
		t.Fatal("a capability parsed as a manifest")
	}
	if _, err := vault.NewRepairCap(m, []string{"only one"}); !errors.Is(err, vault.ErrBadRepairCap) {
		t.Fatalf("holders of the wrong length: %v", err)
	}
}

func TestRepairCapBlocks(t *testing.T) {
	store, m, _ := sealMem(t, randomData(t, 10_000), vault.Params{K: 3, N: 5, StripeSize: 3 * 1024})
	c, err := vault.NewRepairCap(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	share := store.Bytes(m.Shares[2].ID)
	if int64(len(share)) != c.ShareSize() {
		t.Fatalf("ShareSize = %d, share has %d bytes", c.ShareSize(), len(share))
	}
	off := int64(vault.ShareHeaderSize)
	for s := range c.Stripes() {
		b := share[off : off+c.BlockLen(s)]
		if err := c.CheckBlock(2, s, b); err != nil {
			t.Fatalf("block %d: %v", s, err)
		}
		if err := c.CheckBlock(3, s, b); !errors.Is(err, vault.ErrCorruptShare) {
			t.Fatalf("block of share 2 taken for share 3's: %v", err)
		}
		off += c.BlockLen(s)
	}
	if c.ShareIndex(m.Shares[4].ID) != 4 || c.ShareIndex(vault.ShareID{}) != -1 {
		t.Fatal("ShareIndex")
	}
}

func rebuildInto(t *testing.T, c *vault.RepairCap, src vault.ShareGetter, dst *memstore.Store, missing []int) (vault.RebuildResult, error) {
	t.Helper()
	return vault.Rebuild(context.Background(), c, src, missing, func(i int, r io.Reader) (vault.ShareID, error) {
		return dst.Put(context.Background(), r)
	}, vault.RebuildOptions{})
}

func TestRebuild(t *testing.T) {
	plain := randomData(t, 50_000) // several stripes, a short last one
	p := vault.Params{K: 3, N: 5, StripeSize: 3 * 4096}
	store, m, _ := sealMem(t, plain, p)
	c, err := vault.NewRepairCap(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	orig := map[vault.ShareID][]byte{}
	for _, s := range m.Shares {
		orig[s.ID] = store.Bytes(s.ID)
	}
	// n-k shares lost: a data and a parity share.
	for _, i := range []int{0, 4} {
		if err := store.Delete(context.Background(), m.Shares[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	res, err := rebuildInto(t, c, store, store, []int{0, 4})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Read, []int{1, 2, 3}) || len(res.Written) != 2 || res.Bytes != 2*c.ShareSize() {
		t.Fatalf("result = %+v (share size %d)", res, c.ShareSize())
	}
	for _, s := range m.Shares {
		if !bytes.Equal(store.Bytes(s.ID), orig[s.ID]) {
			t.Fatalf("share %s differs after the rebuild", s.ID)
		}
	}
	got, err := open(t, m, store)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open after the rebuild: %v", err)
	}

	// A corrupt source is passed over for the next share.
	store.Delete(context.Background(), m.Shares[1].ID)
	bad := bytes.Clone(orig[m.Shares[0].ID])
	bad[len(bad)-3] ^= 0x40
	store.Replace(m.Shares[0].ID, bad)
	dst := memstore.New()
	res, err = rebuildInto(t, c, store, dst, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(m.Shares[1].ID), orig[m.Shares[1].ID]) {
		t.Fatal("rebuilt share 1 differs")
	}
	if !slices.Equal(res.Read, []int{2, 3, 4}) || res.Sources[0].Status != vault.StatusCorrupt {
		t.Fatalf("sources: %+v read %v", res.Sources, res.Read)
	}

	// Fewer than k usable sources: nothing is stored.
	store.Delete(context.Background(), m.Shares[2].ID)
	dst = memstore.New()
	_, err = rebuildInto(t, c, store, dst, []int{1})
	var ne *vault.NotEnoughSharesError
	if !errors.As(err, &ne) || ne.Usable != 2 {
		t.Fatalf("err = %v, want not enough shares with 2 usable", err)
	}
	if dst.Len() != 0 {
		t.Fatalf("a failed rebuild stored %d shares", dst.Len())
	}
	if _, err := rebuildInto(t, c, store, dst, []int{7}); err == nil {
		t.Fatal("a share index out of range was rebuilt")
	}
}

// FuzzParseRepairCap feeds arbitrary bytes to the capability decoder, as
// an envelope and as a body signed by the owner. It must never panic, and
// what it accepts must sign again to the same bytes.
func FuzzParseRepairCap(f *testing.F) {
	pub, priv := fixedOwner()
	c, err := vault.NewRepairCap(fixedManifest(f), []string{"12D3KooWA", "", "12D3KooWC"})
	if err != nil {
		f.Fatal(err)
	}
	env, err := c.Sign(priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, signedCap(priv, data)} {
			c, err := vault.ParseRepairCap(in, pub)
			if err != nil {
				continue
			}
			again, err := c.Sign(priv)
			if err != nil {
				t.Fatalf("accepted capability does not re-sign: %v", err)
			}
			if !bytes.Equal(again, in) {
				t.Fatal("accepted capability is not canonical")
			}
		}
	})
}

func signedCap(priv ed25519.PrivateKey, body []byte) []byte {
	em, _ := cbor.CoreDetEncOptions().EncMode()
	sig := ed25519.Sign(priv, append([]byte(vault.RepairCapContext), body...))
	env, _ := em.Marshal(map[string][]byte{"body": body, "sig": sig})
	return env
}
