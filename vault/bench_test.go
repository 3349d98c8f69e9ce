package vault_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"

	"filippo.io/age"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

const benchSize = 256 << 20

// repeatReader yields n bytes, repeating a random 1 MiB block.
type repeatReader struct {
	block []byte
	off   int
	left  int64
}

func newRepeatReader(b testing.TB, n int64) *repeatReader {
	return &repeatReader{block: randomData(b, 1<<20), left: n}
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.left)]
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= int64(n)
	return n, nil
}

// hashStore does what every real store must (compute the content address
// of what it receives) and throws the bytes away.
type hashStore struct{}

func (hashStore) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	h := vault.ShareHasher()
	_, err := io.Copy(h, r)
	return h.ID(), err
}
func (hashStore) Get(context.Context, vault.ShareID) (io.ReadCloser, error) {
	return nil, vault.ErrNotFound
}
func (hashStore) Has(context.Context, vault.ShareID) (bool, error) { return false, nil }
func (hashStore) Delete(context.Context, vault.ShareID) error      { return nil }

var benchParams = []vault.Params{{K: 3, N: 5}, {K: 4, N: 6}}

// BenchmarkSeal compares sealing (encrypt + code + hash + content address)
// with plain age encryption of the same 256 MiB to io.Discard.
func BenchmarkSeal(b *testing.B) {
	o := newOwner(b)
	b.Run("age-plain", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			w, err := age.Encrypt(io.Discard, o.age.Recipient())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(w, newRepeatReader(b, benchSize)); err != nil {
				b.Fatal(err)
			}
			w.Close()
		}
	})
	for _, p := range benchParams {
		b.Run(fmt.Sprintf("k%d-n%d", p.K, p.N), func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				_, err := vault.Seal(context.Background(), newRepeatReader(b, benchSize), hashStore{}, vault.SealOptions{Params: p, Owner: o.pub})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen compares opening (verify + decode + decrypt) with plain age
// decryption of the same 256 MiB. The k-n cases read the first k shares;
// the "-lost" cases lose data share 0 and must decode.
func BenchmarkOpen(b *testing.B) {
	o := newOwner(b)
	b.Run("age-plain", func(b *testing.B) {
		var ct bytes.Buffer
		w, _ := age.Encrypt(&ct, o.age.Recipient())
		io.Copy(w, newRepeatReader(b, benchSize))
		w.Close()
		b.SetBytes(benchSize)
		b.ResetTimer()
		for b.Loop() {
			r, err := age.Decrypt(bytes.NewReader(ct.Bytes()), o.age)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, p := range benchParams {
		store := memstore.New()
		m, err := vault.Seal(context.Background(), newRepeatReader(b, benchSize), store, vault.SealOptions{Params: p, Owner: o.pub})
		if err != nil {
			b.Fatal(err)
		}
		for _, lost := range []bool{false, true} {
			name := fmt.Sprintf("k%d-n%d", p.K, p.N)
			src := vault.ShareGetter(store)
			if lost {
				name += "-lost"
				view := memstore.New()
				for _, s := range m.Shares[1:] {
					view.Replace(s.ID, store.Bytes(s.ID))
				}
				src = view
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(benchSize)
				for b.Loop() {
					if err := vault.Open(context.Background(), m, src, io.Discard, vault.OpenOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBlockHash compares the two candidate block hashes on 1 MiB.
func BenchmarkBlockHash(b *testing.B) {
	buf := randomData(b, 1<<20)
	b.Run("blake3", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			blake3Sum(buf)
		}
	})
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			sha256.Sum256(buf)
		}
	})
}
