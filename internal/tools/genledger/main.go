// Command genledger writes a consent ledger of a chosen size straight into
// ledger stores (consent/boltstore), with the project's own consent code,
// for scripts/scale-bench.sh. It is a module of its own (as
// internal/tools/releasecheck), so that the main module's layering rules
// (internal packages import nothing above them) stay simple.
//
// The ledger tells the story the issue-12 figures measure: one patient (the
// identity of a key export, so that a wallet restored from it owns the
// feed) grants one clinician a record, a serving peer logs the clinician's
// access as allowed, the patient revokes the grant, and a serving peer logs
// the next access as denied (revoked); this cycle repeats until the
// patient's story holds -entries entries (about half of them in the
// patient's own feed, half access entries by the peers). With -patients N,
// N more patients (fresh keys) each tell the same story once, as the rest
// of a network. Every access is what consent.Decide answers at that point,
// so 'medwallet audit verify' accepts the ledger.
//
// Placement, as the code places a patient today (wallet/serve.go,
// p2p/serving, p2p/shares, p2p/peer/authorise.go):
//   - the network has -peers peers: the -peer data directories first, then
//     peers that exist only as keys (their feeds are generated, nothing is
//     written for them);
//   - patient i (0 is the patient of -patient, 1..N the others) is served
//     by k peers, peers (i*k + j) mod P for j < k (P peers): with P =
//     N*k/100, every peer serves exactly 100 patients;
//   - the patient's feed holds a serve entry naming them (consent.ServeBody,
//     sorted IDs) after its first record's anchor, as a wallet writes it
//     when placement ends;
//   - each access to the patient's records is logged by one of its serving
//     peers (in turn) in that peer's sub-feed about the patient
//     (consent.SubFeed: a link entry first, then access entries), as
//     p2p/shares does;
//   - each -peer directory gets a ledger.db with what the peer keeps under
//     need to know (the feeds of the patients it serves, the sub-feeds about
//     them, and the feeds of the parties they name: the clinician) and a
//     served set (p2p/serving.Set, kept as the peer keeps it) enrolling
//     those patients with their rendezvous secrets;
//   - -home DIR gets the patient's ledger.db as its wallet holds it after a
//     sync (its own feed, the sub-feeds about it, the clinician's feed);
//   - -out FILE gets every entry of the network (for audits and tests).
//
// Usage:
//
//	MEDWALLET_EXPORT_PASSPHRASE=... genledger -patient alice.key -clinician bob.key \
//	  -peer DIR1 -peer DIR2 -peer DIR3 -peers 300 -k 3 -patients 9999 -entries 40 -home ALICE
//
// -peer names a peer data directory: its key file (created if missing, as
// 'medwallet peer' does) signs its sub-feeds. No store it writes may exist
// yet. Destinations that keep the same patients get a copy of one store
// (written under -scratch when given, e.g. on tmpfs).
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
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/p2p/serving"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// config is what one run generates.
type config struct {
	patient, clinician *party // from key exports
	dirs               []string
	peers              []*party // the network's peers: one per dir first, then key-only ones
	npeers             int      // peers in the network (0: one per dir)
	k                  int      // serving peers per patient (0: every peer, at most consent.MaxServePeers)
	entries            int      // entries of the main patient's story
	records            int      // distinct records the grants cycle over
	patients           int      // extra generated patients
	home               string   // the patient's wallet home ("": none)
	out                string   // the whole network's store ("": none)
	scratch            string   // where stores are written before they are copied ("": in place)
	start              time.Time
}

// party is a signer and what its identity entry says.
type party struct {
	signer consent.Signer
	card   consent.Card // Created, AgeRecipient and Role of the identity entry
	head   consent.Head
}

