package vault_test

import (
	"bytes"
	"testing"

	"github.com/medwallet/medwallet/vault"
)

// FuzzDetectSHC: detection never panics, and IsSmartHealthCard agrees with
// Detect on inputs shorter than the sniffed prefix. The seed corpus is in
// testdata/fuzz/FuzzDetectSHC.
func FuzzDetectSHC(f *testing.F) {
	f.Add([]byte(`{"verifiableCredential":["eyJhbGciOiJFUzI1NiJ9.e30.AA"]}`))
	f.Add([]byte(`{"verifiableCredential":[],"resourceType":"Patient"}`))
	f.Add([]byte("shc:/1/2/5676\nshc:/2/2/5676\n"))
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.AA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := vault.Detect(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if got := vault.IsSmartHealthCard(data); len(data) < vault.SniffSize && got != (md.Format == vault.FormatSHC) {
			t.Fatalf("IsSmartHealthCard %v, Detect %q", got, md.Format)
		}
	})
}
