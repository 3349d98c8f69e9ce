package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Dir: t.TempDir(), Peers: 5, Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"A local network of 5 peers", "a card with one changed character is refused",
		"no peer's disk holds a byte of plaintext", "imported byte-identical", "Dr Bob is denied",
		"The accounting of disclosures", "every signature, chain and access decision checks out",
		"records restored from the network", "every step behaved as it should",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("narration lacks %q", want)
		}
	}
}

// With no shared data at hand the demo uses its built-in bundle.
func TestRunBuiltIn(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Dir: t.TempDir(), DataDir: BuiltIn, Peers: 4, Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "built-in sample bundle") {
		t.Error("the built-in record was not used")
	}
}
