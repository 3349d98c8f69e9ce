package netfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const addr = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWFuPHHvpowyVT5GASzZdv3zGLdSut6RU9HKdZryRTKzoj"

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	if err := Write(path, Network{Peers: []string{addr, addr}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	n, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if n.Version != Version || len(n.Peers) != 2 || n.Peers[0] != addr {
		t.Fatalf("read back %+v", n)
	}
	ais, err := ParseAddrs(n.Peers)
	if err != nil || len(ais) != 2 || ais[0].ID.String() != addr[strings.LastIndex(addr, "/")+1:] {
		t.Fatalf("ParseAddrs: %v, %v", ais, err)
	}
}

func TestReadRefuses(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not JSON", "peers", "is not a medwallet network file"},
		{"another version", `{"version": 2, "peers": []}`, "is not a medwallet network file"},
		{"no peer ID", `{"version": 1, "peers": ["/ip4/127.0.0.1/tcp/4001"]}`, "has no /p2p/ID"},
		{"bad multiaddr", `{"version": 1, "peers": ["127.0.0.1:4001"]}`, "bad multiaddr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), Name)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), Name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want os.ErrNotExist", err)
	}
}

func TestRelays(t *testing.T) {
	const relay = "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWFuPHHvpowyVT5GASzZdv3zGLdSut6RU9HKdZryRTKzoj"
	const relayQUIC = "/ip4/203.0.113.7/udp/4001/quic-v1/p2p/12D3KooWFuPHHvpowyVT5GASzZdv3zGLdSut6RU9HKdZryRTKzoj"
	const private = relay + "/p2p-circuit/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	dir := t.TempDir()
	path := filepath.Join(dir, Name)
	if err := Write(path, Network{Peers: []string{relay, private}, Relays: []string{relay, relayQUIC}}); err != nil {
		t.Fatal(err)
	}
	n, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Relays) != 2 || len(n.Peers) != 2 {
		t.Fatalf("read back %+v", n)
	}
	ais, err := ParseAddrs(n.Peers)
	if err != nil {
		t.Fatal(err)
	}
	if got := ais[1].ID.String(); got != "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo" || !strings.HasSuffix(ais[1].Addrs[0].String(), "/p2p-circuit") {
		t.Fatalf("relay address of a private peer parsed as %v", ais[1])
	}
	rs, err := ParseRelays(n.Relays)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || len(rs[0].Addrs) != 2 {
		t.Fatalf("relays %v: want one relay with two addresses", rs)
	}
	// A relay behind a relay is refused, in the file too.
	if _, err := ParseRelays([]string{private}); err == nil {
		t.Fatal("a /p2p-circuit relay was accepted")
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version":1,"peers":[],"relays":["`+private+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), "relays") {
		t.Fatalf("Read of a file with a relayed relay: %v", err)
	}
	// A file without relays is written without the member.
	if err := Write(path, Network{Peers: []string{relay}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "relays") {
		t.Fatalf("empty relays written: %s", b)
	}
}
