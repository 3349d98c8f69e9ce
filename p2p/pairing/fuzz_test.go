package pairing

import (
	"strings"
	"testing"
)

// FuzzParseCode: a typed or pasted code is text from outside. ParseCode
// never panics, and a code it accepts prints back to a text it parses
// to the same secret and device.
func FuzzParseCode(f *testing.F) {
	const id = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	words := "abandon-abandon-abandon-abandon-abandon-abandon-abandon-abandon-abandon-abandon-abandon-about"
	for _, s := range []string{
		words + "@/ip4/127.0.0.1/tcp/4001/p2p/" + id,
		strings.ToUpper(words) + "@/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + id + ",/ip6/::1/tcp/1/p2p/" + id,
		strings.ReplaceAll(words, "-", " ") + " @ /p2p/" + id,
		words + "@",
		"@/p2p/" + id,
		"zoo@/p2p/x",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			return
		}
		again, err := ParseCode(c.String())
		if err != nil {
			t.Fatalf("%q parsed, but its own form %q does not: %v", s, c.String(), err)
		}
		if again.Secret != c.Secret || again.Peer.ID != c.Peer.ID {
			t.Fatalf("%q: round trip changed the code", s)
		}
	})
}
