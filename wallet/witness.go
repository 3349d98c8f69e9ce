package wallet

// Witnessed checkpoints: after each publish the wallet signs a checkpoint
// of its own feed with the feed's checkpoint key and asks witnesses (peers
// of the network file) to cosign it; it keeps the newest cosigned
// checkpoint and any conflicting one a witness shows it, in
// HOME/witness.json, and puts them with the key certificate in exports
// and in the audit. See docs/format.md, "Checkpoints and witnesses".

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/witness"
)

// witnessFile holds the wallet's checkpoints and what witnesses showed it.
const witnessFile = "witness.json"

// DefaultWitnesses is how many witnesses the wallet asks to cosign each
// checkpoint unless Config.Witnesses says otherwise.
const DefaultWitnesses = 3

// maxEvidence bounds the conflicting checkpoints kept per feed.
const maxEvidence = 16

// witnessTimeout bounds the whole round of cosignatures after a publish.
const witnessTimeout = 10 * time.Second

// witnessState is HOME/witness.json.
type witnessState struct {
	Version int `json:"version"`
	// Feeds by origin: the wallet's own feed and the access sub-feeds
	// about it (witness_subfeeds.go).
	Feeds map[string]*feedCheckpoints `json:"feeds"`
}

type feedCheckpoints struct {
	Cert *consent.CheckpointCert `json:"cert"`
	// Note is the newest checkpoint of the feed with every cosignature
	// collected for it.
	Note string `json:"note"`
	// Sizes is the size of the last checkpoint each witness cosigned.
	Sizes map[string]uint64 `json:"sizes"`
	// Evidence are validly signed checkpoints of this feed that
	// witnesses hold and that conflict with the feed as the wallet holds
	// it: a fork of the feed (a restored or second device, or a stolen
	// key) that an audit reports.
	Evidence []string `json:"evidence,omitempty"`
}

var witnessMu sync.Mutex // serialises witness.json in one process

func (w *Wallet) readWitnessState() (*witnessState, error) {
	s := &witnessState{Version: 1}
	if err := w.readHomeJSON(witnessFile, s, func() bool { return s.Version == 1 }); err != nil {
		return nil, err
	}
	if s.Feeds == nil {
		s.Feeds = map[string]*feedCheckpoints{}
	}
	return s, nil
}

func (w *Wallet) writeWitnessState(s *witnessState) error { return w.writeHomeJSON(witnessFile, s) }

// WitnessResult says what one round of witnessing did.
type WitnessResult struct {
	Size      uint64   // entries in the checkpoint
	Cosigners []string // witnesses that cosigned it
	Conflicts int      // conflicting checkpoints witnesses showed
}

// witnessFeed asks witnesses to cosign a checkpoint of feed, the wallet's
// own feed as just published through c: among the peers c reached. It is
// best effort: a publish does not fail because witnesses are unreachable;
// what it got is in witness.json.
func (w *Wallet) witnessFeed(ctx context.Context, c *client.Client, hashes []consent.Hash) {
	if w.cfg.Witnesses < 0 || len(hashes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, witnessTimeout)
	defer cancel()
	_, _ = w.witnessHashes(ctx, hashes, c.Reachable())
}

// Witness signs a checkpoint of feed (the wallet's own feed, in seq order)
// and asks up to Config.Witnesses witnesses to cosign it, among the peers
// of the network file (only those in up, when up is not nil).
func (w *Wallet) Witness(ctx context.Context, feed []*consent.Entry, up []peer.ID) (*WitnessResult, error) {
	hashes := make([]consent.Hash, len(feed))
	for i, e := range feed {
		hashes[i] = e.Hash()
	}
	return w.witnessHashes(ctx, hashes, up)
}

