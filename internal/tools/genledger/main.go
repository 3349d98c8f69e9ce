// Command genledger writes a consent ledger of a chosen size straight into
// a ledger store (consent/boltstore), with the project's own consent code,
// for scripts/scale-bench.sh. It is a module of its own (as
// internal/tools/releasecheck), so that the main module's layering rules
// (internal packages import nothing above them) stay simple.
//
// The ledger tells the story the issue-12 figures measure: one patient (the
// identity of a key export, so that a wallet restored from it owns the
// feed) grants one clinician a record, a peer logs the clinician's access
// as allowed, the patient revokes the grant, and a peer logs the next
// access as denied (revoked); this cycle repeats until the patient's story
// holds -entries entries (about half of them in the patient's own feed,
// half access entries by the peers). With -patients N, N more patients
// (fresh keys) each tell the same story once (6 entries each), as the
// rest of a network. Every access is what consent.Decide answers at that
// point, so 'medwallet audit verify' accepts the ledger.
//
// Usage:
//
//	MEDWALLET_EXPORT_PASSPHRASE=... genledger -patient alice.key -clinician bob.key \
//	  -peer DIR1 -peer DIR2 -entries 10000 -out ledger.db
//
// -peer names a peer data directory: its key file (created if missing, as
// 'medwallet peer' does) signs the access entries, in turn. The output
// store must not exist yet; copy it into wallet homes and peer data
// directories (ledger.db) as needed.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/peer"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// config is what one run generates.
type config struct {
	patient, clinician *party // from key exports
	peers              []*party
	entries            int // entries of the main patient's story
	records            int // distinct records the grants cycle over
	patients           int // extra generated patients
	start              time.Time
	out                string
}

// party is a signer and what its identity entry says.
type party struct {
	signer  *consent.KeySigner
	card    consent.Card // Created, AgeRecipient and Role of the identity entry
	head    consent.Head
	entries int
}

func main() {
	var c config
	var peers multiFlag
	patient := flag.String("patient", "", "key export (medwallet key export) of the patient whose feed is generated")
	clinician := flag.String("clinician", "", "key export of the clinician the grants name")
	flag.Var(&peers, "peer", "peer data directory whose key signs access entries (repeatable; at least one)")
	flag.IntVar(&c.entries, "entries", 1000, "entries of the patient's story (grants, revocations, accesses)")
	flag.IntVar(&c.records, "records", 1, "distinct records the grants cycle over")
	flag.IntVar(&c.patients, "patients", 0, "further generated patients, 6 entries each")
	flag.StringVar(&c.out, "out", "", "ledger store to create (bbolt)")
	flag.Parse()
	if err := run(&c, *patient, *clinician, peers); err != nil {
		fmt.Fprintf(os.Stderr, "genledger: %v\n", err)
		os.Exit(1)
	}
}

func run(c *config, patientFile, clinicianFile string, peerDirs []string) error {
	if patientFile == "" || clinicianFile == "" || len(peerDirs) == 0 || c.out == "" {
		return errors.New("-patient, -clinician, -peer and -out are required")
	}
	if c.entries < 8 || c.records < 1 || c.patients < 0 {
		return errors.New("-entries must be 8 or more, -records 1 or more, -patients 0 or more")
	}
	pass, ok := os.LookupEnv("MEDWALLET_EXPORT_PASSPHRASE")
	if !ok {
		return errors.New("set MEDWALLET_EXPORT_PASSPHRASE to the key exports' passphrase")
	}
	var err error
	if c.patient, err = readExport(patientFile, pass); err != nil {
		return err
	}
	if c.clinician, err = readExport(clinicianFile, pass); err != nil {
		return err
	}
	for _, d := range peerDirs {
		priv, err := node.LoadOrCreateKey(filepath.Join(d, peer.KeyFile))
		if err != nil {
			return fmt.Errorf("peer key in %s: %w", d, err)
		}
		s, err := consent.NewKeySigner(priv)
		if err != nil {
			return err
		}
		c.peers = append(c.peers, &party{signer: s})
	}
	if _, err := os.Stat(c.out); err == nil {
		return fmt.Errorf("%s exists; genledger creates a new store", c.out)
	}
	st, err := boltstore.Open(c.out)
	if err != nil {
		return err
	}
	// Times: one second per entry, ending an hour ago, so that nothing is
	// in any wallet's future and grants are valid from their own time.
	total := c.entries + 6*c.patients + 2
	c.start = time.Now().Add(-time.Hour - time.Duration(total)*time.Second).Truncate(time.Second)
	n, err := generate(c, st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(c.out)
		return err
	}
	fmt.Printf("%d entries (patient %s, clinician %s, %d peers, %d more patients)\n", n,
		c.patient.signer.ID(), c.clinician.signer.ID(), len(c.peers), c.patients)
	return nil
}

