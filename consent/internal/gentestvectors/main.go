// Command gentestvectors writes the consent test vectors in
// consent/testdata/vectors from fixed keys and fixed times, so that the
// output is byte-for-byte reproducible:
//
//	go run ./consent/internal/gentestvectors -out consent/testdata/vectors
//
// The tests in package consent check the Go implementation against these
// files; testdata/vectors/verify.py checks them with an independent
// implementation (Python, cryptography's Ed25519).
package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/internal/vectors"
)

// base is 2026-01-01T00:00:00Z; every time in the vectors is base plus a
// few minutes.
var base = time.Unix(1767225600, 0).UTC()

type actor struct {
	name string
	priv ed25519.PrivateKey
	s    *consent.KeySigner
}

func newActor(name string) actor {
	priv := vectors.TestKey(name)
	s, err := consent.NewKeySigner(priv)
	check(err)
	return actor{name, priv, s}
}

func (a actor) key() vectors.VectorKey {
	return vectors.VectorKey{Name: a.name, Seed: hex.EncodeToString(a.priv.Seed()), ID: a.s.ID()}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func entry(a actor, head consent.Head, minutes int, kind consent.Kind, body any) *consent.Entry {
	e, err := consent.NewEntry(a.s, head, base.Add(time.Duration(minutes)*time.Minute), kind, body)
	check(err)
	return e
}

// signRaw signs e as is, bypassing NewEntry's checks (for invalid vectors).
func signRaw(a actor, e *consent.Entry) *consent.Entry {
	e.Sig = ed25519.Sign(a.priv, e.SignedMessage())
	return e
}

func hexes(es ...*consent.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = hex.EncodeToString(e.Encode())
	}
	return out
}

