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

// Every sub-benchmark of BenchmarkSeal and BenchmarkOpen runs on the same
// terms as its yardstick, age-plain, so that their ratio is the cost of the
// vault alone:
//   - the same input: 256 MiB from newRepeatReader (Seal), or a ciphertext
//     or shares prepared before b.Run, in buffers sized up front (Open);
//   - the same buffer strategy: io.Copy with its 32 KiB buffer, no output
//     buffer grown in the timed region;
//   - the same output sink: hashStore for Seal (a store computes the content
//     address of what it receives; age's output is one blob), writerOnly
//     around io.Discard for Open (vault.Open hides the destination's
//     ReadFrom in the same way);
//   - the same warm-up: one untimed run before the timed ones (measure), so
//     that no case alone pays the first-use costs of the process: the first
//     decryption of 256 MiB in a process here costs about 1 s of CPU more
//     than the following ones (so does every decryption after
//     debug.FreeOSMemory, which is why measure does not call it).

// measure runs f once untimed, then b.N times timed, and reports the CPU
// time per run besides the wall time.
func measure(b *testing.B, f func() error) {
	b.SetBytes(benchSize)
	if err := f(); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime()
	for b.Loop() {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// writerOnly hides every method of the writer but Write.
type writerOnly struct{ io.Writer }

// ageCiphertextSize is the size of the age encryption of n bytes to one
// X25519 recipient, with room to spare for the header: 16 bytes of tag per
// 64 KiB chunk.
func ageCiphertextSize(n int64) int64 { return n + (n/(64<<10)+1)*16 + 1024 }

// BenchmarkSeal compares sealing (encrypt + code + hash + content address)
// with plain age encryption of the same 256 MiB into the same store.
func BenchmarkSeal(b *testing.B) {
	o := newOwner(b)
	b.Run("age-plain", func(b *testing.B) {
		measure(b, func() error {
			_, err := hashStore{}.Put(context.Background(), ageReader(newRepeatReader(b, benchSize), o.age.Recipient()))
			return err
		})
	})
	for _, p := range benchParams {
		b.Run(fmt.Sprintf("k%d-n%d", p.K, p.N), func(b *testing.B) {
			measure(b, func() error {
				_, err := vault.Seal(context.Background(), newRepeatReader(b, benchSize), hashStore{}, vault.SealOptions{Params: p, Owner: o.pub})
				return err
			})
		})
	}
}

// ageReader returns the age encryption of r to rcpt as a stream, as Seal
// hands each share to the store: an io.Pipe written by another goroutine.
func ageReader(r io.Reader, rcpt age.Recipient) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		w, err := age.Encrypt(pw, rcpt)
		if err == nil {
			_, err = io.Copy(w, r)
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// BenchmarkOpen compares opening (verify + decode + decrypt) with plain age
// decryption of the same 256 MiB. The k-n cases read the first k shares;
// the "-lost" cases lose data share 0 and must decode.
func BenchmarkOpen(b *testing.B) {
	o := newOwner(b)
	ct := bytes.NewBuffer(make([]byte, 0, ageCiphertextSize(benchSize)))
	w, err := age.Encrypt(ct, o.age.Recipient())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(w, newRepeatReader(b, benchSize)); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if int64(ct.Cap()) != ageCiphertextSize(benchSize) {
		b.Fatalf("the ciphertext buffer grew to %d bytes", ct.Cap())
	}
	b.Run("age-plain", func(b *testing.B) {
		measure(b, func() error {
			r, err := age.Decrypt(bytes.NewReader(ct.Bytes()), o.age)
			if err != nil {
				return err
			}
			_, err = io.Copy(writerOnly{io.Discard}, r)
			return err
		})
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
				measure(b, func() error {
					return vault.Open(context.Background(), m, src, io.Discard, vault.OpenOptions{})
				})
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
