package wire_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/p2p/wire"
)

// budget is a tight budget so the tests are quick: 64 KiB/s, 300 ms of
// grace and window, 5 s in all.
var budget = wire.Budget{Total: 5 * time.Second, Grace: 300 * time.Millisecond, MinRate: 64 << 10, Window: 300 * time.Millisecond}

// drip writes one byte to w every interval until stop is closed or a
// write fails.
func drip(w io.Writer, interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
		}
	}
}

func TestTransferRead(t *testing.T) {
	tests := []struct {
		name    string
		send    func(w net.Conn, stop <-chan struct{})
		b       wire.Budget
		want    error
		wantLen int
	}{
		{"fast sender", func(w net.Conn, _ <-chan struct{}) {
			w.Write(make([]byte, 1<<20))
			w.Close()
		}, budget, nil, 1 << 20},
		// A byte every 50 ms renewed an idle deadline forever; it is far
		// under the minimum rate.
		{"slowloris", func(w net.Conn, stop <-chan struct{}) { drip(w, 50*time.Millisecond, stop) }, budget, wire.ErrTooSlow, -1},
		{"silent", func(net.Conn, <-chan struct{}) {}, budget, wire.ErrTooSlow, -1},
		// No rate check: the overall deadline still ends it.
		{"past the deadline", func(w net.Conn, stop <-chan struct{}) { drip(w, 20*time.Millisecond, stop) },
			wire.Budget{Total: 300 * time.Millisecond}, wire.ErrDeadline, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				tc.send(b, stop)
			}()
			defer func() { close(stop); b.Close(); <-done }()
			start := time.Now()
			got, err := io.ReadAll(wire.NewTransfer(a, tc.b))
			took := time.Since(start)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.wantLen >= 0 && len(got) != tc.wantLen {
				t.Fatalf("read %d bytes, want %d", len(got), tc.wantLen)
			}
			if tc.want != nil && took > 3*time.Second {
				t.Fatalf("reset after %s; the bound is about a second", took)
			}
		})
	}
}

// A reader that is slow on its own side (a consumer reading several
// streams in step) is not a slow remote: only time blocked on the stream
// counts.
func TestTransferLocalPauses(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		defer b.Close()
		for range 5 {
			if _, err := b.Write(make([]byte, 1024)); err != nil {
				return
			}
		}
	}()
	tr := wire.NewTransfer(a, budget)
	buf := make([]byte, 1024)
	var n int
	for {
		// A local pause longer than the whole grace between reads (the
		// behaviour under test, not a synchronisation).
		time.Sleep(2 * budget.Grace)
		m, err := io.ReadFull(tr, buf)
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
	}
	if n != 5*1024 {
		t.Fatalf("read %d bytes", n)
	}
}

func TestTransferWrite(t *testing.T) {
	t.Run("slow reader", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // takes a byte every 50 ms
			defer close(done)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			one := make([]byte, 1)
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := b.Read(one); err != nil {
						return
					}
				}
			}
		}()
		defer func() { close(stop); a.Close(); <-done }()
		_, err := wire.NewTransfer(a, budget).Write(make([]byte, 1<<20))
		if !errors.Is(err, wire.ErrTooSlow) {
			t.Fatalf("err = %v, want ErrTooSlow", err)
		}
	})
	t.Run("fast reader", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		got := make(chan []byte, 1)
		go func() {
			buf, _ := io.ReadAll(b)
			got <- buf
		}()
		msg := bytes.Repeat([]byte("share"), 200<<10)
		if _, err := wire.NewTransfer(a, budget).Write(msg); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if !bytes.Equal(<-got, msg) {
			t.Fatal("bytes differ")
		}
	})
}

func TestSlots(t *testing.T) {
	s := wire.NewSlots(wire.Limit{PerRemote: 2, Total: 3})
	alice, bob, carol := peer.ID("alice"), peer.ID("bob"), peer.ID("carol")
	var rel []func()
	take := func(p peer.ID, want bool) {
		t.Helper()
		r, ok := s.Acquire(p)
		if ok != want {
			t.Fatalf("Acquire(%s) = %v, want %v", p, ok, want)
		}
		if ok {
			rel = append(rel, r)
		}
	}
	take(alice, true)
	take(alice, true)
	take(alice, false) // alice's own limit
	take(bob, true)
	take(carol, false) // the total
	rel[0]()
	rel[0]() // releasing twice frees one slot only
	take(carol, true)
	take(carol, false)
	if r, total := s.InUse(alice); r != 1 || total != 3 {
		t.Fatalf("InUse = %d, %d", r, total)
	}
}
