package shares

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
)

// The emergency (break-glass) path through a peer: a role grant with a time
// box, a credential from its issuer, the clinician's break-glass entry, and
// the peer's decision logged before a byte of the share leaves.

const erRole = "emergency-physician"

// lockedBuffer is the peer's log sink; changed is signalled on every write
// so that a test can wait for a line without sleeping.
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{changed: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.b.Write(p)
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// logLine is one parsed line of the peer's text log.
type logLine struct {
	msg, entry, allow, reason string
}

var (
	msgRE    = regexp.MustCompile(`\bmsg="([^"]*)"|\bmsg=(\S+)`)
	entryRE  = regexp.MustCompile(`\bentry=([0-9a-f]{12})\b`)
	allowRE  = regexp.MustCompile(`\ballow=(true|false)\b`)
	reasonRE = regexp.MustCompile(`\breason=(\S+)`)
)

func parseLog(s string) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var l logLine
		if m := msgRE.FindStringSubmatch(sc.Text()); m != nil {
			l.msg = m[1] + m[2]
		}
		if m := entryRE.FindStringSubmatch(sc.Text()); m != nil {
			l.entry = m[1]
		}
		if m := allowRE.FindStringSubmatch(sc.Text()); m != nil {
			l.allow = m[1]
		}
		if m := reasonRE.FindStringSubmatch(sc.Text()); m != nil {
			l.reason = m[1]
		}
		out = append(out, l)
	}
	return out
}

func countMsg(lines []logLine, msg, entry string) int {
	n := 0
	for _, l := range lines {
		if l.msg == msg && (entry == "" || l.entry == entry) {
			n++
		}
	}
	return n
}

type emFixture struct {
	*fixture
	offset atomic.Int64 // the peer's clock runs this many nanoseconds ahead
	log    *lockedBuffer
	// src holds the feeds of the authors other than the patient and the
	// peer (the issuer, the clinicians) before they reach the peer.
	src          *consent.Ledger
	issuer, role *consent.KeySigner
	box          int64
	grant        *consent.Entry
	data         []byte // the share of f.record
	share        vault.ShareID
	other        string // another record of the patient, outside the grant
	otherShare   vault.ShareID
	svc          *Service
}

