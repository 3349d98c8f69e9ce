//go:build linux

package netbed_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/netbed"
)

// listenUDP opens a UDP socket on h, port 0 for any.
func listenUDP(t *testing.T, h *netbed.Host, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s: %v", h.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvFrom waits up to d for one datagram and returns its source, or
// false when none came.
func recvFrom(t *testing.T, c *net.UDPConn, d time.Duration) (netip.AddrPort, bool) {
	t.Helper()
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(d))
	_, from, err := c.ReadFromUDPAddrPort(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return netip.AddrPort{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return from, true
}

func send(t *testing.T, c *net.UDPConn, to netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte("netbed"), to); err != nil {
		t.Fatalf("sending to %v: %v", to, err)
	}
}

// TestBedNATs checks the bed itself: public hosts reach each other, LANs
// are not reachable from the internet, a cone NAT keeps one mapping per
// inside port whatever the destination, a symmetric NAT makes a new one
// per destination, and both drop what nobody inside asked for.
func TestBedNATs(t *testing.T) {
	b := netbed.New(t)
	s1, s2, stranger := b.Public("s1"), b.Public("s2"), b.Public("stranger")
	cone, sym := b.NAT("cone", netbed.Cone), b.NAT("sym", netbed.Symmetric)
	inCone, inSym := b.Behind(cone, "in-cone"), b.Behind(sym, "in-sym")

	l1, l2, ls := listenUDP(t, s1, 3478), listenUDP(t, s2, 3478), listenUDP(t, stranger, 3478)
	a1, a2 := netip.AddrPortFrom(s1.IP, 3478), netip.AddrPortFrom(s2.IP, 3478)

	// public to public
	send(t, l1, a2)
	if from, ok := recvFrom(t, l2, 5*time.Second); !ok || from != a1 {
		t.Fatalf("s1 to s2: got %v %v, want a datagram from %v", from, ok, a1)
	}

	// the internet has no route into a LAN
	if _, err := ls.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(inCone.IP, 4001)); err == nil {
		c := listenUDP(t, inCone, 4002)
		if _, ok := recvFrom(t, c, 300*time.Millisecond); ok {
			t.Fatal("a private address was reachable from the internet")
		}
	}

	for _, tc := range []struct {
		host *netbed.Host
		nat  *netbed.NAT
	}{{inCone, cone}, {inSym, sym}} {
		t.Run(tc.nat.Kind.String(), func(t *testing.T) {
			c := listenUDP(t, tc.host, 4001)
			send(t, c, a1)
			m1, ok := recvFrom(t, l1, 5*time.Second)
			if !ok {
				t.Fatal("s1 got nothing from behind the NAT")
			}
			send(t, c, a2)
			m2, ok := recvFrom(t, l2, 5*time.Second)
			if !ok {
				t.Fatal("s2 got nothing from behind the NAT")
			}
			t.Logf("%s NAT: %v seen by s1 as %v, by s2 as %v", tc.nat.Kind, c.LocalAddr(), m1, m2)
			if m1.Addr() != tc.nat.IP || m2.Addr() != tc.nat.IP {
				t.Fatalf("the NAT's outside address is %v, seen as %v and %v", tc.nat.IP, m1, m2)
			}
			switch tc.nat.Kind {
			case netbed.Cone:
				if m1.Port() != 4001 || m2.Port() != 4001 {
					t.Fatalf("cone NAT: port 4001 mapped to %d and %d, want it kept", m1.Port(), m2.Port())
				}
			case netbed.Symmetric:
				if m1.Port() == m2.Port() {
					t.Fatalf("symmetric NAT: one mapping (%d) for two destinations", m1.Port())
				}
			}
			// replies come in; a stranger sending to the mapping does not
			send(t, l1, m1)
			if from, ok := recvFrom(t, c, 5*time.Second); !ok || from != a1 {
				t.Fatalf("reply from s1: got %v %v", from, ok)
			}
			send(t, ls, m1)
			if from, ok := recvFrom(t, c, 300*time.Millisecond); ok {
				t.Fatalf("the NAT let in a datagram from %v nobody inside asked for", from)
			}
		})
	}
}
