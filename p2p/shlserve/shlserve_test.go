package shlserve

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/smarthealth"
)

type fixture struct {
	t      *testing.T
	ledger *consent.Ledger
	owner  *consent.KeySigner
	ownAge *age.X25519Identity
	svc    *Service
	hc     *http.Client
	clock  atomic.Int64 // Unix s: the service's clock
	ready  atomic.Bool
	mu     sync.Mutex
	logged []*consent.Entry
}

func (f *fixture) now() time.Time { return time.Unix(f.clock.Load(), 0) }

func (f *fixture) published() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.logged)
}

func signer(t *testing.T) *consent.KeySigner {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := consent.NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newFixture(t *testing.T, lim Limits) *fixture {
	t.Helper()
	l, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ledger: l, owner: signer(t)}
	f.clock.Store(1767225600)
	f.ready.Store(true)
	if f.ownAge, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	f.append(f.owner, consent.KindIdentity, &consent.IdentityBody{AgeRecipient: f.ownAge.Recipient().String(), Role: "patient"})
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	f.svc, err = Start(Config{Listen: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}}, Limits: &lim},
		Deps{Ledger: l, Signer: signer(t), DataDir: t.TempDir(), Ready: f.ready.Load, Now: f.now,
			Publish: func(e *consent.Entry) { f.mu.Lock(); f.logged = append(f.logged, e); f.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.svc.Close(); l.Close() })
	f.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return f
}

