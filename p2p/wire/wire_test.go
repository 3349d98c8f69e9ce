package wire_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/medwallet/medwallet/p2p/wire"
)

const testProto = "/medwallet/wire-test/1.0.0"

// streamMemory is the tight per-stream memory limit of the reading host.
const streamMemory = 64 << 10

// newHost starts a loopback host; a tight one allows each stream only
// streamMemory bytes.
func newHost(t *testing.T, tight bool) host.Host {
	t.Helper()
	opts := []libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay()}
	if tight {
		limits := rcmgr.PartialLimitConfig{
			Stream: rcmgr.ResourceLimits{Memory: streamMemory},
		}.Build(rcmgr.DefaultLimits.AutoScale())
		mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, libp2p.ResourceManager(mgr))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

type result struct {
	frame      []byte
	err        error
	allocated  uint64 // bytes allocated by the process while reading
	memoryHeld int64  // the stream scope's reserved memory after release
}

// TestFrameOverScope sends frames to a host whose streams may reserve only
// streamMemory bytes: a frame within the protocol's cap but over the scope
// is refused before its bytes are allocated, and a frame within both is
// read and its reservation released.
func TestFrameOverScope(t *testing.T) {
	const protoCap = 512 << 20 // the protocol's own cap is generous
	tests := []struct {
		name    string
		claim   int // what the length prefix says
		send    int // bytes actually sent after it
		wantErr error
	}{
		{"within the scope", 1 << 10, 1 << 10, nil},
		{"over the scope", 256 << 20, 0, network.ErrResourceLimitExceeded},
		{"over the protocol cap", protoCap + 1, 0, wire.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, client := newHost(t, true), newHost(t, false)
			got := make(chan result, 1)
			server.SetStreamHandler(testProto, func(s network.Stream) {
				defer s.Reset()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b, release, err := wire.ReadFrame(s, bufio.NewReader(s), protoCap)
				runtime.ReadMemStats(&after)
				r := result{frame: b, err: err, allocated: after.TotalAlloc - before.TotalAlloc}
				if err == nil {
					release()
				}
				r.memoryHeld = s.Scope().Stat().Memory
				got <- r
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
				t.Fatal(err)
			}
			s, err := client.NewStream(ctx, server.ID(), testProto)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Reset()
			// The prefix, then only tc.send bytes: a reader that allocated
			// what the prefix claims would wait for the rest, not fail.
			msg := binary.AppendUvarint(nil, uint64(tc.claim))
			msg = append(msg, make([]byte, tc.send)...)
			if _, err := s.Write(msg); err != nil {
				t.Fatal(err)
			}
			var r result
			select {
			case r = <-got:
			case <-ctx.Done():
				t.Fatal("the reader did not answer: it is waiting for bytes the prefix claimed")
			}
			if tc.wantErr == nil {
				if r.err != nil || len(r.frame) != tc.claim {
					t.Fatalf("read %d bytes, err %v; want %d bytes", len(r.frame), r.err, tc.claim)
				}
			} else {
				if !errors.Is(r.err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", r.err, tc.wantErr)
				}
				if r.allocated >= uint64(tc.claim)/2 {
					t.Fatalf("the reader allocated %d bytes for a refused %d-byte frame", r.allocated, tc.claim)
				}
			}
			if r.memoryHeld != 0 {
				t.Fatalf("the stream scope still holds %d bytes", r.memoryHeld)
			}
		})
	}
}
