package main

import (
	"os"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/medwallet/medwallet/p2p/netfile"
)

// cmdMkRelays writes a network file whose relays are the first TCP
// address of each address file: mkrelays OUT ADDRFILE...
func cmdMkRelays(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mkrelays OUT ADDRFILE...")
	}
	n := netfile.Network{Peers: []string{}}
	for _, f := range args[1:] {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		for _, line := range strings.Fields(string(b)) {
			if strings.Contains(line, "/tcp/") && !strings.Contains(line, "/p2p-circuit") {
				n.Relays = append(n.Relays, line)
				break
			}
		}
	}
	ts.Check(netfile.Write(ts.MkAbs(args[0]), n))
}