func (f *fixture) append(s consent.Signer, k consent.Kind, body any) *consent.Entry {
	f.t.Helper()
	e, err := f.ledger.Append(s, f.now().Add(-time.Hour), k, body)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// share opens a link with one file and uploads it; it returns the link ID,
// the shl entry's hash and the key.
func (f *fixture) share(passcode string, attempts uint32, expires int64) (string, consent.Hash, smarthealth.Key) {
	f.t.Helper()
	key, _ := smarthealth.NewKey()
	jwe, err := smarthealth.Encrypt(key, []byte(`{"resourceType":"Bundle"}`), smarthealth.EncryptOptions{ContentType: smarthealth.ContentFHIR})
	if err != nil {
		f.t.Fatal(err)
	}
	idb := make([]byte, 32)
	rand.Read(idb)
	b := consent.ShlBody{Link: base64.RawURLEncoding.EncodeToString(idb), Records: []string{"rec-1"}, Files: []uint64{uint64(len(jwe))}, Expires: expires}
	var v *Verifier
	if passcode != "" {
		b.Flags, b.Attempts = "P", attempts
		if v, err = NewVerifier(passcode); err != nil {
			f.t.Fatal(err)
		}
	}
	h := f.append(f.owner, consent.KindShl, &b).Hash()
	if r := f.svc.serveUpload(f.owner.ID(), request{Op: "put", Link: h, Type: smarthealth.ContentFHIR, File: []byte(jwe), Verifier: v}); !r.OK {
		f.t.Fatalf("upload: %+v", r)
	}
	return b.Link, h, key
}

func (f *fixture) post(id, body string) (int, map[string]any) {
	f.t.Helper()
	resp, err := f.hc.Post(f.svc.URL()+"/shl/"+id, "application/json", strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (f *fixture) accesses() []consent.ShlAccess {
	var out []consent.ShlAccess
	f.ledger.View(func(v *consent.View) { out = consent.ShlAccesses(v, f.owner.ID(), time.Time{}) })
	return out
}

func TestManifestRequests(t *testing.T) {
	f := newFixture(t, DefaultLimits())
	id, entry, key := f.share("4711", 2, 0)

	// An unknown link is a 404 the ledger does not see.
	if code, _ := f.post(strings.Repeat("A", 43), `{"recipient":"x"}`); code != http.StatusNotFound {
		t.Fatalf("unknown link: %d", code)
	}
	// Malformed requests.
	for body, want := range map[string]int{
		`{"passcode":"4711"}`:          http.StatusBadRequest,
		`{"recipient":"\u0007\u0008"}`: http.StatusBadRequest,
		`not json`:                     http.StatusBadRequest,
		`{"recipient":"` + strings.Repeat("x", 5000) + `"}`: http.StatusRequestEntityTooLarge,
	} {
		if code, _ := f.post(id, body); code != want {
			t.Errorf("%.40s: %d, want %d", body, code, want)
		}
	}
	if n := len(f.accesses()); n != 0 {
		t.Fatalf("%d accesses logged for malformed requests", n)
	}
	// Not caught up: 503, nothing logged.
	f.ready.Store(false)
	if code, _ := f.post(id, `{"recipient":"x","passcode":"4711"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("not ready: %d", code)
	}
	f.ready.Store(true)

	// The right passcode: a manifest with a location that serves the JWE.
	code, m := f.post(id, `{"recipient":"Dr\u0000 Who\n","passcode":"4711"}`)
	if code != http.StatusOK {
		t.Fatalf("granted: %d %v", code, m)
	}
	loc := m["files"].([]any)[0].(map[string]any)["location"].(string)
	resp, err := f.hc.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	jwe, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if d, err := smarthealth.Decrypt(key, string(jwe)); err != nil || !bytes.Contains(d.Content, []byte("Bundle")) {
		t.Fatalf("file: %v", err)
	}
	// Embedded on request.
	if code, m := f.post(id, `{"recipient":"x","passcode":"4711","embeddedLengthMax":100000}`); code != http.StatusOK ||
		m["files"].([]any)[0].(map[string]any)["embedded"] == nil {
		t.Fatalf("embedded: %d %v", code, m)
	}
	// Wrong passcodes count down; the last one kills the link.
	if code, m := f.post(id, `{"recipient":"x","passcode":"0000"}`); code != http.StatusUnauthorized || m["remainingAttempts"] != 1.0 {
		t.Fatalf("wrong passcode: %d %v", code, m)
	}
	if code, m := f.post(id, `{"recipient":"x"}`); code != http.StatusUnauthorized || m["remainingAttempts"] != 0.0 {
		t.Fatalf("no passcode: %d %v", code, m)
	}
	if code, _ := f.post(id, `{"recipient":"x","passcode":"4711"}`); code != http.StatusNotFound {
		t.Fatalf("locked: %d", code)
	}
	// A location handed out before is refused once the link is dead.
	if resp, err := f.hc.Get(loc); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("location of a dead link: %v %v", resp.StatusCode, err)
	}

	// Every decision is on the ledger, the recipient encrypted to the owner
	// and cleaned.
	as := f.accesses()
	var reasons []string
	for _, a := range as {
		reasons = append(reasons, string(a.Reason))
		if a.Link != entry {
			t.Fatalf("access names link %v", a.Link)
		}
	}
	slices.Sort(reasons) // one time for all: ordered by hash
	if got := strings.Join(reasons, " "); got != "granted granted locked wrong-passcode wrong-passcode" {
		t.Fatalf("logged %s", got)
	}
	var recipients []string
	for _, a := range as {
		r, err := age.Decrypt(bytes.NewReader(a.Recipient), f.ownAge)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		recipients = append(recipients, string(b))
	}
	if !slices.Contains(recipients, "Dr Who") {
		t.Fatalf("recipients %q", recipients)
	}
	if n := f.published(); n != len(as)+1 { // and the sub-feed's link
		t.Fatalf("published %d entries for %d accesses", n, len(as))
	}

	// The sweep drops a dead link's files.
	f.svc.Sweep()
	if _, err := f.svc.store.file(id, 0); err == nil {
		t.Fatal("a dead link's file is still held")
	}
}

func TestRevokedAndExpired(t *testing.T) {
	f := newFixture(t, DefaultLimits())
	id, entry, _ := f.share("", 0, 0)
	if code, _ := f.post(id, `{"recipient":"x"}`); code != http.StatusOK {
		t.Fatalf("open link: %d", code)
	}
	f.append(f.owner, consent.KindRevoke, &consent.RevokeBody{Grant: entry})
	if code, _ := f.post(id, `{"recipient":"x"}`); code != http.StatusNotFound {
		t.Fatalf("revoked: %d", code)
	}
	// A revoked link takes no more files.
	if r := f.svc.serveUpload(f.owner.ID(), request{Op: "put", Link: entry, Type: smarthealth.ContentFHIR, File: []byte("x")}); r.Code != CodeDenied {
		t.Fatalf("upload to a revoked link: %+v", r)
	}

	id2, _, _ := f.share("", 0, f.now().Add(time.Minute).Unix())
	if code, _ := f.post(id2, `{"recipient":"x"}`); code != http.StatusOK {
		t.Fatalf("before expiry: %d", code)
	}
	f.clock.Add(60)
	if code, _ := f.post(id2, `{"recipient":"x"}`); code != http.StatusNotFound {
		t.Fatalf("after expiry: %d", code)
	}
	var reasons []string
	for _, a := range f.accesses() {
		reasons = append(reasons, string(a.Reason))
	}
	slices.Sort(reasons)
	if got := strings.Join(reasons, " "); got != "expired granted granted revoked" {
		t.Fatalf("logged %s", got)
	}
}

func TestUploadChecks(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxLinks = 1
	f := newFixture(t, lim)
	_, entry, _ := f.share("", 0, 0)
	stranger := signer(t)
	for name, c := range map[string]struct {
		from consent.ID
		req  request
		code string
	}{
		"unknown entry":  {f.owner.ID(), request{Op: "put", Link: consent.Hash{1}, Type: smarthealth.ContentFHIR, File: []byte("x")}, CodeNotFound},
		"another's link": {stranger.ID(), request{Op: "put", Link: entry, Type: smarthealth.ContentFHIR, File: []byte("x")}, CodeOwner},
		"wrong size":     {f.owner.ID(), request{Op: "put", Link: entry, Type: smarthealth.ContentFHIR, File: []byte("x")}, CodeBadRequest},
		"bad op":         {f.owner.ID(), request{Op: "get"}, CodeBadRequest},
	} {
		if r := f.svc.serveUpload(c.from, c.req); r.Code != c.code {
			t.Errorf("%s: %+v, want code %s", name, r, c.code)
		}
	}
	// A second live link is over the owner's quota of one.
	b := consent.ShlBody{Link: strings.Repeat("B", 42) + "A", Records: []string{"r"}, Files: []uint64{1}}
	h := f.append(f.owner, consent.KindShl, &b).Hash()
	if r := f.svc.serveUpload(f.owner.ID(), request{Op: "put", Link: h, Type: smarthealth.ContentFHIR, File: []byte("x")}); r.Code != codeQuota {
		t.Fatalf("over quota: %+v", r)
	}
	if r := f.svc.serveUpload(f.owner.ID(), request{Op: "info"}); !r.OK || r.URL != f.svc.URL() {
		t.Fatalf("info: %+v", r)
	}
}

func TestRateLimit(t *testing.T) {
	lim := DefaultLimits()
	lim.PerIP, lim.Burst = 0.001, 2
	f := newFixture(t, lim)
	codes := []int{}
	for range 3 {
		c, _ := f.post(strings.Repeat("A", 43), `{"recipient":"x"}`)
		codes = append(codes, c)
	}
	if codes[2] != http.StatusTooManyRequests {
		t.Fatalf("codes %v", codes)
	}
}

func TestCleanRecipient(t *testing.T) {
	for in, want := range map[string]string{
		" Dr Who \n":                "Dr Who",
		"a\x00b\x1bc":               "abc",
		"\xff\xfeok":                "ok",
		strings.Repeat("é", 150):    strings.Repeat("é", 100),
		"Ngā Tāngata Clinic\u2028x": "Ngā Tāngata Clinic\u2028x",
	} {
		if got := CleanRecipient(in); got != want {
			t.Errorf("CleanRecipient(%q) = %q, want %q", in, got, want)
		}
	}
}
