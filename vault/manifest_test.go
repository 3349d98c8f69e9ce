package vault_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/medwallet/medwallet/internal/testutil"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/fxamacker/cbor/v2"
	"github.com/klauspost/reedsolomon"
	"github.com/medwallet/medwallet/vault"
)

// fixedOwner is a deterministic owner for fuzz seeds and golden checks.
func fixedOwner() (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

// fixedManifest is a small, deterministic, valid manifest.
func fixedManifest(t testing.TB) *vault.Manifest {
	t.Helper()
	pub, _ := fixedOwner()
	key := "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
	if _, err := age.ParseX25519Identity(key); err != nil {
		t.Fatal(err)
	}
	m := &vault.Manifest{
		Version:    vault.ManifestVersion,
		Owner:      pub,
		Created:    time.Unix(1_800_000_000, 0).UTC(),
		Key:        key,
		K:          2,
		N:          3,
		Metadata:   vault.Metadata{Format: vault.FormatFHIR, MediaType: "application/fhir+json", Size: 10, Label: "lab", FHIR: &vault.FHIRInfo{ResourceType: "Bundle", Resources: map[string]int{"Observation": 2, "Patient": 1}, Patient: "Patient/1"}},
		StripeSize: 4096, CipherSize: 5000,
		Shares: make([]vault.ShareRef, 3),
	}
	copy(m.RecordID[:], "0123456789abcdef")
	for i := range m.Shares {
		m.Shares[i].ID[0] = byte(i)
		m.Shares[i].BlockHashes = []vault.Hash{{byte(i), 1}, {byte(i), 2}}
	}
	// The root commits to the data-block hashes; have Sign compute it by
	// round-tripping through Seal's rules.
	m.CipherRoot = cipherRoot(m)
	return m
}

func cipherRoot(m *vault.Manifest) vault.Hash {
	// Mirrors docs/format.md: BLAKE3 over data-block hashes, stripe-major.
	var buf []byte
	for s := range m.Shares[0].BlockHashes {
		for j := 0; j < m.K; j++ {
			buf = append(buf, m.Shares[j].BlockHashes[s][:]...)
		}
	}
	return vault.Hash(blake3Sum(buf))
}

func TestManifestRoundTrip(t *testing.T) {
	_, m, o := sealMem(t, randomData(t, 10_000), vault.Params{})
	stranger := newOwner(t)
	if _, err := m.Encrypt(stranger.priv, o.age.Recipient()); err == nil {
		t.Fatal("Encrypt with a key that is not the owner's succeeded")
	}
	enc, err := m.Encrypt(o.priv, o.age.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if m.Hash() != vault.Hash(sha256.Sum256(enc)) {
		t.Fatal("Hash is not SHA-256 of the encrypted manifest")
	}
	m2, err := vault.DecryptManifest(enc, o.pub, o.age)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Hash() != m.Hash() || m2.RecordID != m.RecordID || m2.Key != m.Key || m2.CipherRoot != m.CipherRoot || len(m2.Shares) != m.N {
		t.Fatal("manifest changed in the round trip")
	}
	// Wrong owner key: refused.
	other := newOwner(t)
	if _, err := vault.DecryptManifest(enc, other.pub, o.age); !errors.Is(err, vault.ErrBadSignature) {
		t.Fatalf("wrong owner: %v", err)
	}
	// Wrong age identity: cannot decrypt.
	if _, err := vault.DecryptManifest(enc, o.pub, other.age); err == nil {
		t.Fatal("decrypted with the wrong identity")
	}
	// A bit flipped anywhere in the encrypted manifest is detected.
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 1 << (i % 8)
		if _, err := vault.DecryptManifest(bad, o.pub, o.age); err == nil {
			t.Fatalf("flipped bit in byte %d of the encrypted manifest not detected", i)
		}
	}
}

func TestManifestEnvelopeBitFlips(t *testing.T) {
	pub, priv := fixedOwner()
	env, err := fixedManifest(t).Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.ParseManifest(env, pub); err != nil {
		t.Fatal(err)
	}
	for i := range env {
		for bit := range 8 {
			bad := bytes.Clone(env)
			bad[i] ^= 1 << bit
			if _, err := vault.ParseManifest(bad, pub); err == nil {
				t.Fatalf("flipped bit %d of byte %d accepted", bit, i)
			}
		}
	}
}

func signBody(t *testing.T, priv ed25519.PrivateKey, body []byte) []byte {
	t.Helper()
	return signedEnvelope(priv, body)
}

func TestManifestRefusals(t *testing.T) {
	pub, priv := fixedOwner()
	m := fixedManifest(t)
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := cbor.Unmarshal(body, &generic); err != nil {
		t.Fatal(err)
	}
	em, _ := cbor.CoreDetEncOptions().EncMode()
	edit := func(f func(map[string]any)) []byte {
		c := map[string]any{}
		for k, v := range generic {
			c[k] = v
		}
		f(c)
		b, err := em.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nonCanonical, _ := cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	unsorted, _ := nonCanonical.Marshal(generic)
	cases := []struct {
		name string
		env  []byte
		want error
	}{
		{"valid", signBody(t, priv, body), nil},
		{"unknown version", signBody(t, priv, edit(func(c map[string]any) { c["v"] = 2 })), vault.ErrUnknownVersion},
		{"unknown field", signBody(t, priv, edit(func(c map[string]any) { c["extra"] = 1 })), vault.ErrBadManifest},
		{"missing shares", signBody(t, priv, edit(func(c map[string]any) { delete(c, "shares") })), vault.ErrBadManifest},
		{"k above n", signBody(t, priv, edit(func(c map[string]any) { c["k"] = 4 })), vault.ErrBadManifest},
		{"bad root", signBody(t, priv, edit(func(c map[string]any) { c["root"] = make([]byte, 32) })), vault.ErrBadManifest},
		{"trailing bytes", append(signBody(t, priv, body), 0), vault.ErrBadManifest},
		{"trailing bytes in body", signBody(t, priv, append(bytes.Clone(body), 0)), vault.ErrBadManifest},
		{"bad signature", signBody(t, ed25519.NewKeyFromSeed(make([]byte, 32)), body), vault.ErrBadSignature},
		{"empty", nil, vault.ErrBadManifest},
	}
	if !bytes.Equal(unsorted, body) {
		cases = append(cases, struct {
			name string
			env  []byte
			want error
		}{"keys not sorted", signBody(t, priv, unsorted), vault.ErrBadManifest})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vault.ParseManifest(tc.env, pub)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestReedSolomonVectors checks the erasure code against known answers
// from an independent implementation.
func TestReedSolomonVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "crypto/reed-solomon/rs-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			Name      string
			K, M      int
			ShardSize int
			Data      []string
			Parity    []string
		}
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			enc, err := reedsolomon.New(v.K, v.M, reedsolomon.WithAutoGoroutines(v.ShardSize))
			if err != nil {
				t.Fatal(err)
			}
			shards := make([][]byte, v.K+v.M)
			for i, d := range v.Data {
				shards[i], _ = hex.DecodeString(d)
			}
			for i := range v.M {
				shards[v.K+i] = make([]byte, v.ShardSize)
			}
			if err := enc.Encode(shards); err != nil {
				t.Fatal(err)
			}
			for i, p := range v.Parity {
				if got := hex.EncodeToString(shards[v.K+i]); got != p {
					t.Fatalf("parity %d = %s, want %s", i, got, p)
				}
			}
			// And rebuild from the parity plus the last data shards.
			want := bytes.Clone(shards[0])
			for i := 0; i < min(v.M, v.K); i++ {
				shards[i] = nil
			}
			if err := enc.ReconstructData(shards); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(shards[0], want) {
				t.Fatal("reconstructed data differs")
			}
		})
	}
}

func TestSealParams(t *testing.T) {
	o := newOwner(t)
	for _, p := range []vault.Params{{K: 0, N: 0}, {K: 3, N: 3}, {K: 4, N: 2}, {K: -1, N: 3}, {K: 2, N: 256}, {StripeSize: 10}, {StripeSize: 1 << 30}} {
		_, err := vault.Seal(context.Background(), bytes.NewReader([]byte("x")), nil, vault.SealOptions{Params: p, Owner: o.pub})
		if p == (vault.Params{}) {
			if err == nil || errors.Is(err, vault.ErrBadParams) {
				t.Errorf("defaults with a nil store: %v", err)
			}
			continue
		}
		if !errors.Is(err, vault.ErrBadParams) {
			t.Errorf("%+v: %v, want ErrBadParams", p, err)
		}
	}
	if _, err := vault.Seal(context.Background(), bytes.NewReader(nil), nil, vault.SealOptions{}); err == nil {
		t.Error("seal without an owner key succeeded")
	}
}