// witnessHashes is Witness of the feed whose entries have these hashes.
func (w *Wallet) witnessHashes(ctx context.Context, hashes []consent.Hash, up []peer.ID) (*WitnessResult, error) {
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	signer, err := consent.NewKeySigner(id.Signing)
	if err != nil {
		return nil, err
	}
	key, err := consent.DeriveCheckpointKey(signer)
	if err != nil {
		return nil, err
	}
	tree := consent.NewTree(hashes)
	size := tree.Size()
	root, err := tree.Root(size)
	if err != nil {
		return nil, err
	}
	msg, err := key.Sign(size, root)
	if err != nil {
		return nil, err
	}
	certify := func() (*consent.CheckpointCert, error) { return key.Certify(signer) }
	return w.witnessLog(ctx, up, "", key.Public(), certify, tree, msg)
}

// witnessLog asks witnesses among up (all the network file's peers when
// up is nil; never exclude) to cosign msg, the signed checkpoint of tree
// by the feed key pub, and keeps what they answer in witness.json. certify
// makes the key's certificate the first time the feed is witnessed.
func (w *Wallet) witnessLog(ctx context.Context, up []peer.ID, exclude peer.ID, pub ed25519.PublicKey,
	certify func() (*consent.CheckpointCert, error), tree *consent.Tree, msg []byte) (*WitnessResult, error) {
	size := tree.Size()
	root, err := tree.Root(size)
	if err != nil {
		return nil, err
	}
	origin := consent.CheckpointOrigin(pub)
	witnessMu.Lock()
	defer witnessMu.Unlock()
	st, err := w.readWitnessState()
	if err != nil {
		return nil, err
	}
	fc := st.Feeds[origin]
	if fc == nil {
		cert, err := certify()
		if err != nil {
			return nil, err
		}
		fc = &feedCheckpoints{Cert: cert, Sizes: map[string]uint64{}}
		st.Feeds[origin] = fc
	}
	k := w.witnessCount()
	if fc.Note != "" {
		if sc, err := consent.OpenCheckpoint([]byte(fc.Note), pub); err == nil &&
			sc.Size == size && sc.Root == root && len(sc.Cosigners) >= k {
			return &WitnessResult{Size: size, Cosigners: cosignerIDs(sc.Cosigners)}, nil // witnessed already
		}
	}
	cands, err := w.witnessCandidates(up)
	if err != nil {
		return nil, err
	}
	cands = slices.DeleteFunc(cands, func(c candidate) bool { return c.id == exclude })
	res := &WitnessResult{Size: size}
	// Ask the first k candidates by rank at once, then the next ones in
	// place of those that did not cosign; peers that hold the wallet's
	// shares or manifests come last.
	ranked := rankByOrigin(cands, origin)
	if len(ranked) > k {
		ranked = servingLast(ranked, w.servingPeers(ranked))
	}
	var lines [][]byte
	for len(ranked) > 0 && len(lines) < k && ctx.Err() == nil {
		batch := ranked[:min(k-len(lines), len(ranked))]
		ranked = ranked[len(batch):]
		got, err := w.askWitnesses(ctx, batch, pub, tree, msg, fc)
		if err != nil {
			return nil, err
		}
		for _, g := range got {
			if g.evidence != nil {
				res.Conflicts++
				fc.addEvidence(g.evidence)
			}
			if g.line != nil {
				fc.Sizes[g.peer.String()] = size
				lines = append(lines, g.line)
				res.Cosigners = append(res.Cosigners, g.peer.String())
			}
		}
	}
	if len(lines) > 0 {
		fc.keepNewest(msg, size, pub, lines)
	}
	return res, w.writeWitnessState(st)
}

// witnessCount is how many witnesses to ask per checkpoint.
func (w *Wallet) witnessCount() int {
	if w.cfg.Witnesses == 0 {
		return DefaultWitnesses
	}
	return w.cfg.Witnesses
}

func cosignerIDs(cs []consent.Cosigner) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Witness)
	}
	return out
}

type witnessAnswer struct {
	peer           peer.ID
	line, evidence []byte
}

