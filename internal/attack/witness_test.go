package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/witness"
)

// TestWitnessedFork: a patient's feed is forked (two entries signed by the
// same author at seq 4, built with the consent package directly), and
// each branch's checkpoint is shown to a different `medwallet peer`
// process acting as a witness. Both cosign; the witness that cosigned A
// answers conflict to B with A's note. `audit verify` on an export
// carrying both cosigned checkpoints (and branch A's entries) reports the
// fork with both notes and their cosigners as evidence; an export whose
// entries stop below the cosigned size reports withheld entries.
func TestWitnessedFork(t *testing.T) {
	needBinary(t)
	n := &testnet{t: t, dir: t.TempDir()}
	n.netFile = filepath.Join(n.dir, "network.json")
	ports := freePorts(t, 2)
	for i := range 2 {
		n.peers = append(n.peers, n.newPeerProc(fmt.Sprintf("w%d", i+1), ports[i], nil))
	}
	t.Cleanup(n.killAll)
	var nf netfile.Network
	for _, p := range n.peers {
		nf.Peers = append(nf.Peers, p.addr)
	}
	if err := netfile.Write(n.netFile, nf); err != nil {
		t.Fatal(err)
	}
	for _, p := range n.peers {
		n.start(p)
	}
	for _, p := range n.peers {
		n.waitUp(p)
	}
	w1, w2 := n.peers[0], n.peers[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The patient's feed, forked at seq 4.
	priv := newKey(t)
	alice, err := consent.NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var head consent.Head
	var shared []*consent.Entry
	appendTo := func(feed []*consent.Entry, head consent.Head, kind consent.Kind, body any) []*consent.Entry {
		e, err := consent.NewEntry(alice, head, now, kind, body)
		if err != nil {
			t.Fatal(err)
		}
		return append(feed, e)
	}
	shared = appendTo(shared, head, consent.KindIdentity, identityBody())
	for i := range 2 {
		shared = appendTo(shared, shared[len(shared)-1].Head(), consent.KindAnchor,
			&consent.AnchorBody{Record: randomRecord().String(), Manifest: consent.HashBytes([]byte(fmt.Sprint("m", i)))})
	}
	branch := func(label string) []*consent.Entry {
		b := append([]*consent.Entry(nil), shared...)
		return appendTo(b, shared[2].Head(), consent.KindAnchor,
			&consent.AnchorBody{Record: randomRecord().String(), Manifest: consent.HashBytes([]byte(label))})
	}
	a, b := branch("A"), branch("B")
	key, err := consent.DeriveCheckpointKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := key.Certify(alice)
	if err != nil {
		t.Fatal(err)
	}
	checkpoint := func(feed []*consent.Entry) []byte {
		var hs []consent.Hash
		for _, e := range feed {
			hs = append(hs, e.Hash())
		}
		root, _ := consent.NewTree(hs).Root(uint64(len(hs)))
		msg, err := key.Sign(uint64(len(hs)), root)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	noteA, noteB := checkpoint(a), checkpoint(b)

	// A throw-away client shows A to w1 and B to w2.
	h := newHost(t, newKey(t))
	defer h.Close()
	for _, p := range n.peers {
		h.Peerstore().AddAddrs(p.info().ID, p.info().Addrs, time.Hour)
	}
	submit := func(p *peerProc, msg []byte) (*witness.Response, error) {
		return witness.Submit(ctx, h, p.id, &witness.Request{Note: msg, Key: key.Public()})
	}
	ra, err := submit(w1, noteA)
	if err != nil {
		t.Fatalf("w1 on branch A: %v", err)
	}
	rb, err := submit(w2, noteB)
	if err != nil {
		t.Fatalf("w2 on branch B: %v", err)
	}
	cosignedA := consent.AddCosignatures(noteA, ra.Cosignature)
	cosignedB := consent.AddCosignatures(noteB, rb.Cosignature)

	// B shown to the witness that cosigned A: conflict, with A's note.
	for _, old := range []uint64{0, 4} {
		r, err := witness.Submit(ctx, h, w1.id, &witness.Request{Note: noteB, OldSize: old, Key: key.Public()})
		if !errors.Is(err, witness.ErrConflict) || r == nil || r.Size != 4 {
			t.Fatalf("branch B to w1 (old size %d): %v %+v", old, err, r)
		}
		sc, err := consent.OpenCheckpoint(r.Latest, key.Public())
		if err != nil || len(sc.Cosigners) != 1 || string(sc.Cosigners[0].Witness) != w1.id.String() || !bytes.HasPrefix(r.Latest, noteA) {
			t.Fatalf("w1's evidence: %v %+v", err, sc)
		}
	}

	// The fork, reported by audit verify on an export with both.
	file := filepath.Join(n.dir, "fork.mwl")
	writeExport(t, file, &consent.ExportFile{Entries: a, Certs: []*consent.CheckpointCert{cert},
		Checkpoints: [][]byte{cosignedA, cosignedB}})
	rep, code := auditFile(ctx, t, n, file)
	if code != 5 || rep.OK {
		t.Fatalf("audit verify of the fork: exit %d, %+v", code, rep)
	}
	if len(rep.Forks) != 1 || len(rep.Forks[0].Evidence) != 2 || rep.Forks[0].Author != alice.ID() {
		t.Fatalf("forks: %+v", rep.Forks)
	}
	byWitness := map[string]string{}
	for _, e := range rep.Forks[0].Evidence {
		if len(e.Cosigners) != 1 {
			t.Fatalf("evidence %+v", e)
		}
		byWitness[string(e.Cosigners[0].Witness)] = e.Note
	}
	if byWitness[w1.id.String()] != string(cosignedA) || byWitness[w2.id.String()] != string(cosignedB) {
		t.Fatalf("evidence by witness: %v", byWitness)
	}
	if !hasFinding(rep, consent.FindingFork) {
		t.Fatalf("no fork finding: %+v", rep.Findings)
	}

	// Entries cut below the cosigned size: withheld.
	file = filepath.Join(n.dir, "cut.mwl")
	writeExport(t, file, &consent.ExportFile{Entries: a[:2], Certs: []*consent.CheckpointCert{cert},
		Checkpoints: [][]byte{cosignedA}})
	rep, code = auditFile(ctx, t, n, file)
	if code != 5 || !hasFinding(rep, consent.FindingWithheld) || hasFinding(rep, consent.FindingFork) {
		t.Fatalf("audit verify of a cut export: exit %d, %+v", code, rep.Findings)
	}
	// The whole branch A with its checkpoint: clean.
	file = filepath.Join(n.dir, "a.mwl")
	writeExport(t, file, &consent.ExportFile{Entries: a, Certs: []*consent.CheckpointCert{cert}, Checkpoints: [][]byte{cosignedA}})
	rep, code = auditFile(ctx, t, n, file)
	if code != 0 || !rep.OK || len(rep.Checkpoints) != 1 {
		t.Fatalf("audit verify of branch A: exit %d, %+v", code, rep)
	}
}

type auditReport struct {
	OK          bool                            `json:"ok"`
	Findings    []struct{ Kind, Detail string } `json:"findings"`
	Checkpoints []consent.CheckpointReport      `json:"checkpoints"`
	Forks       []consent.ForkReport            `json:"forks"`
}

func hasFinding(r auditReport, kind string) bool {
	for _, f := range r.Findings {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

func writeExport(t *testing.T, path string, x *consent.ExportFile) {
	t.Helper()
	var buf bytes.Buffer
	if err := consent.WriteExportFile(&buf, x); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// auditFile runs `medwallet audit verify FILE --json` and returns the
// report and the exit code.
func auditFile(ctx context.Context, t *testing.T, n *testnet, file string) (auditReport, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "audit", "verify", file, "--json")
	cmd.Env = n.env(nil)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var rep auditReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("audit verify output: %v\n%s\n%s", err, out.String(), strings.TrimSpace(errb.String()))
	}
	return rep, code
}
