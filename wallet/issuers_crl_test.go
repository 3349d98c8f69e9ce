package wallet

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/smarthealth"
	"github.com/medwallet/medwallet/vault"
)

// The spec's example key 3Kfdg-… has crlVersion 1; its example 03 carries
// rid vwAjHdarZuc and example 00 rid MKyCxh7p6uQ. The lists are written
// from the spec (the published list is not in the shared data).
const (
	exampleKid  = "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s"
	exampleList = `{"kid":"3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s","method":"rid","ctr":1,"rids":["vwAjHdarZuc"]}`
)

// TestIssuerRevocationLists: adding an issuer online fetches the list of
// each key with a crlVersion; a card on it is refused as revoked (or,
// with --unverified, stored marked so); a card of the same key not on it
// is stored as checked; a card verified with no list held says the list
// is missing; an older list or one for another key is refused.
func TestIssuerRevocationLists(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(testutil.SharedData(t), "smart-health-cards")
	jwks, err := os.ReadFile(filepath.Join(dir, "issuer-jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/issuer/.well-known/jwks.json":
			w.Write(jwks)
		case "/issuer/.well-known/crl/" + exampleKid + ".json":
			w.Write([]byte(exampleList))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	card := func(ex string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "example-"+ex+"-e-file.smart-health-card"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Before example 03's expiry, so that only revocation can refuse it.
	cfg := memConfig(t)
	cfg.Now = func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }
	w, err := Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	// The cards name the spec's issuer URL; the test server stands in
	// for it, so the keys are fetched from the server under that iss.
	const iss = "https://spec.smarthealth.cards/examples/issuer"
	info, err := w.AddIssuer(ctx, AddIssuerOptions{Source: srv.URL + "/issuer", ISS: iss, Name: "spec", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Lists) != 1 || info.Lists[0].Kid != exampleKid || info.Lists[0].Ctr != 1 || info.Lists[0].RIDs != 1 || info.Lists[0].Stale() {
		t.Fatalf("lists after an online add: %+v", info.Lists)
	}
	local := SHCImportOptions{AddRecordOptions: AddRecordOptions{RecordOptions: RecordOptions{Local: true}}}

	_, err = w.ImportSHC(ctx, bytes.NewReader(card("03")), local)
	var ce *CardError
	if !errors.Is(err, smarthealth.ErrRevoked) || !errors.As(err, &ce) {
		t.Fatalf("a listed card: %v, want a CardError for ErrRevoked", err)
	}
	unv := local
	unv.Unverified = true
	res, err := w.ImportSHC(ctx, bytes.NewReader(card("03")), unv)
	if err != nil || len(res) != 1 {
		t.Fatal(err)
	}
	if p := res[0].Provenance; p.Status != vault.ProvenanceUnverified || !strings.Contains(p.Problem, "revoked") {
		t.Fatalf("a listed card with --unverified: %+v", p)
	}
	res, err = w.ImportSHC(ctx, bytes.NewReader(card("00")), local)
	if err != nil || len(res) != 1 {
		t.Fatal(err)
	}
	if p := res[0].Provenance; p.Status != vault.ProvenanceVerified || p.Revocation != smarthealth.RevocationChecked {
		t.Fatalf("an unlisted card of the key: %+v", p)
	}
	// Example 01's key has no crlVersion: nothing to check.
	res, err = w.ImportSHC(ctx, bytes.NewReader(card("01")), local)
	if err != nil || res[0].Provenance.Revocation != "" {
		t.Fatalf("a key without a list: %v %+v", err, res)
	}

	// A list is only replaced by one at least as new, for a key of the issuer.
	older := filepath.Join(t.TempDir(), "older.json")
	if err := os.WriteFile(older, []byte(strings.Replace(exampleList, `"ctr":1`, `"ctr":2`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err = w.UpdateIssuerCRL(ctx, "spec", older, nil); err != nil || info.Lists[0].Ctr != 2 {
		t.Fatalf("a newer list: %v %+v", err, info)
	}
	if _, err := w.UpdateIssuerCRL(ctx, "spec", "", srv.Client()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fetching list 1 over list 2: %v", err)
	}
	other := filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(other, []byte(strings.Replace(exampleList, exampleKid, "AAAA", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.UpdateIssuerCRL(ctx, "spec", other, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a list for another key: %v", err)
	}
	if _, err := w.UpdateIssuerCRL(ctx, "nobody", other, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown issuer: %v", err)
	}

	// Trusted from a file, with no list held: verified, list missing.
	cfg2 := memConfig(t)
	cfg2.Now = cfg.Now
	w2, err := Init(cfg2, "Bob", "patient")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err = w2.AddIssuer(ctx, AddIssuerOptions{Source: file, ISS: iss, Name: "spec"}); err != nil || len(info.Lists) != 1 || !info.Lists[0].Stale() {
		t.Fatalf("a file add: %v %+v", err, info)
	}
	res, err = w2.ImportSHC(ctx, bytes.NewReader(card("03")), local)
	if err != nil || res[0].Provenance.Revocation != smarthealth.RevocationMissing {
		t.Fatalf("no list held: %v %+v", err, res)
	}
}
