package attack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/witness"
)

// TestForkedSubFeedWitnessed: the access sub-feeds about a patient are
// witnessed like any feed, so a peer that forks its access chain about her
// is caught by `audit verify`.
//
// Alice reads her record (her serving peers log the reads in their
// sub-feeds about her) and syncs: her wallet gets from each such peer a
// checkpoint of its sub-feed, signed with the sub-feed's own key, and has
// witnesses other than that peer cosign it; her export carries them. Then
// one of those peers (the test holds its key) signs a checkpoint of
// another branch of the same sub-feed and shows it to a witness that did
// not see the first: it cosigns. Shown to a witness that cosigned Alice's
// checkpoint, it is answered conflict. `audit verify` on Alice's export
// with the second note reports the fork of the sub-feed with both notes.
func TestForkedSubFeedWitnessed(t *testing.T) {
	n := newNetwork(t, netOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n.recordGet(ctx)
	n.mustRun(ctx, n.alice, "sync")
	file := filepath.Join(n.dir, "alice.mwl")
	n.mustRun(ctx, n.alice, "ledger", "export", file)
	x := readExport(t, file)

	// A sub-feed about Alice, its peer and its cosigned checkpoint.
	links := map[consent.ID]*consent.LinkBody{}
	sizes := map[consent.ID]uint64{}
	var hashes = map[consent.ID][]consent.Hash{}
	for _, e := range x.Entries {
		sizes[e.Author]++
		hashes[e.Author] = append(hashes[e.Author], e.Hash())
		if e.Kind == consent.KindLink && e.Seq == 1 {
			if b, err := e.DecodedBody(); err == nil && b.(*consent.LinkBody).Subject == n.alice.id {
				links[e.Author] = b.(*consent.LinkBody)
			}
		}
	}
	var (
		sub     consent.ID
		cert    *consent.CheckpointCert
		cosA    *consent.SignedCheckpoint
		noteA   []byte
		subSeen int
	)
	for _, c := range x.Certs {
		if links[c.Author] == nil {
			continue
		}
		subSeen++
		for _, nt := range x.Checkpoints {
			sc, err := consent.OpenCheckpoint(nt, c.Key)
			if err != nil || sc.Size != sizes[c.Author] || len(sc.Cosigners) == 0 {
				continue
			}
			if cosA == nil {
				sub, cert, cosA, noteA = c.Author, c, sc, nt
			}
		}
	}
	if cosA == nil {
		t.Fatalf("Alice's export carries no cosigned checkpoint of a sub-feed about her (%d sub-feed certificates, %d sub-feeds)", subSeen, len(links))
	}
	parent := links[sub].Parent
	cosigned := map[string]bool{}
	for _, cs := range cosA.Cosigners {
		if cs.Witness == parent {
			t.Fatalf("the sub-feed's own peer cosigned it")
		}
		cosigned[string(cs.Witness)] = true
	}
	t.Logf("sub-feed of %s about Alice: %d entries, cosigned by %d", parent.Short(), cosA.Size, len(cosA.Cosigners))

	// The peer forks: another entry at the sub-feed's last seq.
	var forker, fresh, seen *peerProc
	for _, p := range n.peers {
		switch {
		case p.id.String() == string(parent):
			forker = p
		case cosigned[p.id.String()]:
			seen = p
		default:
			fresh = p
		}
	}
	if forker == nil || seen == nil {
		t.Fatalf("peers: forker %v, a witness of the checkpoint %v", forker, seen)
	}
	if fresh == nil {
		fresh = forker // a forking peer may cosign its own fork
	}
	seed, err := os.ReadFile(filepath.Join(forker.dir, "peer.key"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	sf, err := consent.NewSubFeed(ps, n.alice.id)
	if err != nil || sf.ID() != sub {
		t.Fatalf("the forker's sub-feed about Alice: %v %v", err, sf.ID())
	}
	key, err := consent.DeriveCheckpointKey(sf)
	if err != nil || !slices.Equal([]byte(key.Public()), cert.Key) {
		t.Fatalf("the sub-feed's checkpoint key: %v", err)
	}
	branch := slices.Clone(hashes[sub])
	rand.Read(branch[len(branch)-1][:])
	rootB, _ := consent.NewTree(branch).Root(uint64(len(branch)))
	noteB, err := key.Sign(uint64(len(branch)), rootB)
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t, newKey(t))
	defer h.Close()
	for _, p := range n.peers {
		h.Peerstore().AddAddrs(p.info().ID, p.info().Addrs, time.Hour)
	}
	rb, err := witness.Submit(ctx, h, fresh.id, &witness.Request{Note: noteB, Key: key.Public()})
	if err != nil {
		t.Fatalf("%s on the forked branch: %v", fresh.name, err)
	}
	cosignedB := consent.AddCosignatures(noteB, rb.Cosignature)
	r, err := witness.Submit(ctx, h, seen.id, &witness.Request{Note: noteB, OldSize: cosA.Size, Key: key.Public()})
	if !errors.Is(err, witness.ErrConflict) || r == nil || r.Size != cosA.Size {
		t.Fatalf("the forked branch to %s, which cosigned Alice's: %v %+v", seen.name, err, r)
	}

	// audit verify on Alice's export with the forked checkpoint.
	x.Checkpoints = append(x.Checkpoints, cosignedB)
	fork := filepath.Join(n.dir, "fork.mwl")
	writeExport(t, fork, x)
	rep, code := auditFile(ctx, t, n, fork)
	if code != 5 || rep.OK || !hasFinding(rep, consent.FindingFork) {
		t.Fatalf("audit verify of the forked sub-feed: exit %d, %+v", code, rep.Findings)
	}
	var fr *consent.ForkReport
	for i := range rep.Forks {
		if rep.Forks[i].Author == sub {
			fr = &rep.Forks[i]
		}
	}
	if fr == nil || len(fr.Evidence) < 2 {
		t.Fatalf("forks: %+v", rep.Forks)
	}
	notes := map[string]bool{}
	for _, e := range fr.Evidence {
		notes[e.Note] = true
	}
	if !notes[string(cosignedB)] || !notes[string(noteA)] {
		t.Fatalf("the fork's evidence lacks a note: %+v", fr.Evidence)
	}
	// Alice's export as it was: clean.
	rep, code = auditFile(ctx, t, n, file)
	if code != 0 || !rep.OK {
		t.Fatalf("audit verify of Alice's export: exit %d, %+v", code, rep.Findings)
	}
}

func readExport(t *testing.T, path string) *consent.ExportFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := consent.ReadExportFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