func main() {
	var c config
	var peers multiFlag
	patient := flag.String("patient", "", "key export (medwallet key export) of the patient whose feed is generated")
	clinician := flag.String("clinician", "", "key export of the clinician the grants name")
	flag.Var(&peers, "peer", "peer data directory: gets the ledger.db and served set of what that peer keeps (repeatable; at least one)")
	flag.IntVar(&c.npeers, "peers", 0, "peers in the network, the -peer directories first (default: one per -peer)")
	flag.IntVar(&c.k, "k", 0, "serving peers per patient (default: every peer, at most 64)")
	flag.IntVar(&c.entries, "entries", 1000, "entries of the patient's story (anchors, serve, grants, revocations, links, accesses)")
	flag.IntVar(&c.records, "records", 1, "distinct records the grants cycle over")
	flag.IntVar(&c.patients, "patients", 0, "further generated patients, one story each")
	flag.StringVar(&c.home, "home", "", "the patient's wallet home: gets the ledger.db its wallet holds")
	flag.StringVar(&c.out, "out", "", "store to create with every entry of the network (bbolt)")
	flag.StringVar(&c.scratch, "scratch", "", "directory to write the stores in before they are copied (e.g. on tmpfs)")
	flag.Parse()
	c.dirs = peers
	if err := run(&c, *patient, *clinician); err != nil {
		fmt.Fprintf(os.Stderr, "genledger: %v\n", err)
		os.Exit(1)
	}
}

