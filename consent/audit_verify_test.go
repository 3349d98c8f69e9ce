package consent

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hdevalence/ed25519consensus"
)

// sigCases are signatures to check: valid ones by three keys, broken ones (a bit of R, of s, of the
// message; s not canonical), and the small-order cases ZIP-215 decides:
// small-order keys and R with s = 0, canonical and not.
func sigCases(t *testing.T) (names []string, cs []sigCheck) {
	add := func(name string, pub, msg, sig []byte) {
		names = append(names, name)
		cs = append(cs, sigCheck{pub: pub, msg: msg, sig: sig})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var seed [32]byte
	for k := range 3 {
		seed[0] = byte(k)
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		for i := range 6 {
			msg := []byte(fmt.Sprintf("message %d %d %d", k, i, rng.Uint64()))
			sig := ed25519.Sign(priv, msg)
			add(fmt.Sprintf("key %d valid %d", k, i), pub, msg, sig)
			bad := append([]byte(nil), sig...)
			bad[i] ^= 1 << (i % 8)
			add(fmt.Sprintf("key %d R flipped %d", k, i), pub, msg, bad)
			bad = append([]byte(nil), sig...)
			bad[32+i] ^= 1
			add(fmt.Sprintf("key %d s flipped %d", k, i), pub, msg, bad)
			add(fmt.Sprintf("key %d other message %d", k, i), pub, append(msg, '!'), sig)
		}
		// s + L: not canonical.
		msg := []byte("s plus L")
		sig := ed25519.Sign(priv, msg)
		l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
		bad := append([]byte(nil), sig...)
		carry := 0
		for i := range 32 {
			v := int(bad[32+i]) + int(l[i]) + carry
			bad[32+i], carry = byte(v), v>>8
		}
		add(fmt.Sprintf("key %d s+L", k), pub, msg, bad)
	}
	// The eight small-order points, canonical, and two non-canonical
	// encodings of them.
	small := []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	}
	for i, a := range small {
		for j, r := range small {
			if (i+j)%3 != 0 {
				continue
			}
			pub, _ := hex.DecodeString(a)
			rb, _ := hex.DecodeString(r)
			sig := append(rb, make([]byte, 32)...)
			add(fmt.Sprintf("small A %d R %d", i, j), pub, []byte("small"), sig)
		}
	}
	return names, cs
}

// TestAuditBatchMatchesSingle: the audit's batch check, which merges the
// terms of repeated keys, passes a batch exactly when every signature in
// it passes ed25519consensus.Verify, on random batches of the cases; and
// verifySigChecks gives each signature single verification's verdict.
func TestAuditBatchMatchesSingle(t *testing.T) {
	names, cs := sigCases(t)
	single := make([]bool, len(cs))
	nValid := 0
	for i, c := range cs {
		single[i] = ed25519consensus.Verify(c.pub, c.msg, c.sig)
		if single[i] {
			nValid++
		}
	}
	t.Logf("%d cases, %d valid", len(cs), nValid)
	if nValid == 0 || nValid == len(cs) {
		t.Fatalf("%d of %d cases valid: the cases test nothing", nValid, len(cs))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 400 {
		n := 2 + rng.IntN(40)
		idx := make([]int, n)
		batch := make([]sigCheck, n)
		oks := make([]bool, n)
		want := true
		for k := range idx {
			// Mostly valid cases, so that many batches pass.
			i := rng.IntN(len(cs))
			for round%2 == 0 && !single[i] {
				i = rng.IntN(len(cs))
			}
			idx[k], batch[k] = i, cs[i]
			batch[k].ok = &oks[k]
			want = want && single[i]
		}
		if got := batchVerify(batch); got != want {
			t.Fatalf("round %d: batch %v, every single %v (%v)", round, got, want, idx)
		}
		verifySigChecks(batch)
		for k, i := range idx {
			if oks[k] != single[i] {
				t.Fatalf("round %d: %s: %v, single %v", round, names[i], oks[k], single[i])
			}
		}
	}
}
