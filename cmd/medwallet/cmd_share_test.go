package main

// The test side of SMART Health Links: a self-signed certificate for a
// peer's HTTPS endpoint on loopback (shlcert), and a small SHL client
// written from the specification (shlclient), independent of the
// wallet's own code: it decodes the shlink:/ payload by hand, POSTs the
// manifest request, fetches the files and decrypts them with go-jose.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rogpeppe/go-internal/testscript"
)

// cmdSHLCert writes a self-signed certificate for 127.0.0.1 and its key:
// shlcert CERT KEY
func cmdSHLCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: shlcert CERT KEY")
	}
	cert, key, err := selfSigned()
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), cert, 0o600))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), key, 0o600))
}

func selfSigned() (certPEM, keyPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "medwallet test peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// cmdSHLClient opens a link as an SHL viewer would:
//
//	shlclient [-recipient R] [-passcode P] [-want CODE] [-remaining N] [-out DIR] [-embedded N] [-until] CERT LINKFILE
//
// It fails unless the manifest request is answered CODE (200 by default),
// with remainingAttempts N on a 401 when -remaining is given; on a 200 it
// writes each file's decrypted content to DIR/0, DIR/1, ...
func cmdSHLClient(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("shlclient: use -want instead of !")
	}
	fs := flag.NewFlagSet("shlclient", flag.ContinueOnError)
	recipient := fs.String("recipient", "Dr Test, Example Clinic", "")
	passcode := fs.String("passcode", "", "")
	want := fs.Int("want", 200, "")
	remaining := fs.Int("remaining", -1, "")
	out := fs.String("out", "", "")
	embedded := fs.Int("embedded", -1, "")
	until := fs.Bool("until", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		ts.Fatalf("usage: shlclient [-recipient R] [-passcode P] [-want CODE] [-remaining N] [-out DIR] [-embedded N] CERT LINKFILE")
	}
	certPEM, err := os.ReadFile(ts.MkAbs(fs.Arg(0)))
	ts.Check(err)
	text, err := os.ReadFile(ts.MkAbs(fs.Arg(1)))
	ts.Check(err)
	res, err := openLink(certPEM, strings.TrimSpace(string(text)), *recipient, *passcode, *embedded)
	// -until: ask again until the answer is CODE (a revocation travelling,
	// an expiry coming), within a deadline; a file refused between the
	// manifest and its fetch (the link expired in between) is asked again.
	for deadline := time.Now().Add(60 * time.Second); *until && (err != nil || res.status != *want) && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		res, err = openLink(certPEM, strings.TrimSpace(string(text)), *recipient, *passcode, *embedded)
	}
	ts.Check(err)
	ts.Logf("shlclient: status %d, remainingAttempts %d, %d files", res.status, res.remaining, len(res.files))
	if res.status != *want {
		ts.Fatalf("shlclient: status %d, want %d (%s)", res.status, *want, res.body)
	}
	if *remaining >= 0 && res.remaining != *remaining {
		ts.Fatalf("shlclient: remainingAttempts %d, want %d", res.remaining, *remaining)
	}
	if *out != "" {
		dir := ts.MkAbs(*out)
		ts.Check(os.MkdirAll(dir, 0o700))
		for i, f := range res.files {
			ts.Check(os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), f, 0o600))
		}
	}
}

type linkResult struct {
	status    int
	remaining int
	files     [][]byte
	body      string
}

// openLink follows the SMART Health Links specification: decode the
// payload, POST the manifest request, fetch each file (embedded or from
// its location) and decrypt it with the link's key (JWE, alg dir, enc
// A256GCM).
func openLink(certPEM []byte, text, recipient, passcode string, embeddedMax int) (linkResult, error) {
	if i := strings.Index(text, "#shlink:/"); i >= 0 {
		text = text[i+1:]
	}
	payload, ok := strings.CutPrefix(text, "shlink:/")
	if !ok {
		return linkResult{}, fmt.Errorf("not a shlink:/ URI")
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return linkResult{}, err
	}
	var p struct {
		URL  string `json:"url"`
		Key  string `json:"key"`
		Flag string `json:"flag"`
		Exp  int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return linkResult{}, err
	}
	key, err := base64.RawURLEncoding.DecodeString(p.Key)
	if err != nil || len(key) != 32 {
		return linkResult{}, fmt.Errorf("bad key in the payload")
	}
	if strings.Contains(p.Flag, "U") {
		return linkResult{}, fmt.Errorf("flag U: not what medwallet shares")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		return linkResult{}, fmt.Errorf("no certificate in the PEM file")
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	req := map[string]any{"recipient": recipient}
	if strings.Contains(p.Flag, "P") && passcode != "" {
		req["passcode"] = passcode
	}
	if embeddedMax >= 0 {
		req["embeddedLengthMax"] = embeddedMax
	}
	body, _ := json.Marshal(req)
	resp, err := retry429(func() (*http.Response, error) { return hc.Post(p.URL, "application/json", bytes.NewReader(body)) })
	if err != nil {
		return linkResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return linkResult{}, err
	}
	res := linkResult{status: resp.StatusCode, remaining: -1, body: string(b)}
	if resp.StatusCode == http.StatusUnauthorized {
		var e struct {
			RemainingAttempts *int `json:"remainingAttempts"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.RemainingAttempts == nil {
			return res, fmt.Errorf("a 401 without remainingAttempts: %s", b)
		}
		res.remaining = *e.RemainingAttempts
		return res, nil
	}
	if resp.StatusCode != http.StatusOK {
		return res, nil
	}
	var m struct {
		Files []struct {
			ContentType string `json:"contentType"`
			Location    string `json:"location"`
			Embedded    string `json:"embedded"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return res, err
	}
	for _, f := range m.Files {
		if f.ContentType != "application/fhir+json" {
			return res, fmt.Errorf("content type %q", f.ContentType)
		}
		jwe := f.Embedded
		if jwe == "" {
			fr, err := retry429(func() (*http.Response, error) { return hc.Get(f.Location) })
			if err != nil {
				return res, err
			}
			fb, err := io.ReadAll(io.LimitReader(fr.Body, 64<<20))
			fr.Body.Close()
			if err != nil {
				return res, err
			}
			if fr.StatusCode != http.StatusOK {
				return res, fmt.Errorf("GET location: status %d", fr.StatusCode)
			}
			jwe = string(fb)
		}
		obj, err := jose.ParseEncryptedCompact(jwe, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			return res, err
		}
		plain, err := obj.Decrypt(key)
		if err != nil {
			return res, err
		}
		res.files = append(res.files, plain)
	}
	return res, nil
}

// retry429 sends a request again, a few times, while the server answers
// 429 Too Many Requests, after the Retry-After it names.
func retry429(do func() (*http.Response, error)) (*http.Response, error) {
	for i := 0; ; i++ {
		resp, err := do()
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || i == 10 {
			return resp, err
		}
		resp.Body.Close()
		wait := time.Second
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 && n < 10 {
			wait = time.Duration(n) * time.Second
		}
		time.Sleep(wait)
	}
}