func run(c *config, patientFile, clinicianFile string) error {
	if patientFile == "" || clinicianFile == "" || len(c.dirs) == 0 {
		return errors.New("-patient, -clinician and -peer are required")
	}
	if c.entries < 8 || c.records < 1 || c.patients < 0 {
		return errors.New("-entries must be 8 or more, -records 1 or more, -patients 0 or more")
	}
	if c.npeers == 0 {
		c.npeers = len(c.dirs)
	}
	if c.k == 0 {
		c.k = min(c.npeers, consent.MaxServePeers)
	}
	if c.npeers < len(c.dirs) || c.k < 1 || c.k > c.npeers || c.k > consent.MaxServePeers {
		return fmt.Errorf("-peers must be at least the %d -peer directories, -k 1 to min(-peers, %d)", len(c.dirs), consent.MaxServePeers)
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
	for _, d := range c.dirs {
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
	for len(c.peers) < c.npeers {
		p, err := newParty("peer", time.Time{})
		if err != nil {
			return err
		}
		c.peers = append(c.peers, p)
	}
	sinks, err := c.sinks()
	if err != nil {
		return err
	}
	// Times: one second per entry, ending an hour ago or earlier, so that
	// nothing is in any wallet's future and grants are valid from their
	// own time.
	total := c.entries + 2 + (9+c.k)*c.patients
	c.start = time.Now().Add(-time.Hour - time.Duration(total)*time.Second).Truncate(time.Second)
	g := &gen{c: c, sinks: sinks, clock: c.start, served: make([]map[consent.ID]member, len(c.dirs))}
	genErr := g.generate()
	for _, s := range sinks {
		if err := s.close(); genErr == nil {
			genErr = err
		}
	}
	if genErr == nil {
		genErr = g.finish()
	}
	if genErr != nil {
		for _, s := range sinks {
			s.remove()
		}
		return genErr
	}
	fmt.Printf("network: %d entries, %d patients, %d peers (%d with a directory), %d serving peers each; patient %s, clinician %s\n",
		g.n, c.patients+1, len(c.peers), len(c.dirs), c.k, c.patient.signer.ID(), c.clinician.signer.ID())
	for i, d := range c.dirs {
		fmt.Printf("peer %s: %d entries, %d patients served\n", d, sinkOf(sinks, peerDest(i)).entries, len(g.served[i]))
	}
	if c.home != "" {
		fmt.Printf("home %s: %d entries\n", c.home, sinkOf(sinks, homeDest).entries)
	}
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

// servingPeers returns the indices of patient i's serving peers, in the
// order they take turns logging accesses: (i*k + j) mod P for j < k.
func (c *config) servingPeers(i int) []int {
	out := make([]int, c.k)
	for j := range out {
		out[j] = (i*c.k + j) % len(c.peers)
	}
	return out
}

// Destinations: a -peer directory (by index), the home, the whole network.
type dest int

const (
	homeDest dest = -1
	outDest  dest = -2
)

func peerDest(i int) dest { return dest(i) }

// sink is one store being written and the destinations that get a copy
// of it: those that keep the same patients.
type sink struct {
	dests    []dest
	paths    []string // ledger.db of each destination
	tmp      string   // the store written ("" = paths[0])
	all      bool     // keeps every entry (-out)
	subjects map[int]bool
	st       *boltstore.Store
	pending  []*consent.Entry
	entries  int
}

func sinkOf(sinks []*sink, d dest) *sink {
	for _, s := range sinks {
		if slices.Contains(s.dests, d) {
			return s
		}
	}
	return nil
}

func (s *sink) keeps(patient int) bool { return s.all || s.subjects[patient] }

// sinks groups the destinations by the patients they keep and opens one
// store per group.
func (c *config) sinks() ([]*sink, error) {
	keep := map[dest][]int{}
	if c.home != "" {
		keep[homeDest] = []int{0}
	}
	for i := 0; i <= c.patients; i++ {
		for _, p := range c.servingPeers(i) {
			if p < len(c.dirs) {
				keep[peerDest(p)] = append(keep[peerDest(p)], i)
			}
		}
	}
	var out []*sink
	byKey := map[string]*sink{}
	add := func(d dest, path string, all bool, subjects []int) error {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists; genledger creates new stores", path)
		}
		var key strings.Builder
		key.WriteString(strconv.FormatBool(all))
		for _, i := range subjects {
			key.WriteString("," + strconv.Itoa(i))
		}
		s, ok := byKey[key.String()]
		if !ok {
			s = &sink{all: all, subjects: map[int]bool{}}
			for _, i := range subjects {
				s.subjects[i] = true
			}
			byKey[key.String()] = s
			out = append(out, s)
		}
		s.dests = append(s.dests, d)
		s.paths = append(s.paths, path)
		return nil
	}
	if c.out != "" {
		if err := add(outDest, c.out, true, nil); err != nil {
			return nil, err
		}
	}
	if c.home != "" {
		if err := add(homeDest, filepath.Join(c.home, "ledger.db"), false, keep[homeDest]); err != nil {
			return nil, err
		}
	}
	for i, d := range c.dirs {
		if _, err := os.Stat(filepath.Join(d, serving.File)); err == nil {
			return nil, fmt.Errorf("%s exists; genledger creates new served sets", filepath.Join(d, serving.File))
		}
		if err := add(peerDest(i), filepath.Join(d, peer.LedgerFile), false, keep[peerDest(i)]); err != nil {
			return nil, err
		}
	}
	for i, s := range out {
		path := s.paths[0]
		if c.scratch != "" {
			s.tmp = filepath.Join(c.scratch, fmt.Sprintf("genledger-%d-%d.db", os.Getpid(), i))
			path = s.tmp
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		st, err := boltstore.Open(path)
		if err != nil {
			for _, s := range out[:i] {
				s.close()
				s.remove()
			}
			return nil, err
		}
		s.st = st
	}
	return out, nil
}

// batchSize is how many entries one transaction commits (PutBatch).
const batchSize = 1024

func (s *sink) put(e *consent.Entry) error {
	s.pending = append(s.pending, e)
	s.entries++
	if len(s.pending) >= batchSize {
		return s.flush()
	}
	return nil
}

func (s *sink) flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	err := s.st.PutBatch(s.pending)
	s.pending = s.pending[:0]
	return err
}

// close commits what is pending, closes the store and copies it to every
// destination of the sink.
func (s *sink) close() error {
	if s.st == nil {
		return nil
	}
	err := s.flush()
	if err == nil {
		// Leave the store as a medwallet that closed its ledger leaves
		// it: with its view state saved beside the entries (OpenLedger
		// rebuilds and saves it; Close closes the store).
		var l *consent.Ledger
		if l, err = consent.OpenLedger(s.st); err == nil {
			err = l.Close()
		}
	} else {
		s.st.Close()
	}
	s.st = nil
	if err != nil {
		return err
	}
	src := s.paths[0]
	if s.tmp != "" {
		src = s.tmp
		if err := copyFile(s.tmp, s.paths[0]); err != nil {
			return err
		}
	}
	for _, p := range s.paths[1:] {
		if err := copyFile(src, p); err != nil {
			return err
		}
	}
	if s.tmp != "" {
		return os.Remove(s.tmp)
	}
	return nil
}

// remove deletes what the sink wrote (after a failure).
func (s *sink) remove() {
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
	for _, p := range s.paths {
		os.Remove(p)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// member is one patient a peer serves: its rendezvous secret and
// enrolment time.
type member struct {
	secret serving.Secret
	since  time.Time
}

// gen writes the network.
type gen struct {
	c      *config
	sinks  []*sink
	clock  time.Time
	n      int
	nonce  uint64
	served []map[consent.ID]member // per -peer directory
}

// add signs the next entry of p's feed, dated t, and puts it in the
// sinks that keep patient (-1: every sink that keeps a patient, for the
// clinician they all name).
func (g *gen) add(patient int, p *party, t time.Time, kind consent.Kind, body any) (*consent.Entry, error) {
	e, err := consent.NewEntry(p.signer, p.head, t, kind, body)
	if err != nil {
		return nil, fmt.Errorf("%v entry: %w", kind, err)
	}
	for _, s := range g.sinks {
		if patient < 0 && (s.all || len(s.subjects) > 0) || patient >= 0 && s.keeps(patient) {
			if err := s.put(e); err != nil {
				return nil, err
			}
		}
	}
	p.head = e.Head()
	g.n++
	g.clock = g.clock.Add(time.Second)
	return e, nil
}

// identity writes p's identity entry exactly as a wallet writes it (time:
// the card's creation; so a wallet restored from the key finds it its own).
func (g *gen) identity(patient int, p *party) error {
	_, err := g.add(patient, p, time.Unix(p.card.Created, 0), consent.KindIdentity,
		&consent.IdentityBody{AgeRecipient: p.card.AgeRecipient, Role: p.card.Role})
	return err
}

// enrol records that the -peer directories among the patient's serving
// peers serve it (their served sets), with its rendezvous secret.
func (g *gen) enrol(p *party, peers []int) error {
	var secret [32]byte
	var have bool
	for _, i := range peers {
		if i >= len(g.c.dirs) {
			continue
		}
		if !have {
			var err error
			if secret, err = consent.Rendezvous(p.signer); err != nil {
				return err
			}
			have = true
		}
		if g.served[i] == nil {
			g.served[i] = make(map[consent.ID]member)
		}
		g.served[i][p.signer.ID()] = member{secret: serving.Secret(secret), since: time.Unix(p.card.Created, 0)}
	}
	return nil
}

// finish enrols, in each peer directory's served set (p2p/serving, as
// the peer keeps it), the patients that peer serves.
func (g *gen) finish() error {
	for i, d := range g.c.dirs {
		set, err := serving.Open(filepath.Join(d, serving.File))
		if err != nil {
			return err
		}
		ids := make([]consent.ID, 0, len(g.served[i]))
		for id := range g.served[i] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			m := g.served[i][id]
			if _, err = set.Enrol(id, m.secret, m.since); err != nil {
				break
			}
		}
		// A set kept in a database has a Close.
		if c, ok := any(set).(io.Closer); ok {
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("served set of %s: %w", d, err)
		}
	}
	return nil
}

// recordID is the ID of the generated record i of a patient (32 hex, as
// wallets make them).
func recordID(owner consent.ID, i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "genledger %s record %d", owner, i))
	return hex.EncodeToString(h[:16])
}

// story is one patient's entries: its anchors and serve entry, then
// cycles of grant, allowed access, revocation and denied access over its
// records, until left entries are written. minGrant tracks, per record,
// the grant with the smallest ID that Decide reports on a revoked deny.
type story struct {
	g         *gen
	index     int
	patient   *party
	clinician *party
	serving   []int                   // peer indices, in turn order
	subs      map[int]*party          // the serving peers' sub-feeds about the patient
	minGrant  map[string]consent.Hash // per record
	turn      int
	left      int
}

func (s *story) add(p *party, kind consent.Kind, body any) (*consent.Entry, error) {
	e, err := s.g.add(s.index, p, s.g.clock, kind, body)
	s.left--
	return e, err
}

// place writes the anchors of the patient's first n records and the serve
// entry naming its serving peers (as a wallet's first record add does),
// and enrols the patient on them.
func (s *story) place(n int) error {
	for i := range n {
		rec := recordID(s.patient.signer.ID(), i)
		if _, err := s.add(s.patient, consent.KindAnchor, &consent.AnchorBody{Record: rec,
			Manifest: consent.HashBytes([]byte(rec))}); err != nil {
			return err
		}
	}
	ids := make([]consent.ID, len(s.serving))
	for j, p := range s.serving {
		ids[j] = s.g.c.peers[p].signer.ID()
	}
	slices.Sort(ids)
	if _, err := s.add(s.patient, consent.KindServe, &consent.ServeBody{Peers: ids}); err != nil {
		return err
	}
	return s.g.enrol(s.patient, s.serving)
}

// access signs the clinician's request for rec and logs decision d as the
// next serving peer's access entry, in its sub-feed about the patient
// (opened by a link entry the first time).
func (s *story) access(rec string, d consent.Decision) error {
	pi := s.serving[s.turn%len(s.serving)]
	s.turn++
	sub, ok := s.subs[pi]
	if !ok {
		f, err := consent.NewSubFeed(s.g.c.peers[pi].signer, s.patient.signer.ID())
		if err != nil {
			return err
		}
		sub = &party{signer: f}
		s.subs[pi] = sub
		if _, err := s.add(sub, consent.KindLink, f.Link()); err != nil || s.left <= 0 {
			return err
		}
	}
	s.g.nonce++
	r, err := consent.SignRequest(s.clinician.signer, consent.Request{Owner: s.patient.signer.ID(), Record: rec,
		Scope: "patient/Observation.rs", Purpose: "TREAT", Time: s.g.clock.Unix(),
		Nonce: fmt.Appendf(nil, "genledger-%016d", s.g.nonce)})
	if err != nil {
		return err
	}
	_, err = s.add(sub, consent.KindAccess, &consent.AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason,
		Grant: d.Grant, OwnerHead: s.patient.head})
	return err
}