// askWitnesses dials the candidates with a throw-away identity (the
// witness learns the feed's pseudonymous origin, never who asked) and
// asks them all at once.
func (w *Wallet) askWitnesses(ctx context.Context, batch []candidate, key ed25519.PublicKey,
	tree *consent.Tree, msg []byte, fc *feedCheckpoints) ([]witnessAnswer, error) {
	_, eph, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, c := range batch {
		addrs = append(addrs, c.addrs...)
	}
	c, err := client.Dial(ctx, eph, addrs)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	up := c.Reachable()
	out := make([]witnessAnswer, len(up))
	var wg sync.WaitGroup
	for i, p := range up {
		old := fc.Sizes[p.String()]
		wg.Add(1)
		go func() {
			defer wg.Done()
			line, evidence, err := askWitness(ctx, c, p, key, tree, msg, old)
			out[i] = witnessAnswer{peer: p, evidence: evidence}
			if err == nil {
				out[i].line = line
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// askWitness asks p to cosign msg, proving from the size p last cosigned
// as the wallet believes it; if p holds another size, once more from its
// size, when its checkpoint is a prefix of the feed. A checkpoint of p's
// that the feed does not extend is returned as evidence.
func askWitness(ctx context.Context, c *client.Client, p peer.ID, key ed25519.PublicKey,
	tree *consent.Tree, msg []byte, old uint64) (line, evidence []byte, err error) {
	size := tree.Size()
	if old > size {
		old = 0
	}
	for try := 0; try < 2; try++ {
		proof, err := tree.Prove(old, size)
		if err != nil {
			return nil, nil, err
		}
		req := &witness.Request{Note: msg, OldSize: old, Key: key}
		for _, h := range proof {
			req.Proof = append(req.Proof, append([]byte(nil), h[:]...))
		}
		resp, err := witness.Submit(ctx, c.Host(), p, req)
		if err == nil {
			// Keep only a cosignature that verifies, by p: a bad line would
			// spoil the note for every audit.
			sc, err := consent.OpenCheckpoint(consent.AddCosignatures(msg, resp.Cosignature), key)
			if err != nil || len(sc.Cosigners) != 1 || string(sc.Cosigners[0].Witness) != p.String() ||
				bytes.Count(resp.Cosignature, []byte("\n")) != 1 {
				return nil, nil, fmt.Errorf("witness %s: its cosignature does not verify", p.ShortString())
			}
			return resp.Cosignature, nil, nil
		}
		if resp == nil || !(errors.Is(err, witness.ErrConflict) || errors.Is(err, witness.ErrBadProof)) {
			return nil, nil, err
		}
		if len(resp.Latest) == 0 {
			if resp.Size != 0 {
				return nil, nil, err
			}
			old = 0 // the witness has no checkpoint of this feed
			continue
		}
		theirs, oerr := consent.OpenCheckpoint(resp.Latest, key)
		if oerr != nil {
			return nil, nil, err // not evidence of anything
		}
		if theirs.Size <= size {
			if r, _ := tree.Root(theirs.Size); r == theirs.Root {
				old = theirs.Size
				continue
			}
		}
		// The witness cosigned a checkpoint of this feed that the
		// feed as held does not extend: a fork.
		return nil, resp.Latest, err
	}
	return nil, nil, fmt.Errorf("witness %s: no agreement on its size", p.ShortString())
}

func (fc *feedCheckpoints) addEvidence(note []byte) {
	for _, e := range fc.Evidence {
		if e == string(note) {
			return
		}
	}
	if len(fc.Evidence) < maxEvidence {
		fc.Evidence = append(fc.Evidence, string(note))
	}
}

// keepNewest keeps msg with its new cosignatures if it is the newest
// checkpoint, merging cosignatures of the same checkpoint.
func (fc *feedCheckpoints) keepNewest(msg []byte, size uint64, key ed25519.PublicKey, lines [][]byte) {
	if fc.Note != "" {
		if old, err := consent.OpenCheckpoint([]byte(fc.Note), key); err == nil {
			switch {
			case old.Size > size:
				return
			case old.Size == size && bytes.HasPrefix(old.Note, msg):
				fc.Note = string(consent.AddCosignatures([]byte(fc.Note), lines...))
				return
			}
		}
	}
	fc.Note = string(consent.AddCosignatures(msg, lines...))
}

// candidate is a peer of the network file and its addresses.
type candidate struct {
	id    peer.ID
	addrs []string
}

// witnessCandidates lists the network file's peers (those in up, when up
// is not nil) as candidate witnesses.
func (w *Wallet) witnessCandidates(up []peer.ID) ([]candidate, error) {
	n, err := netfile.Read(w.NetworkPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	ok := map[peer.ID]bool{}
	for _, p := range up {
		ok[p] = true
	}
	var out []candidate
	at := map[peer.ID]int{}
	for _, a := range n.Peers {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil || (up != nil && !ok[ai.ID]) {
			continue
		}
		if i, seen := at[ai.ID]; seen {
			out[i].addrs = append(out[i].addrs, a)
			continue
		}
		at[ai.ID] = len(out)
		out = append(out, candidate{id: ai.ID, addrs: []string{a}})
	}
	return out, nil
}

// servingPeers returns the candidates that hold shares or manifest
// copies of the wallet's records (its serving set, placement.json). Nil
// when the wallet placed no record or the placement cannot be read.
func (w *Wallet) servingPeers(cs []candidate) map[peer.ID]bool {
	set, err := w.servingSet(nil)
	if err != nil || len(set) == 0 {
		return nil
	}
	out := map[peer.ID]bool{}
	for _, c := range cs {
		if slices.Contains(set, consent.ID(c.id.String())) {
			out[c.id] = true
		}
	}
	return out
}

// servingLast moves the candidates in serving after the others, keeping
// their order.
func servingLast(cs []candidate, serving map[peer.ID]bool) []candidate {
	out := make([]candidate, 0, len(cs))
	for _, c := range cs {
		if !serving[c.id] {
			out = append(out, c)
		}
	}
	for _, c := range cs {
		if serving[c.id] {
			out = append(out, c)
		}
	}
	return out
}

// rankByOrigin orders candidates by SHA-256(origin ‖ "\n" ‖ peer ID), so
// that one feed keeps its witnesses while feeds spread over the peers.
func rankByOrigin(cs []candidate, origin string) []candidate {
	score := func(p peer.ID) [32]byte { return sha256.Sum256([]byte(origin + "\n" + p.String())) }
	out := append([]candidate(nil), cs...)
	sort.Slice(out, func(i, j int) bool {
		a, b := score(out[i].id), score(out[j].id)
		return string(a[:]) < string(b[:])
	})
	return out
}

// witnessedCheckpoints returns the key certificates and checkpoint notes
// the wallet holds: its newest cosigned checkpoints and the conflicting
// ones witnesses showed it.
func (w *Wallet) witnessedCheckpoints() ([]*consent.CheckpointCert, [][]byte, error) {
	witnessMu.Lock()
	defer witnessMu.Unlock()
	st, err := w.readWitnessState()
	if err != nil {
		return nil, nil, err
	}
	origins := make([]string, 0, len(st.Feeds))
	for o := range st.Feeds {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	var certs []*consent.CheckpointCert
	var notes [][]byte
	for _, o := range origins {
		fc := st.Feeds[o]
		if fc.Note == "" && len(fc.Evidence) == 0 {
			continue
		}
		certs = append(certs, fc.Cert)
		if fc.Note != "" {
			notes = append(notes, []byte(fc.Note))
		}
		for _, e := range fc.Evidence {
			notes = append(notes, []byte(e))
		}
	}
	return certs, notes, nil
}

// exportFile is the export of entries with the wallet's checkpoints.
func (w *Wallet) exportFile(es []*consent.Entry) (*consent.ExportFile, error) {
	certs, notes, err := w.witnessedCheckpoints()
	if err != nil {
		return nil, err
	}
	return &consent.ExportFile{Entries: es, Certs: certs, Checkpoints: notes}, nil
}