// readExport opens a medwallet key export (docs/cli.md "Key backups").
func readExport(path, pass string) (*party, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(b)), id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var ej struct {
		Format string `json:"format"`
		Card   string `json:"card"`
		Seed   string `json:"ed25519_seed"`
	}
	if err := json.Unmarshal(plain, &ej); err != nil || ej.Format != "medwallet-key-export-v1" {
		return nil, fmt.Errorf("%s: not a medwallet key export", path)
	}
	card, err := consent.ParseCard(ej.Card)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seed, err := base64.StdEncoding.DecodeString(ej.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: bad seed", path)
	}
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, err
	}
	if s.ID() != card.ID {
		return nil, fmt.Errorf("%s: the seed does not match the card", path)
	}
	return &party{signer: s, card: card}, nil
}

// newParty makes a fresh identity with the given role.
func newParty(role string, created time.Time) (*party, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s, err := consent.NewKeySigner(priv)
	if err != nil {
		return nil, err
	}
	x, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	return &party{signer: s, card: consent.Card{ID: s.ID(), AgeRecipient: x.Recipient().String(), Role: role, Created: created.Unix()}}, nil
}

// writer appends entries to the store, one second apart, a batch per
// transaction when the store can (PutBatch), else one by one.
type writer struct {
	st      consent.Store
	clock   time.Time
	n       int
	nonce   uint64
	pending []*consent.Entry
}

// batchStore is a store that commits many entries at once.
type batchStore interface {
	PutBatch([]*consent.Entry) error
}

const batchSize = 1024

func (w *writer) put(e *consent.Entry) error {
	if _, ok := w.st.(batchStore); !ok {
		return w.st.Put(e)
	}
	w.pending = append(w.pending, e)
	if len(w.pending) >= batchSize {
		return w.flush()
	}
	return nil
}

// flush commits the pending entries.
func (w *writer) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	err := w.st.(batchStore).PutBatch(w.pending)
	w.pending = w.pending[:0]
	return err
}

func (w *writer) add(p *party, kind consent.Kind, body any) (*consent.Entry, error) {
	return w.addAt(p, w.clock, kind, body)
}

func (w *writer) addAt(p *party, t time.Time, kind consent.Kind, body any) (*consent.Entry, error) {
	e, err := consent.NewEntry(p.signer, p.head, t, kind, body)
	if err != nil {
		return nil, fmt.Errorf("%v entry: %w", kind, err)
	}
	if err := w.put(e); err != nil {
		return nil, err
	}
	p.head = e.Head()
	p.entries++
	w.n++
	w.clock = w.clock.Add(time.Second)
	return e, nil
}

// identity writes p's identity entry exactly as a wallet writes it (time:
// the card's creation; so a wallet restored from the key finds it its own).
func (w *writer) identity(p *party) error {
	_, err := w.addAt(p, time.Unix(p.card.Created, 0), consent.KindIdentity,
		&consent.IdentityBody{AgeRecipient: p.card.AgeRecipient, Role: p.card.Role})
	return err
}

// recordID is the ID of the generated record i of a patient (32 hex, as
// wallets make them).
func recordID(owner consent.ID, i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "genledger %s record %d", owner, i))
	return hex.EncodeToString(h[:16])
}

