package wallet

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
)

// TestIssuerTrustDirectory: add from a file and from a URL (fetched once
// from ISS/.well-known/jwks.json over HTTPS), list, refuse duplicates,
// remove.
func TestIssuerTrustDirectory(t *testing.T) {
	ctx := context.Background()
	w := newRecordWallet(t)
	jwks, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "smart-health-cards", "issuer-jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	fetched := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/issuer/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		fetched++
		w.Write(jwks)
	}))
	defer srv.Close()

	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddIssuer(ctx, AddIssuerOptions{Source: file, Name: "spec"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a file without iss: %v", err)
	}
	if _, err := w.AddIssuer(ctx, AddIssuerOptions{Source: file, Name: "spec", ISS: "http://issuer.example"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an http iss: %v", err)
	}
	if _, err := w.AddIssuer(ctx, AddIssuerOptions{Source: file, Name: "../x", ISS: "https://issuer.example"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a name with a slash: %v", err)
	}
	info, err := w.AddIssuer(ctx, AddIssuerOptions{Source: file, Name: "spec", ISS: "https://spec.smarthealth.cards/examples/issuer/"})
	if err != nil {
		t.Fatal(err)
	}
	if info.ISS != "https://spec.smarthealth.cards/examples/issuer" || len(info.Kids) != 2 {
		t.Fatalf("%+v", info)
	}
	if _, err := w.AddIssuer(ctx, AddIssuerOptions{Source: file, Name: "SPEC", ISS: "https://other.example"}); !errors.Is(err, ErrExists) {
		t.Fatalf("same name: %v", err)
	}
	if _, err := w.AddIssuer(ctx, AddIssuerOptions{Source: file, Name: "again", ISS: "https://spec.smarthealth.cards/examples/issuer"}); !errors.Is(err, ErrExists) {
		t.Fatalf("same iss: %v", err)
	}
	// From the issuer's URL: the keys come from its /.well-known/jwks.json.
	online, err := w.AddIssuer(ctx, AddIssuerOptions{Source: srv.URL + "/issuer", Name: "online", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if online.ISS != srv.URL+"/issuer" || fetched != 1 {
		t.Fatalf("%+v, fetched %d", online, fetched)
	}
	if _, err := w.AddIssuer(ctx, AddIssuerOptions{Source: srv.URL + "/nothing", Name: "none", Client: srv.Client()}); err == nil {
		t.Fatal("a URL without keys was added")
	}
	list, err := w.Issuers(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "online" || list[1].Name != "spec" {
		t.Fatalf("%+v %v", list, err)
	}
	trust, _, err := w.readTrust()
	if err != nil {
		t.Fatal(err)
	}
	if name, _, err := trust.FindKey("https://spec.smarthealth.cards/examples/issuer", "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s"); err != nil || name != "spec" {
		t.Fatalf("FindKey: %q %v", name, err)
	}
	if _, err := w.RemoveIssuer(ctx, "Spec"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RemoveIssuer(ctx, "spec"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed twice: %v", err)
	}
}