func emSigner(t *testing.T, name string) *consent.KeySigner {
	t.Helper()
	seed := sha256.Sum256([]byte("shares emergency test " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newEmergencyFixture is newFixture with the peer's service registered
// again, now with a clock the test moves and a text logger into a buffer;
// the patient has stored a share of f.record (payload bytes of ciphertext)
// and one of another record, and granted f.record (only) to the issuer's
// emergency physicians with a one-hour time box.
func newEmergencyFixture(t *testing.T, payload int) *emFixture {
	t.Helper()
	f := &emFixture{fixture: newFixture(t), log: newLockedBuffer(), box: 3600,
		issuer: emSigner(t, "mercy"), role: emSigner(t, "mercy emergency physician role"),
		other: "ffeeddccbbaa99887766554433221100"}
	f.src, _ = consent.OpenLedger(consent.NewMemStore())
	// Replaces the handler newFixture registered (its cleanup runs after ours).
	svc := NewService(f.peer.h, f.st, f.ledger, f.peer.signer,
		WithPublish(func(e *consent.Entry) { f.published <- e }),
		WithClock(f.now),
		WithLogger(slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	t.Cleanup(svc.Close)
	f.svc = svc

	ctx := context.Background()
	p := make([]byte, payload)
	rand.Read(p)
	f.data = fakeShare(t, f.record, p)
	var err error
	if f.share, err = Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(f.data)); err != nil {
		t.Fatal(err)
	}
	if f.otherShare, err = Put(ctx, f.patient.h, f.peer.h.ID(), f.other, bytes.NewReader(fakeShare(t, f.other, []byte("other ciphertext")))); err != nil {
		t.Fatal(err)
	}
	f.grant = f.patientAppends(t, consent.KindGrant, &consent.Grant{Grantee: f.role.ID(), Issuer: f.issuer.ID(), Role: erRole,
		Records: []string{f.record}, Scopes: []string{"patient/*.rs"}, Purpose: consent.PurposeEmergency,
		NotBefore: time.Now().Add(-time.Hour).Unix(), TimeBox: f.box})
	return f
}

// now is the peer's clock.
func (f *emFixture) now() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }

// appendAs signs an entry on s's feed and delivers it to the peer.
func (f *emFixture) appendAs(t *testing.T, s consent.Signer, at time.Time, kind consent.Kind, body any) *consent.Entry {
	t.Helper()
	e, err := f.src.Append(s, at, kind, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Ingest(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// clinician is a new actor connected to the peer.
func (f *emFixture) clinician(t *testing.T, name string) *actor {
	t.Helper()
	a := newActor(t, name, false)
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: f.peer.h.ID(), Addrs: f.peer.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return a
}

// credential has issuer vouch that subject is one of its emergency
// physicians from nb until exp (zero: no expiry).
func (f *emFixture) credential(t *testing.T, issuer consent.Signer, subject consent.ID, nb, exp time.Time) *consent.Entry {
	t.Helper()
	c := &consent.CredentialBody{Subject: subject, Role: erRole, RoleID: f.role.ID(), NotBefore: nb.Unix(),
		Details: []byte("age ciphertext"), RoleRecipient: "age1role"}
	if !exp.IsZero() {
		c.Expires = exp.Unix()
	}
	return f.appendAs(t, issuer, time.Now(), consent.KindCredential, c)
}

// breakGlass is by's break-glass entry, dated at, invoking the grant.
func (f *emFixture) breakGlass(t *testing.T, by *actor, at time.Time) *consent.Entry {
	t.Helper()
	return f.appendAs(t, by.signer, at, consent.KindBreakGlass,
		&consent.BreakGlassBody{Owner: f.patient.id, Grant: f.grant.Hash(), Reason: []byte("age ciphertext")})
}

// emRequest is by's signed emergency request for record, dated at the
// peer's now and naming break-glass entry bg (none if nil).
func (f *emFixture) emRequest(t *testing.T, by *actor, record string, bg *consent.Entry) *consent.Request {
	t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	r := consent.Request{Owner: f.patient.id, Record: record, Scope: "patient/*.rs", Purpose: consent.PurposeEmergency,
		Time: f.now().Unix(), Nonce: nonce}
	if bg != nil {
		r.BreakGlass = bg.Hash()
	}
	sr, err := consent.SignRequest(by.signer, r)
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

func (f *emFixture) head(id consent.ID) consent.Head {
	var h consent.Head
	f.ledger.View(func(v *consent.View) { h = v.Head(id) })
	return h
}

func accessBody(t *testing.T, e *consent.Entry) *consent.AccessBody {
	t.Helper()
	if e.Kind != consent.KindAccess {
		t.Fatalf("entry %d of the peer's feed is %v, want an access entry", e.Seq, e.Kind)
	}
	b, err := e.DecodedBody()
	if err != nil {
		t.Fatal(err)
	}
	return b.(*consent.AccessBody)
}

// auditOK audits every entry the peer holds, the way an outsider would:
// the audit must pass, and any (informational) mismatch must be one that
// known reports true for.
func (f *emFixture) auditOK(t *testing.T, allowed, emergency, denied int, known func(consent.Finding) bool) {
	t.Helper()
	// Denials repeated within a minute are counted and logged in one
	// summary entry at the latest when the service closes: close it, so
	// that every decision is on the feed.
	f.svc.closeRepeats()
	rep := consent.AuditLedger(f.ledger.Entries())
	if !rep.OK() {
		t.Errorf("audit of the peer's ledger failed: %+v", rep.Findings)
	}
	for _, fd := range rep.Findings {
		if fd.Kind == consent.FindingMismatch && known != nil && known(fd) {
			t.Logf("audit: known mismatch: logged %s, re-run gives %s (%s)", fd.Logged, fd.Reason, fd.Detail)
			continue
		}
		t.Errorf("audit finding %+v", fd)
	}
	if rep.Allowed != allowed || rep.Emergency != emergency || rep.Denied != denied {
		t.Errorf("audit counted %d allowed (%d emergency), %d denied; want %d (%d), %d",
			rep.Allowed, rep.Emergency, rep.Denied, allowed, emergency, denied)
	}
}

func headsEqual(a, b consent.Head) bool { return a.Seq == b.Seq && a.Hash == b.Hash }

// A credentialed emergency physician who broke the glass is served, and
// the allow names everything an auditor needs to re-run it.
func TestEmergencyAccessAllowed(t *testing.T) {
	f := newEmergencyFixture(t, 256<<10)
	ctx := context.Background()
	frank := f.clinician(t, "er frank")
	cred := f.credential(t, f.issuer, frank.id, time.Now().Add(-3*time.Hour), time.Time{})
	// The time box runs from the first break-glass entry, not the one named.
	first := f.breakGlass(t, frank, time.Now().Add(-30*time.Minute))
	bg := f.breakGlass(t, frank, time.Now())

	req := f.emRequest(t, frank, f.record, bg)
	rc, err := Get(ctx, frank.h, f.peer.h.ID(), f.share, req)
	if err != nil {
		t.Fatal(err)
	}
	a := f.lastAccess(t) // published before the response frame was sent
	if got := readAll(t, rc); !bytes.Equal(got, f.data) {
		t.Fatal("served bytes differ")
	}
	switch {
	case !a.Allow || a.Reason != consent.ReasonEmergency:
		t.Errorf("logged allow=%v reason=%s, want an emergency allow", a.Allow, a.Reason)
	case a.Grant != f.grant.Hash():
		t.Errorf("logged grant %s, want the emergency grant", a.Grant)
	case a.Credential != cred.Hash():
		t.Errorf("logged credential %s, want frank's", a.Credential)
	case a.Issuer != f.issuer.ID():
		t.Errorf("logged issuer %s, want %s", a.Issuer, f.issuer.ID())
	case a.IssuerHead == nil || !headsEqual(*a.IssuerHead, cred.Head()):
		t.Errorf("logged issuer head %+v, want the credential's entry", a.IssuerHead)
	case a.RequesterHead == nil || !headsEqual(*a.RequesterHead, bg.Head()):
		t.Errorf("logged requester head %+v, want the break-glass entry", a.RequesterHead)
	case !headsEqual(a.OwnerHead, f.grant.Head()):
		t.Errorf("logged owner head %+v, want the grant's entry", a.OwnerHead)
	case a.Until != first.Time+f.box:
		t.Errorf("logged until %d, want the first break-glass time %d + the time box %d", a.Until, first.Time, f.box)
	case !bytes.Equal(a.Request, req.Encode()):
		t.Error("the access entry does not carry the request verbatim")
	}
	f.auditOK(t, 1, 1, 0, nil)
}

// Each way an emergency request falls short is refused with its own
// reason, logged, and no share byte is sent.
func TestEmergencyAccessDenied(t *testing.T) {
	f := newEmergencyFixture(t, 1024)
	ctx := context.Background()
	t0 := time.Now()
	stmary := emSigner(t, "st-mary")
	frank, ivan, joe := f.clinician(t, "er frank"), f.clinician(t, "er ivan"), f.clinician(t, "er joe")
	gina, hank, kate, lena := f.clinician(t, "er gina"), f.clinician(t, "er hank"), f.clinician(t, "er kate"), f.clinician(t, "er lena")
	valid := func(a *actor) { f.credential(t, f.issuer, a.id, t0.Add(-3*time.Hour), time.Time{}) }
	valid(frank)
	valid(kate)
	valid(lena)
	f.credential(t, stmary, joe.id, t0.Add(-3*time.Hour), time.Time{}) // same role ID, another issuer
	f.credential(t, f.issuer, gina.id, t0.Add(-72*time.Hour), t0.Add(-time.Hour))
	cHank := f.credential(t, f.issuer, hank.id, t0.Add(-3*time.Hour), time.Time{})
	f.appendAs(t, f.issuer, t0, consent.KindRevoke, &consent.RevokeBody{Grant: cHank.Hash()})
	bgFrank, bgIvan, bgJoe := f.breakGlass(t, frank, t0), f.breakGlass(t, ivan, t0), f.breakGlass(t, joe, t0)
	bgGina, bgHank, bgKate := f.breakGlass(t, gina, t0), f.breakGlass(t, hank, t0), f.breakGlass(t, kate, t0)
	f.breakGlass(t, lena, t0.Add(-2*time.Hour)) // her time box ran out an hour ago
	bgLena := f.breakGlass(t, lena, t0)

	// Rows run in order on one peer; its clock only moves forward (its
	// feed's times never go backwards), so the time-box row comes last.
	for _, tc := range []struct {
		name   string
		by     *actor
		record string
		bg     *consent.Entry
		ahead  time.Duration // the peer's clock, ahead of real time
		want   consent.Reason
		grant  bool // the denial names the emergency grant (and its issuer)
	}{
		{"no credential", ivan, f.record, bgIvan, 0, consent.ReasonNoCredential, false},
		{"credential from another issuer", joe, f.record, bgJoe, 0, consent.ReasonNoCredential, false},
		{"expired credential", gina, f.record, bgGina, 0, consent.ReasonCredentialExpired, true},
		{"revoked credential", hank, f.record, bgHank, 0, consent.ReasonCredentialRevoked, true},
		{"record outside the grant", frank, f.other, bgFrank, 0, consent.ReasonRecord, false},
		{"no break-glass entry", frank, f.record, nil, 0, consent.ReasonNoBreakGlass, true},
		{"someone else's break-glass entry", frank, f.record, bgKate, 0, consent.ReasonNoBreakGlass, true},
		{"time box from the first break-glass", lena, f.record, bgLena, 0, consent.ReasonTimeBox, true},
		{"beyond the time box", kate, f.record, bgKate, time.Duration(f.box)*time.Second + time.Minute, consent.ReasonTimeBox, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.offset.Store(int64(tc.ahead))
			id := f.share
			if tc.record == f.other {
				id = f.otherShare
			}
			req := f.emRequest(t, tc.by, tc.record, tc.bg)
			rc, err := Get(ctx, tc.by.h, f.peer.h.ID(), id, req)
			var de *DeniedError
			if !errors.As(err, &de) || de.Reason != tc.want {
				t.Fatalf("got %v, want a %s denial", err, tc.want)
			}
			if rc != nil {
				t.Fatal("a denied get returned a reader")
			}
			a := f.lastAccess(t)
			if a.Allow || a.Reason != tc.want || !bytes.Equal(a.Request, req.Encode()) {
				t.Fatalf("logged allow=%v reason=%s, want the %s denial of this request", a.Allow, a.Reason, tc.want)
			}
			if !a.Credential.IsZero() || a.Until != 0 {
				t.Errorf("a denial logged credential %s, until %d", a.Credential, a.Until)
			}
			if (a.RequesterHead != nil) != (tc.bg != nil) {
				t.Errorf("requester head %+v for a request naming break-glass %v", a.RequesterHead, tc.bg != nil)
			} else if a.RequesterHead != nil && !headsEqual(*a.RequesterHead, f.head(tc.by.id)) {
				t.Errorf("requester head %+v, want %+v", *a.RequesterHead, f.head(tc.by.id))
			}
			if tc.grant {
				if a.Grant != f.grant.Hash() || a.Issuer != f.issuer.ID() || a.IssuerHead == nil || !headsEqual(*a.IssuerHead, f.head(f.issuer.ID())) {
					t.Errorf("logged grant %s, issuer %s, issuer head %+v; want the emergency grant, its issuer and the issuer's head",
						a.Grant, a.Issuer, a.IssuerHead)
				}
			} else if tc.want == consent.ReasonRecord {
				// Only frank's credential made the grant reach him: the
				// denial names its issuer (and head), not a grant.
				if !a.Grant.IsZero() || a.Issuer != f.issuer.ID() || a.IssuerHead == nil {
					t.Errorf("logged grant %s, issuer %q, issuer head %+v; want the issuer only", a.Grant, a.Issuer, a.IssuerHead)
				}
			} else if !a.Grant.IsZero() || a.Issuer != "" || a.IssuerHead != nil {
				t.Errorf("logged grant %s, issuer %q, issuer head %+v; want none", a.Grant, a.Issuer, a.IssuerHead)
			}
		})
	}
	lines := parseLog(f.log.String())
	if n := countMsg(lines, "share sent", ""); n != 0 {
		t.Errorf("%d shares sent, want none", n)
	}
	for _, l := range lines {
		if l.msg == "access decided" && l.allow != "false" {
			t.Errorf("logged %+v, want only denials", l)
		}
	}
	// Every denial re-runs to its logged reason, the record denial too:
	// it relied on frank's credential and names its issuer's head.
	f.auditOK(t, 0, 0, 9, func(consent.Finding) bool { return false })
}

// Log before release: every share the peer sends follows the logged allow
// it was sent under, and that allow is on the peer's feed before the
// client sees the response.
func TestEmergencyLogBeforeRelease(t *testing.T) {
	// More than a stream's flow-control window, so that the peer cannot
	// have sent the whole share before the client starts reading it.
	f := newEmergencyFixture(t, 4<<20)
	ctx := context.Background()
	frank, ivan := f.clinician(t, "er frank"), f.clinician(t, "er ivan")
	f.credential(t, f.issuer, frank.id, time.Now().Add(-time.Hour), time.Time{})
	bgFrank, bgIvan := f.breakGlass(t, frank, time.Now()), f.breakGlass(t, ivan, time.Now())

	const fetches = 3
	for i := range fetches {
		// A denial in between, which must never be followed by a send.
		if _, err := Get(ctx, ivan.h, f.peer.h.ID(), f.share, f.emRequest(t, ivan, f.record, bgIvan)); !errors.Is(err, ErrDenied) {
			t.Fatalf("ivan: %v, want a denial", err)
		}
		req := f.emRequest(t, frank, f.record, bgFrank)
		rc, err := Get(ctx, frank.h, f.peer.h.ID(), f.share, req)
		if err != nil {
			t.Fatal(err)
		}
		// The response header is in; not a byte of the share has been read.
		feed := f.peerFeed()
		last := feed[len(feed)-1]
		if a := accessBody(t, last); !a.Allow || a.Reason != consent.ReasonEmergency || !bytes.Equal(a.Request, req.Encode()) {
			rc.Close()
			t.Fatalf("fetch %d: the peer's latest entry at the response is %+v, want the emergency allow of this request", i, a)
		}
		entry := last.Hash().String()[:12]
		lines := parseLog(f.log.String())
		if countMsg(lines, "access decided", entry) != 1 {
			t.Errorf("fetch %d: the decision %s is not logged at the response", i, entry)
		}
		if countMsg(lines, "share sent", entry) != 0 {
			t.Errorf("fetch %d: share sent under %s before the client read it", i, entry)
		}
		if got := readAll(t, rc); !bytes.Equal(got, f.data) {
			t.Fatalf("fetch %d: served bytes differ", i)
		}
	}

	// The peer logs "share sent" after the last byte, possibly after the
	// client has read it: wait for all of them.
	deadline := time.After(10 * time.Second)
	var lines []logLine
	for {
		lines = parseLog(f.log.String())
		if countMsg(lines, "share sent", "") >= fetches {
			break
		}
		select {
		case <-f.log.changed:
		case <-deadline:
			t.Fatalf("%d shares sent logged, want %d:\n%s", countMsg(lines, "share sent", ""), fetches, f.log.String())
		}
	}
	if n := countMsg(lines, "share sent", ""); n != fetches {
		t.Fatalf("%d shares sent logged, want %d", n, fetches)
	}

	onFeed := map[string]*consent.AccessBody{}
	for _, e := range f.peerFeed() {
		onFeed[e.Hash().String()[:12]] = accessBody(t, e)
	}
	allowed := map[string]bool{}
	denied := 0
	for i, l := range lines {
		switch l.msg {
		case "access decided":
			if l.entry == "" {
				t.Fatalf("line %d: access decided without an entry", i)
			}
			a := onFeed[l.entry]
			if a == nil {
				t.Errorf("line %d: decision %s is not on the peer's feed", i, l.entry)
				continue
			}
			if (l.allow == "true") != a.Allow || l.reason != string(a.Reason) {
				t.Errorf("line %d: logged allow=%s reason=%s, the entry says %v %s", i, l.allow, l.reason, a.Allow, a.Reason)
			}
			if l.allow == "true" {
				allowed[l.entry] = true
			} else {
				denied++
			}
		case "share sent":
			if !allowed[l.entry] {
				t.Errorf("line %d: share sent under %q, with no allow logged before it", i, l.entry)
			}
			if a := onFeed[l.entry]; a == nil || !a.Allow {
				t.Errorf("line %d: share sent under %q, which is not an allow on the peer's feed", i, l.entry)
			}
			delete(allowed, l.entry) // one send per allow
		}
	}
	if len(allowed) != 0 || denied != fetches {
		t.Errorf("%d allows without a send, %d denials; want 0, %d", len(allowed), denied, fetches)
	}
	f.auditOK(t, fetches, fetches, fetches, nil)
}