// story is one patient's cycles: grant, allowed access, revocation,
// denied access, over records; minGrant tracks, per record, the grant
// with the smallest ID that Decide reports on a revoked deny.
type story struct {
	w         *writer
	patient   *party
	clinician *party
	peers     []*party
	turn      int
	minGrant  map[string]consent.Hash
}

// access signs the clinician's request for rec and logs decision d as the
// next peer's access entry.
func (s *story) access(rec string, d consent.Decision) error {
	s.w.nonce++
	r, err := consent.SignRequest(s.clinician.signer, consent.Request{Owner: s.patient.signer.ID(), Record: rec,
		Scope: "patient/Observation.rs", Purpose: "TREAT", Time: s.w.clock.Unix(),
		Nonce: fmt.Appendf(nil, "genledger-%016d", s.w.nonce)})
	if err != nil {
		return err
	}
	p := s.peers[s.turn%len(s.peers)]
	s.turn++
	_, err = s.w.add(p, consent.KindAccess, &consent.AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason,
		Grant: d.Grant, OwnerHead: s.patient.head})
	return err
}

// cycle writes one grant, its allowed access, its revocation and the
// denied access after it: 4 entries, or the first room of them.
func (s *story) cycle(i, room int) error {
	rec := recordID(s.patient.signer.ID(), i)
	g := &consent.Grant{Grantee: s.clinician.signer.ID(), Records: []string{rec}, Scopes: []string{"patient/Observation.rs"},
		Purpose: "TREAT", NotBefore: s.w.clock.Unix(),
		Keys: []consent.WrappedKey{{Record: rec, Key: make([]byte, 200)}}}
	ge, err := s.w.add(s.patient, consent.KindGrant, g)
	if err != nil {
		return err
	}
	id := ge.Hash()
	if m, ok := s.minGrant[rec]; !ok || bytes.Compare(id[:], m[:]) < 0 {
		s.minGrant[rec] = id
	}
	if room < 2 {
		return nil
	}
	if err := s.access(rec, consent.Decision{Allow: true, Reason: consent.ReasonGranted, Grant: id}); err != nil || room < 3 {
		return err
	}
	if _, err := s.w.add(s.patient, consent.KindRevoke, &consent.RevokeBody{Grant: id}); err != nil || room < 4 {
		return err
	}
	return s.access(rec, consent.Decision{Reason: consent.ReasonRevoked, Grant: s.minGrant[rec]})
}

func generate(c *config, st consent.Store) (int, error) {
	w := &writer{st: st, clock: c.start}
	for _, p := range []*party{c.patient, c.clinician} {
		if err := w.identity(p); err != nil {
			return w.n, err
		}
	}
	// The patient's story: an anchor of each record, then cycles.
	s := &story{w: w, patient: c.patient, clinician: c.clinician, peers: c.peers, minGrant: map[string]consent.Hash{}}
	n := w.n
	for i := range min(c.records, c.entries/4) {
		rec := recordID(c.patient.signer.ID(), i)
		if _, err := w.add(c.patient, consent.KindAnchor, &consent.AnchorBody{Record: rec,
			Manifest: consent.HashBytes([]byte(rec))}); err != nil {
			return w.n, err
		}
	}
	for i := 0; w.n-n < c.entries; i++ {
		if err := s.cycle(i%min(c.records, c.entries/4), c.entries-(w.n-n)); err != nil {
			return w.n, err
		}
	}
	// The rest of the network: each further patient tells the story once.
	for range c.patients {
		p, err := newParty("patient", w.clock)
		if err != nil {
			return w.n, err
		}
		if err := w.identity(p); err != nil {
			return w.n, err
		}
		rec := recordID(p.signer.ID(), 0)
		if _, err := w.add(p, consent.KindAnchor, &consent.AnchorBody{Record: rec, Manifest: consent.HashBytes([]byte(rec))}); err != nil {
			return w.n, err
		}
		ps := &story{w: w, patient: p, clinician: c.clinician, peers: c.peers, turn: s.turn, minGrant: map[string]consent.Hash{}}
		if err := ps.cycle(0, 4); err != nil {
			return w.n, err
		}
		s.turn = ps.turn
	}
	return w.n, w.flush()
}
