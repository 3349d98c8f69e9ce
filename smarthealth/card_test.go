package smarthealth_test

import (
	"bytes"
	"compress/flate"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/smarthealth"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors (the minted test cards)")

const exampleISS = "https://spec.smarthealth.cards/examples/issuer"

func shcDir(t *testing.T) string {
	return filepath.Join(testutil.SharedData(t), "smart-health-cards")
}

func exampleTrust(t *testing.T) smarthealth.Trust {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shcDir(t), "issuer-jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, skipped, err := smarthealth.ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || skipped != 0 {
		t.Fatalf("%d keys, %d skipped; want 2, 0", len(keys), skipped)
	}
	return smarthealth.Trust{{Name: "spec-example", ISS: exampleISS, Keys: keys}}
}

// TestExamples verifies every example of the spec in each of its forms
// (bare JWS, .smart-health-card file, numeric QR chunks) against the
// issuer's JWKS, and checks the Bundle is the expanded payload's.
func TestExamples(t *testing.T) {
	trust := exampleTrust(t)
	dir := shcDir(t)
	// Before example 03's exp (2025-05-07) and after every nbf (2024-05-07).
	at := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, ex := range []string{"00", "01", "02", "03"} {
		t.Run(ex, func(t *testing.T) {
			jws := strings.TrimSpace(read(t, filepath.Join(dir, "example-"+ex+"-d-jws.txt")))
			qrs, _ := filepath.Glob(filepath.Join(dir, "example-"+ex+"-f-qr-code-numeric-value-*.txt"))
			var qr []byte
			for i := len(qrs) - 1; i >= 0; i-- { // chunks in reverse order: order must not matter
				qr = append(qr, read(t, qrs[i])+"\n"...)
			}
			for form, input := range map[string][]byte{
				smarthealth.FormJWS:  []byte(jws + "\n"),
				smarthealth.FormFile: []byte(read(t, filepath.Join(dir, "example-"+ex+"-e-file.smart-health-card"))),
				smarthealth.FormQR:   qr,
			} {
				if got := smarthealth.DetectCard(input); got != form {
					t.Fatalf("DetectCard = %q, want %q", got, form)
				}
				jwss, err := smarthealth.ParseCards(input)
				if err != nil {
					t.Fatalf("%s: %v", form, err)
				}
				if len(jwss) != 1 || jwss[0] != jws {
					t.Fatalf("%s: got %d cards, or another JWS", form, len(jwss))
				}
			}
			card, err := smarthealth.ParseJWS(jws)
			if err != nil {
				t.Fatal(err)
			}
			v, err := card.Verify(trust, at)
			if err != nil {
				t.Fatal(err)
			}
			if v.IssuerName != "spec-example" || card.Issuer != exampleISS || card.FHIRVersion != "4.0.1" {
				t.Fatalf("verification %+v, issuer %q, FHIR %q", v, card.Issuer, card.FHIRVersion)
			}
			var expanded struct {
				VC struct {
					CredentialSubject struct {
						FHIRBundle json.RawMessage `json:"fhirBundle"`
					} `json:"credentialSubject"`
				} `json:"vc"`
			}
			if err := json.Unmarshal([]byte(read(t, filepath.Join(dir, "example-"+ex+"-b-jws-payload-expanded.json"))), &expanded); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, card.Bundle, expanded.VC.CredentialSubject.FHIRBundle) {
				t.Fatal("the Bundle differs from the expanded payload's")
			}
		})
	}
	// Example 03 expires on 2025-05-07: today it is refused as expired,
	// after its signature verified.
	card, err := smarthealth.ParseJWS(read(t, filepath.Join(dir, "example-03-d-jws.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := card.Verify(trust, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, smarthealth.ErrExpired) {
		t.Fatalf("example 03 in 2026: %v, want ErrExpired", err)
	}
}

// TestFlippedCharacter changes one character of an example card in each
// part of the JWS: every change fails, never verifies.
func TestFlippedCharacter(t *testing.T) {
	trust := exampleTrust(t)
	at := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	jws := strings.TrimSpace(read(t, filepath.Join(shcDir(t), "example-00-d-jws.txt")))
	dots := []int{strings.Index(jws, "."), strings.LastIndex(jws, ".")}
	for _, pos := range []int{5, dots[0] + 10, dots[0] + 200, dots[1] - 3, dots[1] + 5, len(jws) - 10} {
		b := []byte(jws)
		if b[pos] == 'A' {
			b[pos] = 'B'
		} else {
			b[pos] = 'A'
		}
		card, err := smarthealth.ParseJWS(string(b))
		if err != nil {
			if !errors.Is(err, smarthealth.ErrMalformed) {
				t.Fatalf("position %d: %v, want ErrMalformed", pos, err)
			}
			continue
		}
		if _, err := card.Verify(trust, at); err == nil {
			t.Fatalf("position %d: a changed card verified", pos)
		}
	}
	// The same flip through the numeric QR form.
	qr := smarthealth.EncodeQR(jws)
	b := []byte(qr)
	i := len("shc:/") + 2*(dots[0]+40)
	b[i+1] = '0' + (b[i+1]-'0'+1)%10
	jwss, err := smarthealth.ParseCards(b)
	var card *smarthealth.Card
	if err == nil {
		card, err = smarthealth.ParseJWS(jwss[0])
	}
	if err == nil {
		_, err = card.Verify(trust, at)
	}
	if err == nil {
		t.Fatal("a QR payload with one digit changed verified")
	}
}

// TestRefusals covers minted cards: expired, wrong type, not yet valid,
// unknown issuer or key, signed by another key.
func TestRefusals(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	iss := "https://issuer.test"
	signer := newSigner(t)
	other := newSigner(t)
	trust := smarthealth.Trust{{Name: "test", ISS: iss, Keys: []smarthealth.IssuerKey{signer.key(t)}}}
	bundle := `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"resource:0","resource":{"resourceType":"Patient","name":[{"family":"Test"}]}}]}`
	cases := []struct {
		name string
		jws  string
		want error
	}{
		{"valid", signer.mint(t, iss, now.Add(-time.Hour), time.Time{}, []string{smarthealth.VCTypeHealthCard}, bundle), nil},
		{"valid until tomorrow", signer.mint(t, iss, now.Add(-time.Hour), now.Add(24*time.Hour), []string{smarthealth.VCTypeHealthCard, "https://smarthealth.cards#immunization"}, bundle), nil},
		{"expired", signer.mint(t, iss, now.Add(-48*time.Hour), now.Add(-24*time.Hour), []string{smarthealth.VCTypeHealthCard}, bundle), smarthealth.ErrExpired},
		{"wrong type", signer.mint(t, iss, now.Add(-time.Hour), time.Time{}, []string{"VerifiableCredential", "https://example.org#other"}, bundle), smarthealth.ErrWrongType},
		{"not yet valid", signer.mint(t, iss, now.Add(time.Hour), time.Time{}, []string{smarthealth.VCTypeHealthCard}, bundle), smarthealth.ErrNotYetValid},
		{"unknown issuer", signer.mint(t, "https://other.test", now.Add(-time.Hour), time.Time{}, []string{smarthealth.VCTypeHealthCard}, bundle), smarthealth.ErrUnknownIssuer},
		{"unknown key", other.mint(t, iss, now.Add(-time.Hour), time.Time{}, []string{smarthealth.VCTypeHealthCard}, bundle), smarthealth.ErrUnknownKey},
		{"signed by another key under the trusted kid", other.mintAs(t, signer.kid(t), iss, now.Add(-time.Hour), time.Time{}, []string{smarthealth.VCTypeHealthCard}, bundle), smarthealth.ErrSignature},
		{"expired and forged: forged wins", other.mintAs(t, signer.kid(t), iss, now.Add(-48*time.Hour), now.Add(-time.Hour), []string{smarthealth.VCTypeHealthCard}, bundle), smarthealth.ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			card, err := smarthealth.ParseJWS(c.jws)
			if err != nil {
				t.Fatal(err)
			}
			_, err = card.Verify(trust, now)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if string(card.Bundle) != bundle {
					t.Fatal("bundle differs")
				}
				return
			}
			var ve *smarthealth.VerifyError
			if !errors.Is(err, c.want) || !errors.As(err, &ve) {
				t.Fatalf("error %v, want %v as a *VerifyError", err, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	signer := newSigner(t)
	good := signer.mint(t, "https://issuer.test", time.Unix(1, 0), time.Time{}, []string{smarthealth.VCTypeHealthCard}, `{"resourceType":"Bundle"}`)
	parts := strings.Split(good, ".")
	hdr := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) }
	bomb := deflate(t, bytes.Repeat([]byte(" "), smarthealth.MaxPayload+10))
	for name, in := range map[string]string{
		"two parts":      parts[0] + "." + parts[1],
		"alg none":       hdr(`{"alg":"none","zip":"DEF","kid":"k"}`) + "." + parts[1] + "." + parts[2],
		"no zip":         hdr(`{"alg":"ES256","kid":"k"}`) + "." + parts[1] + "." + parts[2],
		"no kid":         hdr(`{"alg":"ES256","zip":"DEF"}`) + "." + parts[1] + "." + parts[2],
		"short sig":      parts[0] + "." + parts[1] + "." + parts[2][:20],
		"not deflate":    parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("hello")) + "." + parts[2],
		"deflate bomb":   parts[0] + "." + base64.RawURLEncoding.EncodeToString(bomb) + "." + parts[2],
		"no bundle":      parts[0] + "." + base64.RawURLEncoding.EncodeToString(deflate(t, []byte(`{"iss":"x","vc":{"type":[]}}`))) + "." + parts[2],
		"no iss":         parts[0] + "." + base64.RawURLEncoding.EncodeToString(deflate(t, []byte(`{"vc":{"credentialSubject":{"fhirBundle":{}}}}`))) + "." + parts[2],
		"string nbf":     parts[0] + "." + base64.RawURLEncoding.EncodeToString(deflate(t, []byte(`{"iss":"x","nbf":"soon","vc":{"credentialSubject":{"fhirBundle":{}}}}`))) + "." + parts[2],
		"payload a list": parts[0] + "." + base64.RawURLEncoding.EncodeToString(deflate(t, []byte(`[1]`))) + "." + parts[2],
	} {
		if _, err := smarthealth.ParseJWS(in); !errors.Is(err, smarthealth.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	for name, in := range map[string]string{
		"empty file":        `{"verifiableCredential":[]}`,
		"file not json":     `{"verifiableCredential":[`,
		"qr odd digits":     "shc:/567",
		"qr letters":        "shc:/56ab",
		"qr out of range":   "shc:/9999",
		"qr missing chunk":  "shc:/1/3/5676\nshc:/3/3/5676",
		"qr chunk twice":    "shc:/1/2/5676\nshc:/1/2/5676",
		"qr bad index":      "shc:/0/2/5676\nshc:/2/2/5676",
		"qr mixed":          "shc:/5676\nshc:/2/2/5676",
		"jws with a space":  "eyJh bc.def.ghi",
		"nothing":           "hello",
		"qr not a card jws": smarthealth.EncodeQR("abc"),
	} {
		jwss, err := smarthealth.ParseCards([]byte(in))
		if err == nil {
			_, err = smarthealth.ParseJWS(jwss[0])
		}
		if !errors.Is(err, smarthealth.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestThumbprints(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(shcDir(t), "issuer-jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, _, err := smarthealth.ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	if keys[0].Kid != "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s" {
		t.Fatal(keys[0].Kid)
	}
	// A key whose kid is not its thumbprint, or not on the curve, is skipped.
	j := keys[0].JWK
	j.Kid = "something-else"
	bad := keys[0].JWK
	bad.Y = bad.X
	bad.Kid = smarthealth.Thumbprint(bad)
	doc, _ := json.Marshal(map[string]any{"keys": []any{j, bad, map[string]string{"kty": "RSA"}}})
	if _, skipped, err := smarthealth.ParseJWKS(doc); !errors.Is(err, smarthealth.ErrBadJWKS) || skipped != 3 {
		t.Fatalf("skipped %d, err %v", skipped, err)
	}
}

// TestVectors checks the minted vectors in testdata/vectors (used by the
// CLI scripts too) and, with -update, mints them again.
func TestVectors(t *testing.T) {
	dir := filepath.Join("testdata", "vectors")
	iss := "https://issuer.medwallet.test"
	if *update {
		s := newSigner(t)
		nbf := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		bundle := `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"resource:0","resource":{"resourceType":"Patient","name":[{"family":"Testcard","given":["Tess"]}],"birthDate":"1970-01-01"}},{"fullUrl":"resource:1","resource":{"resourceType":"Immunization","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"207"}]},"patient":{"reference":"resource:0"},"occurrenceDateTime":"2026-01-01"}}]}`
		hc := []string{smarthealth.VCTypeHealthCard}
		files := map[string]string{
			"valid.jws":   s.mint(t, iss, nbf, time.Time{}, hc, bundle),
			"expired.jws": s.mint(t, iss, nbf, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), hc, bundle),
			"wrongtype.jws": s.mint(t, iss, nbf, time.Time{},
				[]string{"VerifiableCredential", "https://example.org/credentials#other"}, bundle),
		}
		jwks, _ := json.MarshalIndent(map[string]any{"keys": []any{s.key(t).JWK}}, "", "  ")
		files["issuer-jwks.json"] = string(jwks) + "\n"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if !strings.HasSuffix(content, "\n") {
				content += "\n"
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys, _, err := smarthealth.ParseJWKS([]byte(read(t, filepath.Join(dir, "issuer-jwks.json"))))
	if err != nil {
		t.Fatal(err)
	}
	trust := smarthealth.Trust{{Name: "test", ISS: iss, Keys: keys}}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for name, want := range map[string]error{"valid.jws": nil, "expired.jws": smarthealth.ErrExpired, "wrongtype.jws": smarthealth.ErrWrongType} {
		card, err := smarthealth.ParseJWS(read(t, filepath.Join(dir, name)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := card.Verify(trust, now); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
}

// signer mints test cards with a fresh P-256 key.
type signer struct{ priv *ecdsa.PrivateKey }

func newSigner(t *testing.T) *signer {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{priv}
}

func (s *signer) key(t *testing.T) smarthealth.IssuerKey {
	t.Helper()
	raw, err := s.priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	j := smarthealth.JWK{Kty: "EC", Use: "sig", Alg: "ES256", Crv: "P-256",
		X: base64.RawURLEncoding.EncodeToString(raw[1:33]), Y: base64.RawURLEncoding.EncodeToString(raw[33:])}
	j.Kid = smarthealth.Thumbprint(j)
	k, err := smarthealth.ParseJWK(j)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (s *signer) kid(t *testing.T) string { return s.key(t).Kid }

func (s *signer) mint(t *testing.T, iss string, nbf, exp time.Time, types []string, bundle string) string {
	return s.mintAs(t, s.kid(t), iss, nbf, exp, types, bundle)
}

func (s *signer) mintAs(t *testing.T, kid, iss string, nbf, exp time.Time, types []string, bundle string) string {
	t.Helper()
	claims := fmt.Sprintf(`{"iss":%q,"nbf":%d,`, iss, nbf.Unix())
	if !exp.IsZero() {
		claims += fmt.Sprintf(`"exp":%d,`, exp.Unix())
	}
	tj, _ := json.Marshal(types)
	claims += fmt.Sprintf(`"vc":{"type":%s,"credentialSubject":{"fhirVersion":"4.0.1","fhirBundle":%s}}}`, tj, bundle)
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(fmt.Sprintf(`{"zip":"DEF","alg":"ES256","kid":%q}`, kid))) + "." +
		enc.EncodeToString(deflate(t, []byte(claims)))
	sum := sha256.Sum256([]byte(signing))
	r, ss, err := ecdsa.Sign(rand.Reader, s.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

func deflate(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		t.Fatal("not JSON")
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
