package vault_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

// TestDetectSHC: SMART Health Cards in each form are a format of their
// own, not binary or plain JSON; FHIR that mentions the word stays FHIR.
func TestDetectSHC(t *testing.T) {
	dir := filepath.Join(testutil.SharedData(t), "smart-health-cards")
	for _, name := range []string{"example-00-d-jws.txt", "example-01-e-file.smart-health-card",
		"example-02-f-qr-code-numeric-value-1.txt", "example-03-f-qr-code-numeric-value-0.txt"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		md, err := vault.Detect(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if md.Format != vault.FormatSHC || md.MediaType != vault.MediaTypeSHC || !vault.IsSmartHealthCard(data) {
			t.Errorf("%s: format %q %q", name, md.Format, md.MediaType)
		}
	}
	for in, want := range map[string]string{
		`{"resourceType":"Bundle","type":"collection","entry":[],"note":"verifiableCredential"}`: vault.FormatFHIR,
		"eyJ not a jws":    vault.FormatBinary,
		"shc:/hello":       vault.FormatBinary,
		"eyJa.b":           vault.FormatBinary,
		`{"other":"json"}`: vault.FormatBinary,
	} {
		md, _ := vault.Detect(strings.NewReader(in))
		if md.Format != want {
			t.Errorf("%q: %q, want %q", in, md.Format, want)
		}
	}
}

// TestProvenanceRoundTrip: the provenance given to Seal is kept in the
// signed, encrypted manifest.
func TestProvenanceRoundTrip(t *testing.T) {
	o := newOwner(t)
	p := &vault.Provenance{Source: "smart-health-card", Via: "qr", Issuer: "https://issuer.test", IssuerName: "test",
		Kid: "k1", Status: vault.ProvenanceUnverified, Problem: "the issuer is not trusted", IssuedAt: 1700000000}
	m, err := vault.Seal(context.Background(), strings.NewReader(`{"resourceType":"Bundle","type":"collection"}`), memstore.New(),
		vault.SealOptions{Owner: o.pub, Provenance: p})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := m.Encrypt(o.priv, o.age.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	back, err := vault.DecryptManifest(enc, o.pub, o.age)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Metadata.Provenance; got == nil || *got != *p || back.Metadata.Format != vault.FormatFHIR {
		t.Fatalf("provenance %+v, format %q", got, back.Metadata.Format)
	}
}