// cycle writes one grant on record i, its allowed access, its revocation
// and the denied access after it, stopping when the story is full.
func (s *story) cycle(i int) error {
	rec := recordID(s.patient.signer.ID(), i)
	g := &consent.Grant{Grantee: s.clinician.signer.ID(), Records: []string{rec}, Scopes: []string{"patient/Observation.rs"},
		Purpose: "TREAT", NotBefore: s.g.clock.Unix(),
		Keys: []consent.WrappedKey{{Record: rec, Key: make([]byte, 200)}}}
	ge, err := s.add(s.patient, consent.KindGrant, g)
	if err != nil || s.left <= 0 {
		return err
	}
	id := ge.Hash()
	if m, ok := s.minGrant[rec]; !ok || bytes.Compare(id[:], m[:]) < 0 {
		s.minGrant[rec] = id
	}
	if err := s.access(rec, consent.Decision{Allow: true, Reason: consent.ReasonGranted, Grant: id}); err != nil || s.left <= 0 {
		return err
	}
	if _, err := s.add(s.patient, consent.KindRevoke, &consent.RevokeBody{Grant: id}); err != nil || s.left <= 0 {
		return err
	}
	return s.access(rec, consent.Decision{Reason: consent.ReasonRevoked, Grant: s.minGrant[rec]})
}

