package manifests

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
	"github.com/medwallet/medwallet/p2p/wire"
)

// serverEnv makes the test binary a manifests peer in its own process, so
// that its memory can be measured apart from the attackers'.
const serverEnv = "MEDWALLET_MANIFESTS_TEST_SERVER"

// runServer serves the protocol with the default limits on a loopback
// host, prints its address, and exits when its stdin closes.
func runServer(dir string) {
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := node.New(key, node.Options{Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st, err := boltstore.Open(filepath.Join(dir, "p.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	NewService(h, st, nil)
	fmt.Printf("%s/p2p/%s\n", h.Addrs()[0], h.ID())
	_, _ = io.Copy(io.Discard, os.Stdin)
	st.Close()
	h.Close()
	os.Exit(0)
}

// statusKiB reads a field (VmRSS, VmHWM) of a process's status in KiB.
func statusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// startServer starts the peer process and returns its address and pid.
func startServer(t *testing.T) (peer.AddrInfo, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the peer process did not start: %v", err)
	}
	ai, err := peer.AddrInfoFromString(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	return *ai, cmd.Process.Pid
}

func newStranger(t *testing.T, to peer.AddrInfo) host.Host {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := node.New(key, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Connect(context.Background(), to); err != nil {
		t.Fatal(err)
	}
	return h
}

// Strangers opening many manifest streams, each claiming an 8 MiB frame
// and sending all of it but the last byte, took a peer from 45 to 1273 MiB
// (before frames reserved memory, the resource manager still let each
// identity hold 16 MiB of them). Now each identity gets two streams, the
// frames the peer holds from everyone share one 64 MiB pool, the rest are
// answered busy before anything is allocated, and an honest client is
// served during the attack.
func TestManyLargeFramesStayBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("moves about 400 MiB over loopback; memory is not measurable under the race detector")
	}
	const (
		identities  = 40
		perIdentity = 4 // what a light client may open to one peer (p2p/node)
		frameSize   = 8 << 20
		boundMiB    = 200
	)
	srv, pid := startServer(t)
	before := statusKiB(t, pid, "VmRSS")
	body := make([]byte, frameSize-1) // never completes the frame
	var (
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		held, busy, resets int
	)
	var streams []network.Stream
	for range identities {
		h := newStranger(t, srv)
		for range perIdentity {
			s, err := h.NewStream(context.Background(), srv.ID, ID)
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				answer := make(chan bool, 1)
				go func() {
					var r response
					err := wire.Read(s, bufio.NewReader(s), 1<<10, &r)
					answer <- err == nil && r.Code == "busy"
					if err == nil {
						s.Reset() // stop sending into a refused stream
					}
				}()
				_ = s.SetWriteDeadline(time.Now().Add(20 * time.Second))
				_, err := s.Write(append(binary.AppendUvarint(nil, frameSize), body...))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					held++
				case <-answer:
					busy++
				default:
					resets++
				}
			}()
		}
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range streams {
			s.Reset()
		}
	})
	// An honest owner is served while the held frames are still held.
	_, honestKey, _ := ed25519.GenerateKey(nil)
	honest, err := node.New(honestKey, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := honest.Connect(ctx, srv); err != nil {
		t.Fatal(err)
	}
	id := consent.ID(honest.ID().String())
	rec := "00112233445566778899aabbccddeeff"
	if err := Put(ctx, honest, srv.ID, rec, id, []byte("manifest")); err != nil {
		t.Fatalf("an honest put during the attack: %v", err)
	}
	if cs, err := ListFor(ctx, honest, srv.ID, id, "", ""); err != nil || len(cs) != 1 {
		t.Fatalf("an honest list during the attack: %d copies, %v", len(cs), err)
	}
	peak := statusKiB(t, pid, "VmHWM")
	t.Logf("%d streams of %d MiB frames from %d identities: %d sent whole (not all at once: a stalled frame is reset after 10 s), %d answered busy, %d reset; peer RSS %d MiB before, peak %d MiB",
		identities*perIdentity, frameSize>>20, identities, held, busy, resets, before>>10, peak>>10)
	if grew := (peak - before) >> 10; grew > boundMiB {
		t.Fatalf("the peer's RSS grew by %d MiB, bound %d MiB", grew, boundMiB)
	}
}

// A stranger sending its request a byte every 2 s renewed nothing before
// (30 s for the whole stream) but may not hold it longer than the grace.
func TestSlowlorisRequestIsReset(t *testing.T) {
	ph, _ := newHost(t, "slow peer", true)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := NewService(ph, st, nil)
	defer svc.Close()
	eve, _ := newHost(t, "slow eve", false)
	if err := eve.Connect(context.Background(), peer.AddrInfo{ID: ph.ID(), Addrs: ph.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := eve.NewStream(context.Background(), ph.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := s.Write(binary.AppendUvarint(nil, 1<<20)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	reset := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, s)
		reset <- err
	}()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	limit := time.After(25 * time.Second)
	for {
		select {
		case err := <-reset:
			if err == nil || !errors.Is(err, network.ErrReset) {
				t.Logf("stream ended with %v", err)
			}
			t.Logf("request at a byte every 2 s: reset after %s", time.Since(start).Round(time.Millisecond))
			return
		case <-limit:
			t.Fatal("the peer still holds the stream after 25 s")
		case <-tick.C:
			_, _ = s.Write([]byte{'x'})
		}
	}
}
