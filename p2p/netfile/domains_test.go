package netfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestDomains(t *testing.T) {
	const id = "12D3KooWFuPHHvpowyVT5GASzZdv3zGLdSut6RU9HKdZryRTKzoj"
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := Write(good, Network{Peers: []string{addr}, Domains: map[string]Domain{id: {Site: "a", Operator: "op"}}}); err != nil {
		t.Fatal(err)
	}
	n, err := Read(good)
	if err != nil {
		t.Fatal(err)
	}
	d, err := n.PeerDomains()
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := peer.Decode(id)
	if d[pid] != (Domain{Site: "a", Operator: "op"}) {
		t.Fatalf("domains %v", d)
	}
	for name, body := range map[string]string{
		"key":  `{"version":1,"peers":["` + addr + `"],"domains":{"clinic":{"site":"a"}}}`,
		"long": `{"version":1,"peers":["` + addr + `"],"domains":{"` + id + `":{"site":"` + strings.Repeat("x", MaxDomainName+1) + `"}}}`,
	} {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p); err == nil {
			t.Errorf("%s: read a bad domains member", name)
		}
	}
}

func TestAgentDomain(t *testing.T) {
	a := AgentWithDomain("medwallet-peer", Domain{Site: "clinic-a", Operator: "acme"})
	if a != "medwallet-peer site=clinic-a operator=acme" {
		t.Fatalf("agent %q", a)
	}
	if d := AgentDomain(a); d != (Domain{Site: "clinic-a", Operator: "acme"}) {
		t.Fatalf("domain %+v", d)
	}
	if d := AgentDomain("medwallet-peer site=bad/name operator="); d != (Domain{}) {
		t.Fatalf("read invalid names: %+v", d)
	}
	if ValidDomainName("a b") == nil || ValidDomainName("") == nil || ValidDomainName(strings.Repeat("x", MaxDomainName+1)) == nil {
		t.Fatal("accepted a bad name")
	}
}
