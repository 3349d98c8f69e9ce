package shares

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/store/boltstore"
	"github.com/medwallet/medwallet/vault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type actor struct {
	key    ed25519.PrivateKey
	signer *consent.KeySigner
	id     consent.ID
	h      host.Host
}

func newActor(t *testing.T, name string, listen bool) *actor {
	t.Helper()
	seed := sha256.Sum256([]byte("shares test " + name))
	key := ed25519.NewKeyFromSeed(seed[:])
	s, err := consent.NewKeySigner(key)
	if err != nil {
		t.Fatal(err)
	}
	var l []string
	if listen {
		l = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := node.New(key, node.Options{Listen: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &actor{key: key, signer: s, id: s.ID(), h: h}
}

type fixture struct {
	peer, patient, clinician, stranger *actor
	st                                 *boltstore.Store
	ledger                             *consent.Ledger
	patientLedger                      *consent.Ledger
	record                             string
	published                          chan *consent.Entry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		peer:      newActor(t, "peer", true),
		patient:   newActor(t, "patient", false),
		clinician: newActor(t, "clinician", false),
		stranger:  newActor(t, "stranger", false),
		record:    "00112233445566778899aabbccddeeff",
		published: make(chan *consent.Entry, 100),
	}
	var err error
	f.st, err = boltstore.Open(filepath.Join(t.TempDir(), "peer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.ledger, _ = consent.OpenLedger(consent.NewMemStore())
	f.patientLedger, _ = consent.OpenLedger(consent.NewMemStore())
	svc := NewService(f.peer.h, f.st, f.ledger, f.peer.signer, WithPublish(func(e *consent.Entry) { f.published <- e }))
	t.Cleanup(svc.Close)
	for _, a := range []*actor{f.patient, f.clinician, f.stranger} {
		if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: f.peer.h.ID(), Addrs: f.peer.h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// patientAppends signs an entry on the patient's feed and delivers it to the peer.
func (f *fixture) patientAppends(t *testing.T, kind consent.Kind, body any) *consent.Entry {
	t.Helper()
	e, err := f.patientLedger.Append(f.patient.signer, time.Now(), kind, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Ingest(e); err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) request(t *testing.T, by *actor, scope, purpose string) *consent.Request {
	t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	r, err := consent.SignRequest(by.signer, consent.Request{Owner: f.patient.id, Record: f.record, Scope: scope,
		Purpose: purpose, Time: time.Now().Unix(), Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeShare is payload behind a valid share header for record.
func fakeShare(t *testing.T, record string, payload []byte) []byte {
	t.Helper()
	rid, err := vault.ParseRecordID(record)
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, vault.ShareHeaderSize)
	copy(hdr, "MWSH")
	hdr[4], hdr[5], hdr[6], hdr[7] = 1, 0, 3, 5
	copy(hdr[12:28], rid[:])
	return append(hdr, payload...)
}

func readAll(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// accessFeed is the peer's sub-feed about the patient, where it logs its
// decisions on the patient's records.
func (f *fixture) accessFeed(t *testing.T) consent.ID { return f.subFeed(f.patient.id) }

// subFeed is the ID of the peer's sub-feed about owner.
func (f *fixture) subFeed(owner consent.ID) consent.ID {
	sf, err := consent.NewSubFeed(f.peer.signer, owner)
	if err != nil {
		panic(err) // two signatures by an in-memory key
	}
	return sf.ID()
}

// peerFeed is the access entries of the peer's sub-feed about the
// patient (its link left out), as the peer holds them now.
func (f *fixture) peerFeed() []*consent.Entry { return f.accessesAbout(f.patient.id) }

// accessesAbout is the access entries of the peer's sub-feed about owner.
func (f *fixture) accessesAbout(owner consent.ID) []*consent.Entry {
	var feed []*consent.Entry
	id := f.subFeed(owner)
	f.ledger.View(func(v *consent.View) { feed = v.Feed(id) })
	if len(feed) > 0 && feed[0].Kind == consent.KindLink {
		feed = feed[1:]
	}
	return feed
}

func (f *fixture) lastAccess(t *testing.T) *consent.AccessBody {
	t.Helper()
	select {
	case e := <-f.published:
		if e.Kind == consent.KindLink && e.Author == f.accessFeed(t) && e.Seq == 1 {
			e = <-f.published // the sub-feed's link comes before its first entry
		}
		if e.Kind != consent.KindAccess || e.Author != f.accessFeed(t) {
			t.Fatalf("published %v by %s, want an access entry by the peer's sub-feed about the patient", e.Kind, e.Author)
		}
		b, err := e.DecodedBody()
		if err != nil {
			t.Fatal(err)
		}
		return b.(*consent.AccessBody)
	case <-time.After(5 * time.Second):
		t.Fatal("no access entry was published")
	}
	return nil
}

func TestPutGetGrantRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	payload := make([]byte, 3<<20+5)
	rand.Read(payload)
	data := fakeShare(t, f.record, payload)
	id, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if id != vault.ComputeShareID(data) {
		t.Fatal("the peer's content address differs from the share's hash")
	}
	if m, _ := f.st.Meta(id); m.Owner != f.patient.id || m.Record != f.record {
		t.Fatalf("share stored with meta %+v", m)
	}
	if ok, err := Has(ctx, f.stranger.h, f.peer.h.ID(), id); err != nil || !ok {
		t.Fatalf("Has = %v, %v", ok, err)
	}

	// No grant yet: denied, and the denial is logged.
	_, err = Get(ctx, f.clinician.h, f.peer.h.ID(), id, f.request(t, f.clinician, "patient/*.rs", "TREAT"))
	var de *DeniedError
	if !errors.As(err, &de) || de.Reason != consent.ReasonNoGrant {
		t.Fatalf("get without grant: %v", err)
	}
	if a := f.lastAccess(t); a.Allow || a.Reason != consent.ReasonNoGrant {
		t.Fatalf("logged %+v", a)
	}

	g := f.patientAppends(t, consent.KindGrant, &consent.Grant{Grantee: f.clinician.id, Records: []string{f.record},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", NotBefore: time.Now().Add(-time.Minute).Unix()})

	// Granted: served byte for byte, and the allow was logged before.
	req := f.request(t, f.clinician, "patient/*.rs", "TREAT")
	rc, err := Get(ctx, f.clinician.h, f.peer.h.ID(), id, req)
	if err != nil {
		t.Fatal(err)
	}
	a := f.lastAccess(t) // published before the response frame was sent
	if !a.Allow || a.Grant != g.Hash() {
		t.Fatalf("logged %+v, want an allow relying on the grant", a)
	}
	if got := readAll(t, rc); !bytes.Equal(got, data) {
		t.Fatal("served bytes differ")
	}

	// The same signed request again is a replay.
	_, err = Get(ctx, f.clinician.h, f.peer.h.ID(), id, req)
	if !errors.As(err, &de) || de.Reason != consent.ReasonReplay {
		t.Fatalf("replay: %v", err)
	}
	f.lastAccess(t)

	// Wrong purpose, someone else, a request relayed by another party.
	for _, tc := range []struct {
		name string
		by   *actor
		req  *consent.Request
		want consent.Reason
	}{
		{"purpose", f.clinician, f.request(t, f.clinician, "patient/*.rs", "HMARKT"), consent.ReasonPurpose},
		{"scope", f.clinician, f.request(t, f.clinician, "patient/*.cruds", "TREAT"), consent.ReasonScope},
		{"stranger", f.stranger, f.request(t, f.stranger, "patient/*.rs", "TREAT"), consent.ReasonWrongGrantee},
	} {
		_, err := Get(ctx, tc.by.h, f.peer.h.ID(), id, tc.req)
		if !errors.As(err, &de) || de.Reason != tc.want {
			t.Errorf("%s: %v, want denial %s", tc.name, err, tc.want)
			continue
		}
		if a := f.lastAccess(t); a.Allow || a.Reason != tc.want {
			t.Errorf("%s: logged %+v", tc.name, a)
		}
	}
	if _, err := Get(ctx, f.stranger.h, f.peer.h.ID(), id, f.request(t, f.clinician, "patient/*.rs", "TREAT")); !errors.Is(err, ErrBadRequest) {
		t.Errorf("relayed request: %v, want ErrBadRequest", err)
	}
	forged := f.request(t, f.clinician, "patient/*.rs", "TREAT")
	forged.Sig[0] ^= 1
	if _, err := Get(ctx, f.clinician.h, f.peer.h.ID(), id, forged); !errors.As(err, &de) || de.Reason != consent.ReasonBadSignature {
		t.Errorf("forged request: %v", err)
	} else {
		f.lastAccess(t)
	}

	// Revoked: denied at once.
	f.patientAppends(t, consent.KindRevoke, &consent.RevokeBody{Grant: g.Hash()})
	if _, err := Get(ctx, f.clinician.h, f.peer.h.ID(), id, f.request(t, f.clinician, "patient/*.rs", "TREAT")); !errors.As(err, &de) || de.Reason != consent.ReasonRevoked {
		t.Fatalf("after revoke: %v", err)
	}
	f.lastAccess(t)

	// Every decision is on the peer's verified sub-feed about the patient,
	// after the link to the peer; nothing is in the peer's home feed.
	var feed, home []*consent.Entry
	sub := f.accessFeed(t)
	var parent, subject consent.ID
	f.ledger.View(func(v *consent.View) {
		feed, home = v.Feed(sub), v.Feed(f.peer.id)
		parent, subject, _ = v.SubFeedOf(sub)
	})
	if len(feed) != 9 || feed[0].Kind != consent.KindLink || len(home) != 0 {
		t.Fatalf("peer sub-feed has %d entries, home feed %d, want a link and 8 access decisions, none", len(feed), len(home))
	}
	if parent != f.peer.id || subject != f.patient.id {
		t.Fatalf("sub-feed links to %s about %s, want the peer about the patient", parent, subject)
	}
	if _, err := consent.VerifyFeed(sub, feed); err != nil {
		t.Fatal(err)
	}

	// Only the owner deletes.
	if err := Delete(ctx, f.clinician.h, f.peer.h.ID(), id); !errors.Is(err, ErrRemote) {
		t.Fatalf("delete by another: %v", err)
	}
	if err := Delete(ctx, f.patient.h, f.peer.h.ID(), id); err != nil {
		t.Fatal(err)
	}
	if ok, _ := Has(ctx, f.patient.h, f.peer.h.ID(), id); ok {
		t.Fatal("share still there after delete")
	}
	if _, err := Get(ctx, f.clinician.h, f.peer.h.ID(), id, f.request(t, f.clinician, "patient/*.rs", "TREAT")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestBadPuts(t *testing.T) {
	f := newFixture(t)
	other := "ffeeddccbbaa99887766554433221100"
	for name, tc := range map[string]struct {
		record string
		data   []byte
	}{
		"bad record ID":            {"../etc", fakeShare(t, f.record, []byte("x"))},
		"not a share":              {f.record, bytes.Repeat([]byte("x"), 100)},
		"header of another record": {f.record, fakeShare(t, other, []byte("x"))},
	} {
		if _, err := Put(context.Background(), f.patient.h, f.peer.h.ID(), tc.record, bytes.NewReader(tc.data)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: got %v, want ErrBadRequest", name, err)
		}
	}
	n := 0
	f.st.Shares(func(vault.ShareID, store.ShareMeta) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d shares stored by bad puts", n)
	}
}

// A grant that has run out is refused by the peer, and the refusal logged.
func TestExpiredGrantDenied(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, []byte("ciphertext"))))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	g := f.patientAppends(t, consent.KindGrant, &consent.Grant{Grantee: f.clinician.id, Records: []string{f.record},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT",
		NotBefore: now.Add(-48 * time.Hour).Unix(), Expires: now.Add(-time.Hour).Unix()})
	_, err = Get(ctx, f.clinician.h, f.peer.h.ID(), id, f.request(t, f.clinician, "patient/*.rs", "TREAT"))
	var de *DeniedError
	if !errors.As(err, &de) || de.Reason != consent.ReasonExpired {
		t.Fatalf("expired grant: %v, want an expired denial", err)
	}
	if a := f.lastAccess(t); a.Allow || a.Reason != consent.ReasonExpired || a.Grant != g.Hash() {
		t.Fatalf("logged %+v, want an expired denial naming the grant", a)
	}
}
