package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/smarthealth"
	"github.com/medwallet/medwallet/vault"
)

// shlServer is a SMART Health Link server written in the test from the
// specification: POST to the manifest URL with recipient and passcode
// (a bounded count of wrong passcodes), file locations served by GET, a
// U link's file served by GET, and a switch that revokes everything.
type shlServer struct {
	*httptest.Server
	mu        sync.Mutex
	passcode  string
	remaining int
	revoked   bool
	requests  int
	recipient string
	manifest  []map[string]string // files: contentType, embedded or location path
	files     map[string]string   // path -> JWE
}

func newSHLServer(t *testing.T) *shlServer {
	s := &shlServer{remaining: 3, files: map[string]string{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *shlServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.revoked {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == "/manifest" {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "POST JSON", http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			Recipient string `json:"recipient"`
			Passcode  string `json:"passcode"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Recipient == "" {
			http.Error(w, "recipient required", http.StatusBadRequest)
			return
		}
		s.recipient = req.Recipient
		if s.passcode != "" && req.Passcode != s.passcode {
			if s.remaining > 0 {
				s.remaining--
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]int{"remainingAttempts": s.remaining})
			return
		}
		var files []map[string]string
		for _, f := range s.manifest {
			out := map[string]string{"contentType": f["contentType"]}
			if f["embedded"] != "" {
				out["embedded"] = f["embedded"]
			} else {
				out["location"] = s.URL + f["location"]
			}
			files = append(files, out)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"files": files})
		return
	}
	jwe, ok := s.files[r.URL.Path]
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == "/direct" {
		s.recipient = r.URL.Query().Get("recipient")
	}
	w.Header().Set("Content-Type", "application/jose")
	w.Write([]byte(jwe))
}

func shlData(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "smart-health-links", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeLink(t *testing.T, l smarthealth.Link) string {
	t.Helper()
	s, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestImportSHLSpecExample: the specification's IPS example (a U link)
// decrypts to IPS_IG-bundle-01.json and is stored as an unsigned FHIR record.
func TestImportSHLSpecExample(t *testing.T) {
	ctx := context.Background()
	w := newRecordWallet(t)
	srv := newSHLServer(t)
	srv.files["/direct"] = strings.TrimSpace(string(shlData(t, "IPS_IG-bundle-01-enc.txt")))
	var details struct {
		Payload struct {
			Key, Flag, Label string
		} `json:"shlinkJsonPayload"`
	}
	if err := json.Unmarshal(shlData(t, "IPS_IG-bundle-01-shl-details.json"), &details); err != nil {
		t.Fatal(err)
	}
	key, err := smarthealth.ParseKey(details.Payload.Key)
	if err != nil {
		t.Fatal(err)
	}
	link := encodeLink(t, smarthealth.Link{URL: srv.URL + "/direct", Key: key, Flag: details.Payload.Flag, Label: details.Payload.Label})
	res, err := w.ImportSHL(ctx, SHLImportOptions{Link: "https://viewer.example/#" + link, Client: srv.Client(), Recipient: "Dr\nBob"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.recipient != "DrBob" {
		t.Fatalf("recipient %q sent, want it without control characters", srv.recipient)
	}
	if len(res.Files) != 1 || len(res.Files[0].Records) != 1 {
		t.Fatalf("result %+v", res)
	}
	rec := res.Files[0].Records[0]
	if p := rec.Record.Metadata.Provenance; p == nil || p.Status != vault.ProvenanceUnsigned || p.Issuer != srv.URL || rec.Record.Metadata.Format != vault.FormatFHIR {
		t.Fatalf("metadata %+v", rec.Record.Metadata)
	}
	var got bytes.Buffer
	if _, err := w.GetRecord(ctx, rec.Record.ID, &got, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(got.Bytes()), bytes.TrimSpace(shlData(t, "IPS_IG-bundle-01.json"))) {
		t.Fatal("the stored record is not IPS_IG-bundle-01.json")
	}
}

// TestImportSHLManifest: a P link with an expiry, its manifest served by
// POST, one embedded FHIR file, one SMART Health Card file at a location
// and one file of a type the wallet does not import.
func TestImportSHLManifest(t *testing.T) {
	ctx := context.Background()
	w := newRecordWallet(t)
	cardsDir := filepath.Join(testutil.SharedData(t), "smart-health-cards")
	srv := newSHLServer(t)
	srv.passcode = "1234"
	key, err := smarthealth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ips := bytes.TrimSpace(shlData(t, "IPS_IG-bundle-01.json"))
	fhirJWE, err := smarthealth.Encrypt(key, ips, smarthealth.EncryptOptions{ContentType: smarthealth.ContentFHIR, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	cardFile, err := os.ReadFile(filepath.Join(cardsDir, "example-00-e-file.smart-health-card"))
	if err != nil {
		t.Fatal(err)
	}
	cardJWE, err := smarthealth.Encrypt(key, cardFile, smarthealth.EncryptOptions{ContentType: smarthealth.ContentCard})
	if err != nil {
		t.Fatal(err)
	}
	apiJWE, _ := smarthealth.Encrypt(key, []byte(`{"aud":"x"}`), smarthealth.EncryptOptions{ContentType: smarthealth.ContentAPIAccess})
	srv.files["/file/card"] = cardJWE
	srv.files["/file/api"] = apiJWE
	srv.manifest = []map[string]string{
		{"contentType": smarthealth.ContentFHIR, "embedded": fhirJWE},
		{"contentType": smarthealth.ContentCard, "location": "/file/card"},
		{"contentType": smarthealth.ContentAPIAccess, "location": "/file/api"},
	}
	link := encodeLink(t, smarthealth.Link{URL: srv.URL + "/manifest", Key: key, Flag: "P",
		Exp: time.Now().Add(time.Hour).Truncate(time.Second), Label: "summary"})
	opts := SHLImportOptions{Link: link, Client: srv.Client()}
	count := func() int {
		recs, err := w.ListRecords(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}

	// No passcode: refused before any request.
	if _, err := w.ImportSHL(ctx, opts); !errors.Is(err, ErrInvalid) || srv.requests != 0 {
		t.Fatalf("without a passcode: %v after %d requests", err, srv.requests)
	}
	// A wrong passcode: the server's refusal, with the attempts left.
	opts.Passcode = "0000"
	var lre *LinkRefusedError
	if _, err := w.ImportSHL(ctx, opts); !errors.As(err, &lre) || !errors.Is(err, ErrDenied) || lre.Remaining != 2 {
		t.Fatalf("wrong passcode: %v", err)
	}
	// The right passcode, but the card's issuer is not trusted: refused
	// whole, nothing stored.
	opts.Passcode = "1234"
	var ce *CardError
	if _, err := w.ImportSHL(ctx, opts); !errors.As(err, &ce) || !errors.Is(err, smarthealth.ErrUnknownIssuer) || count() != 0 {
		t.Fatalf("untrusted card: %v, %d records", err, count())
	}
	if _, err := w.AddIssuer(ctx, AddIssuerOptions{Source: filepath.Join(cardsDir, "issuer-jwks.json"), Name: "spec",
		ISS: "https://spec.smarthealth.cards/examples/issuer"}); err != nil {
		t.Fatal(err)
	}
	res, err := w.ImportSHL(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if srv.recipient != "Alice" {
		t.Fatalf("recipient %q, want the wallet's name", srv.recipient)
	}
	if len(res.Files) != 3 || len(res.Files[0].Records) != 1 || len(res.Files[1].Records) != 1 || res.Files[2].Skipped == "" {
		t.Fatalf("files %+v", res.Files)
	}
	if p := res.Files[1].Records[0].Provenance; p.Status != vault.ProvenanceVerified || p.Via != "smart-health-link" || p.IssuerName != "spec" {
		t.Fatalf("card provenance %+v", p)
	}
	var got bytes.Buffer
	if _, err := w.GetRecord(ctx, res.Files[0].Records[0].Record.ID, &got, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), ips) {
		t.Fatal("the FHIR file differs")
	}
	if count() != 2 {
		t.Fatalf("%d records, want 2", count())
	}

	// Revoked by its server: not found.
	srv.revoked = true
	if _, err := w.ImportSHL(ctx, opts); !errors.As(err, &lre) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked: %v", err)
	}
	// Expired: refused before any request.
	srv.requests = 0
	opts.Link = encodeLink(t, smarthealth.Link{URL: srv.URL + "/manifest", Key: key, Flag: "P", Exp: time.Now().Add(-time.Minute).Truncate(time.Second)})
	if _, err := w.ImportSHL(ctx, opts); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "expired") || srv.requests != 0 {
		t.Fatalf("expired: %v after %d requests", err, srv.requests)
	}
	// Another key opens nothing.
	srv.revoked = false
	other, _ := smarthealth.NewKey()
	opts.Link = encodeLink(t, smarthealth.Link{URL: srv.URL + "/manifest", Key: other, Flag: "P"})
	if _, err := w.ImportSHL(ctx, opts); !errors.Is(err, ErrVerify) || !errors.Is(err, smarthealth.ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
	if count() != 2 {
		t.Fatalf("%d records after the refusals, want 2", count())
	}
}
