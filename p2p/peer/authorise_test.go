package peer

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/serving"
)

type authWorld struct {
	t      *testing.T
	ledger *consent.Ledger
	a      *authoriser
	ids    map[string]*consent.KeySigner
	subs   map[string]*consent.SubFeed
	served *serving.Set
	holds  map[consent.ID]bool
	now    time.Time
}

func signer(t *testing.T, name string) *consent.KeySigner {
	seed := sha256.Sum256([]byte("authorise test " + name))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pid(t *testing.T, id consent.ID) lpeer.ID {
	p, err := lpeer.Decode(string(id))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newAuthWorld: this peer ("self") with a known peer K; it holds patient
// S's shares and T's not; S grants G directly and a role ID R (issuer I)
// that clinician C holds a credential for; K and Q (a peer of S's serve
// entry that this peer does not know) log accesses in sub-feeds.
func newAuthWorld(t *testing.T) *authWorld {
	l, err := consent.OpenLedger(consent.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	w := &authWorld{t: t, ledger: l, ids: map[string]*consent.KeySigner{}, subs: map[string]*consent.SubFeed{},
		holds: map[consent.ID]bool{}, now: time.Now()}
	for _, n := range []string{"self", "K", "Q", "X", "S", "T", "G", "C", "I", "R"} {
		w.ids[n] = signer(t, n)
	}
	if w.served, err = serving.Open(filepath.Join(t.TempDir(), serving.File)); err != nil {
		t.Fatal(err)
	}
	w.holds[w.id("S")] = true
	w.a = newAuthoriser(w.id("self"), l, w.served, func(id consent.ID) bool { return w.holds[id] },
		[]lpeer.ID{pid(t, w.id("K"))})
	w.add("I", consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1issuer", Role: "issuer"})
	w.add("I", consent.KindCredential, &consent.CredentialBody{Subject: w.id("C"), Role: "emergency-physician",
		RoleID: w.id("R"), NotBefore: w.now.Add(-time.Hour).Unix(), Details: []byte("ciphertext"), RoleRecipient: "age1role"})
	w.add("S", consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1s", Role: "patient"})
	w.add("S", consent.KindGrant, &consent.Grant{Grantee: w.id("G"), All: true, Scopes: []string{"patient/*.rs"},
		Purpose: "TREAT", NotBefore: w.now.Add(-time.Hour).Unix()})
	w.add("S", consent.KindGrant, &consent.Grant{Grantee: w.id("R"), All: true, Scopes: []string{"patient/*.rs"},
		Purpose: "ETREAT", NotBefore: w.now.Add(-time.Hour).Unix(), Issuer: w.id("I"), Role: "emergency-physician"})
	w.add("S", consent.KindServe, &consent.ServeBody{Peers: sorted(w.id("Q"), w.id("self"))})
	w.add("T", consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1t", Role: "patient"})
	for _, k := range []string{"K:S", "K:T", "Q:S"} {
		sf, err := consent.NewSubFeed(w.ids[k[:1]], w.id(k[2:]))
		if err != nil {
			t.Fatal(err)
		}
		w.subs[k] = sf
		if _, err := l.Append(sf, w.now, consent.KindLink, sf.Link()); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func sorted(a, b consent.ID) []consent.ID {
	if a > b {
		a, b = b, a
	}
	return []consent.ID{a, b}
}

func (w *authWorld) id(n string) consent.ID { return w.ids[n].ID() }

// feed names a feed: an identity's home feed, or "K:S" for K's sub-feed about S.
func (w *authWorld) feed(n string) consent.ID {
	if sf, ok := w.subs[n]; ok {
		return sf.ID()
	}
	return w.id(n)
}

func (w *authWorld) add(n string, kind consent.Kind, body any) *consent.Entry {
	w.t.Helper()
	e, err := w.ledger.Append(w.ids[n], w.now, kind, body)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// next signs, without storing it, the entry that would follow feed n.
func (w *authWorld) next(n string, kind consent.Kind, body any) *consent.Entry {
	w.t.Helper()
	var s consent.Signer = w.ids[n[:1]]
	if sf, ok := w.subs[n]; ok {
		s = sf
	}
	var head consent.Head
	w.ledger.View(func(v *consent.View) { head = v.Head(s.ID()) })
	e, err := consent.NewEntry(s, head, w.now, kind, body)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func TestAuthoriserReads(t *testing.T) {
	w := newAuthWorld(t)
	for _, c := range []struct {
		remote, feed string
		want         bool
	}{
		{"X", "S", false}, {"X", "K:S", false}, {"X", "T", false}, {"X", "C", false},
		{"X", "X", true}, {"X", "I", true}, {"X", "K", true}, {"X", "self", true},
		{"S", "S", true}, {"S", "K:S", true}, {"S", "Q:S", true}, {"S", "K:T", false}, {"S", "T", false},
		{"S", "C", true}, {"S", "G", true},
		{"G", "S", true}, {"G", "K:S", false}, {"G", "T", false},
		{"C", "S", true}, {"C", "K:S", false},
		{"Q", "S", true}, {"Q", "K:S", true}, {"Q", "T", false}, {"Q", "K:T", false},
		{"K", "S", true}, {"K", "K:T", true}, {"K", "T", true},
	} {
		if got := w.a.MayRead(pid(t, w.id(c.remote)), w.feed(c.feed)); got != c.want {
			t.Errorf("%s reads %s: %v, want %v", c.remote, c.feed, got, c.want)
		}
	}
}

func TestAuthoriserWrites(t *testing.T) {
	w := newAuthWorld(t)
	revokeS := w.next("S", consent.KindRevoke, &consent.RevokeBody{Grant: consent.Hash{1}})
	revokeT := w.next("T", consent.KindRevoke, &consent.RevokeBody{Grant: consent.Hash{1}})
	junkX := w.next("X", consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1x", Role: "patient"})
	issuerX := w.next("X", consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1x", Role: "issuer"})
	idG := w.next("G", consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1g", Role: "clinician"})
	idC := w.next("C", consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1c", Role: "clinician"})
	access := func(sub, owner string) *consent.Entry {
		r, err := consent.SignRequest(w.ids["G"], consent.Request{Owner: w.id(owner), Record: "rec-1", Scope: "patient/*.rs",
			Purpose: "TREAT", Time: w.now.Unix(), Nonce: []byte("0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		return w.next(sub, consent.KindAccess, &consent.AccessBody{Request: r.Encode(), Reason: consent.ReasonNoGrant})
	}
	accessKS, accessKT := access("K:S", "S"), access("K:T", "T")
	bgT := w.next("C", consent.KindBreakGlass, &consent.BreakGlassBody{Owner: w.id("T"), Grant: consent.Hash{2}, Reason: []byte("x")})
	bgS := w.next("C", consent.KindBreakGlass, &consent.BreakGlassBody{Owner: w.id("S"), Grant: consent.Hash{2}, Reason: []byte("x")})
	bgX := w.next("X", consent.KindBreakGlass, &consent.BreakGlassBody{Owner: w.id("S"), Grant: consent.Hash{2}, Reason: []byte("x")})
	x, _ := consent.NewSubFeed(w.ids["X"], w.id("S"))
	linkXS, err := consent.NewEntry(x, consent.Head{}, w.now, consent.KindLink, x.Link())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		remote string
		e      *consent.Entry
		want   bool
	}{
		{"the patient's own entry", "S", revokeS, true},
		{"a served patient's entry relayed by a known peer", "K", revokeS, true},
		{"a served patient's entry relayed by a serving peer", "Q", revokeS, true},
		{"a served patient's entry pushed by a stranger", "X", revokeS, false},
		{"an entry of a patient not served, by the patient", "T", revokeT, false},
		{"an entry of a patient not served, by a known peer", "K", revokeT, false},
		{"a stranger's own feed", "X", junkX, false},
		{"a stranger's link to a served patient", "X", linkXS, false},
		{"a serving peer's access about a served patient", "Q", access("Q:S", "S"), true},
		{"a stranger's identity as an issuer", "X", issuerX, true},
		{"a grantee's own feed", "G", idG, true},
		{"a role holder's own feed", "C", idC, true},
		{"a known peer's access about a served patient", "K", accessKS, true},
		{"a known peer's access about a patient not served", "K", accessKT, false},
		{"break-glass about a served patient", "C", bgS, true},
		{"break-glass about a patient not served", "C", bgT, true},           // C's feed: S names C
		{"a stranger's break-glass about a served patient", "X", bgX, false}, // no credential S's grants name
		{"a stranger's break-glass relayed by a known peer", "K", bgX, false},
	} {
		err := w.a.MayWrite(pid(t, w.id(c.remote)), c.e)
		if (err == nil) != c.want || err != nil && !errors.Is(err, errNotAuthorised) {
			t.Errorf("%s: %v, want allowed %v", c.name, err, c.want)
		}
	}
	// Enrolment makes T served.
	if _, err := w.served.Enrol(w.id("T"), serving.Secret{1}, w.now); err != nil {
		t.Fatal(err)
	}
	if err := w.a.MayWrite(pid(t, w.id("T")), revokeT); err != nil {
		t.Fatalf("an enrolled patient's entry: %v", err)
	}
}