func main() {
	out := flag.String("out", "consent/testdata/vectors", "output directory")
	flag.Parse()
	alice, bob, carol := newActor("alice"), newActor("bob"), newActor("carol")

	// Alice's feed: identity, anchor, grant to bob, an access she decided
	// on bob's request, then the revocation of the grant.
	e1 := entry(alice, consent.Head{}, 0, consent.KindIdentity, &consent.IdentityBody{
		AgeRecipient: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", Role: "patient"})
	e2 := entry(alice, e1.Head(), 1, consent.KindAnchor, &consent.AnchorBody{
		Record: "rec-7f3a9c2e1b4d", Manifest: consent.HashBytes([]byte("encrypted manifest bytes"))})
	grant := &consent.Grant{
		Grantee: bob.s.ID(), Records: []string{"rec-7f3a9c2e1b4d"},
		Scopes: []string{"patient/Observation.rs?category=laboratory"}, Purpose: "TREAT",
		NotBefore: base.Unix(), Expires: base.Add(30 * 24 * time.Hour).Unix(),
		Keys: []consent.WrappedKey{{Record: "rec-7f3a9c2e1b4d", Key: []byte("age-encryption.org/v1 opaque wrapped key")}},
	}
	e3 := entry(alice, e2.Head(), 2, consent.KindGrant, grant)
	req, err := consent.SignRequest(bob.s, consent.Request{
		Owner: alice.s.ID(), Record: "rec-7f3a9c2e1b4d", Scope: "patient/Observation.rs?category=laboratory",
		Purpose: "TREAT", Time: base.Add(3 * time.Minute).Unix(), Nonce: []byte("0123456789abcdef"),
	})
	check(err)
	e4 := entry(alice, e3.Head(), 3, consent.KindAccess, &consent.AccessBody{
		Request: req.Encode(), Allow: true, Reason: consent.ReasonGranted, Grant: e3.Hash(), OwnerHead: e3.Head()})
	e5 := entry(alice, e4.Head(), 4, consent.KindRevoke, &consent.RevokeBody{Grant: e3.Hash()})

	// Tampered variants.
	flipSig := *e3
	flipSig.Sig = append([]byte(nil), e3.Sig...)
	flipSig.Sig[10] ^= 0x01
	flipTime := *e2
	flipTime.Time ^= 1
	wrongPrev := entry(alice, consent.Head{Seq: 2, Hash: e1.Hash(), Time: e2.Time}, 2, consent.KindGrant, grant)
	other := *grant
	other.Purpose = "HPAYMT"
	equiv := entry(alice, e2.Head(), 2, consent.KindGrant, &other)
	bob1 := entry(bob, consent.Head{}, 0, consent.KindIdentity, &consent.IdentityBody{
		AgeRecipient: "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", Role: "clinician"})
	unknownKind := signRaw(alice, &consent.Entry{Author: alice.s.ID(), Seq: 2, Prev: e1.Hash(), Time: e1.Time + 60, Kind: 99, Body: []byte{0xa0}})
	backwards := entry(alice, consent.Head{Seq: 1, Hash: e1.Hash()}, -10, consent.KindAnchor, &consent.AnchorBody{
		Record: "rec-7f3a9c2e1b4d", Manifest: consent.HashBytes([]byte("encrypted manifest bytes"))})
	noPrev := signRaw(alice, &consent.Entry{Author: alice.s.ID(), Seq: 2, Time: e1.Time + 60, Kind: consent.KindRevoke, Body: mustMarshal(&consent.RevokeBody{Grant: e3.Hash()})})
	v1Scope := *grant
	v1Scope.Scopes = []string{"patient/Observation.read"}
	badBody := signRaw(alice, &consent.Entry{Author: alice.s.ID(), Seq: 3, Prev: e2.Hash(), Time: e2.Time + 60, Kind: consent.KindGrant, Body: mustMarshal(&v1Scope)})
	proof, err := consent.NewEquivocationProof(e3, equiv)
	check(err)
	c1 := entry(carol, consent.Head{}, 10, consent.KindIdentity, &consent.IdentityBody{
		AgeRecipient: "age1mrmfnwhtlprn4jquex0ukmwcm7y2nxlphuzgsgv8ew2k9mewy3rs8u7su5", Role: "peer"})
	c2 := entry(carol, c1.Head(), 11, consent.KindEquivocation, proof)

	// Non-canonical: seq 1 encoded in two bytes (0x18 0x01) instead of one.
	enc := e1.Encode()
	i := 1 + 1 + 2 + len(alice.s.ID()) // map head, key 1, text head, author
	if enc[i] != 0x02 || enc[i+1] != 0x01 {
		log.Fatalf("unexpected encoding at %d: % x", i, enc[i:i+2])
	}
	nonCanon := append(append(append([]byte(nil), enc[:i+1]...), 0x18, 0x01), enc[i+2:]...)

	// Emergency access. Mercy (an issuer) credentials frank as an
	// emergency physician; alice, after the entries above, grants that
	// role an emergency grant with a 4-hour time box; frank breaks the
	// glass; alice's feed logs the emergency allow of frank's request
	// naming it (with the requester's and issuer's heads), then her review.
	mercy, frank := newActor("mercy"), newActor("frank")
	erRole := newActor("mercy emergency-physician role")
	const role = "emergency-physician"
	m1 := entry(mercy, consent.Head{}, 0, consent.KindIdentity, &consent.IdentityBody{
		AgeRecipient: "age1ln4ghscmm9u2wfwnjlgh4qzr9rnh6v8xy6mqvjgwj7u0gh6gqs3qu2jvd6", Role: "issuer"})
	m2 := entry(mercy, m1.Head(), 1, consent.KindCredential, &consent.CredentialBody{
		Subject: frank.s.ID(), Role: role, RoleID: erRole.s.ID(), NotBefore: base.Unix(),
		Expires: base.Add(365 * 24 * time.Hour).Unix(), Details: []byte("age-encryption.org/v1 opaque credential details"),
		RoleRecipient: "age1role5g2v9h0jz3l4rpt0pxy9ltzc0ss8f6lqa3k7rj0ez4hgsrqs9w2ye8t"})
	f1 := entry(frank, consent.Head{}, 0, consent.KindIdentity, &consent.IdentityBody{
		AgeRecipient: "age1frk2x4y2yd0l3hw6m7t5q4qv8j5ncrkx0wz3wh6h5uzqf6d8sm0q7qj4xv", Role: "clinician"})
	emGrant := &consent.Grant{
		Grantee: erRole.s.ID(), Issuer: mercy.s.ID(), Role: role, Records: []string{"rec-7f3a9c2e1b4d"},
		Scopes: []string{"patient/*.rs"}, Purpose: consent.PurposeEmergency, NotBefore: base.Unix(), TimeBox: 4 * 3600,
		Keys: []consent.WrappedKey{{Record: "rec-7f3a9c2e1b4d", Key: []byte("age-encryption.org/v1 opaque key wrapped to the role")}},
	}
	e6 := entry(alice, e5.Head(), 5, consent.KindGrant, emGrant)
	f2 := entry(frank, f1.Head(), 6, consent.KindBreakGlass, &consent.BreakGlassBody{
		Owner: alice.s.ID(), Grant: e6.Hash(), Reason: []byte("age-encryption.org/v1 opaque reason")})
	bgReq, err := consent.SignRequest(frank.s, consent.Request{
		Owner: alice.s.ID(), Record: "rec-7f3a9c2e1b4d", Scope: "patient/*.rs", Purpose: consent.PurposeEmergency,
		Time: base.Add(7 * time.Minute).Unix(), Nonce: []byte("fedcba9876543210"), BreakGlass: f2.Hash(),
	})
	check(err)
	frankHead, mercyHead := f2.Head(), m2.Head()
	e7 := entry(alice, e6.Head(), 7, consent.KindAccess, &consent.AccessBody{
		Request: bgReq.Encode(), Allow: true, Reason: consent.ReasonEmergency, Grant: e6.Hash(), OwnerHead: e6.Head(),
		RequesterHead: &frankHead, Issuer: mercy.s.ID(), IssuerHead: &mercyHead, Credential: m2.Hash(),
		Until: f2.Time + emGrant.TimeBox})
	e8 := entry(alice, e7.Head(), 8, consent.KindReview, &consent.ReviewBody{Access: f2.Hash(), Outcome: consent.ReviewOK})

	feedHead := e5.Head()
	feeds := vectors.VectorFile{
		Description: "Ledger feeds. Each case lists encoded entries (hex) in the order a verifier receives them, claiming to be feed `feed`. Valid cases must verify to `head`; invalid ones must be refused with `error`.",
		Keys:        []vectors.VectorKey{alice.key(), bob.key(), carol.key(), mercy.key(), frank.key(), erRole.key()},
		Cases: []vectors.VectorCase{
			{Name: "valid-feed", Description: "identity, anchor, grant, access, revoke", Feed: alice.s.ID(), Entries: hexes(e1, e2, e3, e4, e5), Valid: true, Head: &feedHead},
			{Name: "valid-credential", Description: "mercy (an issuer) credentials frank as an emergency physician", Feed: mercy.s.ID(), Entries: hexes(m1, m2), Valid: true, Head: ptr(m2.Head())},
			{Name: "valid-break-glass", Description: "frank breaks the glass on alice's emergency grant (valid-emergency entry 6)", Feed: frank.s.ID(), Entries: hexes(f1, f2), Valid: true, Head: ptr(f2.Head())},
			{Name: "valid-emergency", Description: "valid-feed, then an emergency role grant, the emergency allow of frank's request naming his break-glass entry (with the requester's and issuer's heads), and alice's review of it", Feed: alice.s.ID(), Entries: hexes(e1, e2, e3, e4, e5, e6, e7, e8), Valid: true, Head: ptr(e8.Head())},
			{Name: "valid-first-entry", Description: "a feed of one identity entry", Feed: alice.s.ID(), Entries: hexes(e1), Valid: true, Head: ptr(e1.Head())},
			{Name: "valid-equivocation-proof", Description: "carol's feed carries a proof that alice equivocated at seq 3", Feed: carol.s.ID(), Entries: hexes(c1, c2), Valid: true, Head: ptr(c2.Head())},
			{Name: "flipped-bit-signature", Description: "bit 0 of signature byte 10 of entry 3 flipped", Feed: alice.s.ID(), Entries: hexes(e1, e2, &flipSig, e4, e5), Error: "bad-signature"},
			{Name: "flipped-bit-time", Description: "low bit of entry 2's time flipped", Feed: alice.s.ID(), Entries: hexes(e1, &flipTime, e3), Error: "bad-signature"},
			{Name: "wrong-prev", Description: "entry 3 validly signed but chained to entry 1", Feed: alice.s.ID(), Entries: hexes(e1, e2, wrongPrev), Error: "wrong-prev"},
			{Name: "gap", Description: "entry 3 missing", Feed: alice.s.ID(), Entries: hexes(e1, e2, e4, e5), Error: "gap"},
			{Name: "reordered", Description: "entries 2 and 3 swapped", Feed: alice.s.ID(), Entries: hexes(e1, e3, e2, e4, e5), Error: "reordered"},
			{Name: "wrong-author", Description: "bob's first entry inside alice's feed", Feed: alice.s.ID(), Entries: hexes(e1, e2, bob1), Error: "wrong-author"},
			{Name: "duplicated-seq", Description: "two different validly signed entries at seq 3: equivocation", Feed: alice.s.ID(), Entries: hexes(e1, e2, e3, equiv), Error: "equivocation"},
			{Name: "duplicate-entry", Description: "entry 2 delivered twice inside one feed listing", Feed: alice.s.ID(), Entries: hexes(e1, e2, e2), Error: "duplicate"},
			{Name: "unknown-kind", Description: "validly signed entry of kind 99", Feed: alice.s.ID(), Entries: hexes(e1, unknownKind), Error: "unknown-kind"},
			{Name: "time-backwards", Description: "entry 2 dated ten minutes before entry 1", Feed: alice.s.ID(), Entries: hexes(e1, backwards), Error: "time-backwards"},
			{Name: "missing-prev", Description: "seq 2 with a zero previous hash", Feed: alice.s.ID(), Entries: hexes(e1, noPrev), Error: "malformed"},
			{Name: "bad-grant-body", Description: "grant with a v1 scope that is not in canonical v2 form", Feed: alice.s.ID(), Entries: hexes(e1, e2, badBody), Error: "malformed"},
			{Name: "not-canonical", Description: "entry 1 with seq encoded in two bytes", Feed: alice.s.ID(), Entries: []string{hex.EncodeToString(nonCanon)}, Error: "not-canonical"},
		},
	}

	// Valid cases list the kind of each entry, so that a checker can
	// confirm it decodes every body into its kind's type.
	for i, c := range feeds.Cases {
		if !c.Valid {
			continue
		}
		for _, h := range c.Entries {
			b, err := hex.DecodeString(h)
			check(err)
			e, err := consent.DecodeEntry(b)
			check(err)
			_, err = e.DecodedBody()
			check(err)
			feeds.Cases[i].Kinds = append(feeds.Cases[i].Kinds, e.Kind.String())
		}
	}

	flipReq := *req
	flipReq.Time ^= 1
	forged := *req
	forged.Sig = ed25519.Sign(carol.priv, req.SignedMessage())
	shortNonce := *req
	shortNonce.Nonce = []byte("short")
	shortNonce.Sig = ed25519.Sign(bob.priv, shortNonce.SignedMessage())
	requests := vectors.VectorFile{
		Description: "Access requests (hex). Valid ones decode and verify; invalid ones must be refused with `error`.",
		Keys:        []vectors.VectorKey{alice.key(), bob.key(), carol.key(), mercy.key(), frank.key(), erRole.key()},
		Cases: []vectors.VectorCase{
			{Name: "valid-request", Description: "bob asks for alice's record", Request: hex.EncodeToString(req.Encode()), Valid: true},
			{Name: "valid-break-glass-request", Description: "frank asks for alice's record under her emergency grant, naming his break-glass entry (key 9)", Request: hex.EncodeToString(bgReq.Encode()), Valid: true},
			{Name: "flipped-bit-time", Description: "low bit of the time flipped", Request: hex.EncodeToString(flipReq.Encode()), Error: "bad-signature"},
			{Name: "wrong-signer", Description: "bob's request signed by carol", Request: hex.EncodeToString(forged.Encode()), Error: "bad-signature"},
			{Name: "short-nonce", Description: "a 5-byte nonce", Request: hex.EncodeToString(shortNonce.Encode()), Error: "malformed"},
		},
	}
	check(os.MkdirAll(*out, 0o755))
	write(filepath.Join(*out, "feeds.json"), feeds)
	write(filepath.Join(*out, "requests.json"), requests)
}

func ptr(h consent.Head) *consent.Head { return &h }

func mustMarshal(v any) []byte {
	b, err := consent.Marshal(v)
	check(err)
	return b
}

func write(path string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	check(err)
	check(os.WriteFile(path, append(b, '\n'), 0o644))
	fmt.Println("wrote", path)
}
