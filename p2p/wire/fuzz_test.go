package wire_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/p2p/wire"
)

// memScope is a stream scope that only counts memory: all the frame
// reader uses.
type memScope struct {
	network.StreamScope
	limit, used int
}

func (m *memScope) ReserveMemory(n int, _ uint8) error {
	if m.used+n > m.limit {
		return network.ErrResourceLimitExceeded
	}
	m.used += n
	return nil
}

func (m *memScope) ReleaseMemory(n int) { m.used -= n }

type scoped struct{ s *memScope }

func (s scoped) Scope() network.StreamScope { return s.s }

var readFrameSeeds = [][]byte{
	{0}, {3, 'a', 'b', 'c'}, {0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	{0x81, 0x01}, {5, 'a'}, {2, 'h', 'i', 1, 'x'}, {0x41, 'a'},
}

// TestWriteFuzzSeeds writes the seed corpus of FuzzReadFrame under
// testdata/fuzz (checked in) when MEDWALLET_WRITE_FUZZ_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MEDWALLET_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set MEDWALLET_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReadFrame")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range readFrameSeeds {
		sum := sha256.Sum256(b)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(64)\n", b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%x", sum[:8])), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzReadFrame reads frames from arbitrary bytes: never more than the
// limit, never a reservation left behind, and a frame read back is what
// WriteFrame would have sent.
func FuzzReadFrame(f *testing.F) {
	for _, seed := range readFrameSeeds {
		f.Add(seed, uint16(64))
	}
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		sc := &memScope{limit: 256}
		br := bufio.NewReader(bytes.NewReader(in))
		for {
			b, release, err := wire.ReadFrame(scoped{sc}, br, int(limit))
			if err != nil {
				if sc.used != 0 {
					t.Fatalf("%d bytes still reserved after %v", sc.used, err)
				}
				return
			}
			if len(b) > int(limit) || sc.used != len(b) {
				t.Fatalf("frame of %d bytes, limit %d, %d reserved", len(b), limit, sc.used)
			}
			var out bytes.Buffer
			if err := wire.WriteFrame(&out, b); err != nil {
				t.Fatal(err)
			}
			if again, rel2, err := wire.ReadFrame(scoped{sc}, bufio.NewReader(&out), int(limit)); err != nil || !bytes.Equal(again, b) {
				t.Fatalf("frame does not round-trip: %v", err)
			} else {
				rel2()
			}
			release()
		}
	})
}