func (g *gen) newStory(i int, p *party) *story {
	return &story{g: g, index: i, patient: p, clinician: g.c.clinician, serving: g.c.servingPeers(i),
		subs: map[int]*party{}, minGrant: map[string]consent.Hash{}, turn: i}
}

func (g *gen) generate() error {
	c := g.c
	if err := g.identity(0, c.patient); err != nil {
		return err
	}
	if err := g.identity(-1, c.clinician); err != nil {
		return err
	}
	// The patient's story: the anchor of each record and the serve entry,
	// then cycles.
	s := g.newStory(0, c.patient)
	s.left = c.entries
	records := min(c.records, c.entries/4)
	if err := s.place(records); err != nil {
		return err
	}
	for i := 0; s.left > 0; i++ {
		if err := s.cycle(i % records); err != nil {
			return err
		}
	}
	// The rest of the network: each further patient tells the story once.
	for i := 1; i <= c.patients; i++ {
		p, err := newParty("patient", g.clock)
		if err != nil {
			return err
		}
		if err := g.identity(i, p); err != nil {
			return err
		}
		ps := g.newStory(i, p)
		ps.left = 1 << 30
		if err := ps.place(1); err != nil {
			return err
		}
		if err := ps.cycle(0); err != nil {
			return err
		}
	}
	return nil
}
