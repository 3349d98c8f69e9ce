package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// audit verify explains an equivocation proof logged on the ledger: who
// equivocated, at which seq, the two entries with their times, and who
// logged the proof; in text and in --json.
func TestAuditVerifyExplainsEquivocation(t *testing.T) {
	signer := func(name string) *consent.KeySigner {
		seed := sha256.Sum256([]byte("cmd audit test key: " + name))
		s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice, peer := signer("alice"), signer("peer")
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	card, err := consent.NewEntry(alice, consent.Head{}, t0, consent.KindIdentity, &consent.IdentityBody{AgeRecipient: "age1alice", Role: "patient"})
	if err != nil {
		t.Fatal(err)
	}
	anchor := func(at time.Time, m string) *consent.Entry {
		e, err := consent.NewEntry(alice, card.Head(), at, consent.KindAnchor, &consent.AnchorBody{Record: "rec-1", Manifest: consent.HashBytes([]byte(m))})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	x, y := anchor(t0.Add(time.Minute), "one"), anchor(t0.Add(2*time.Minute), "two")
	p, err := consent.NewEquivocationProof(x, y)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := consent.NewEntry(peer, consent.Head{}, t0.Add(time.Hour), consent.KindEquivocation, p)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := consent.WriteExport(&buf, []*consent.Entry{card, x, proof}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ledger.mwl")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	g := newGlobals(strings.NewReader(""), &stdout, &stderr)
	err = runAuditVerify(context.Background(), auditVerifyOptions{}, g, []string{file})
	if err == nil {
		t.Fatal("an equivocation passed the audit")
	}
	out := stdout.String()
	for _, want := range []string{
		"equivocation: " + string(alice.ID()) + " signed two entries at seq 2:",
		x.Hash().String() + "  anchor        2026-03-01T10:01:00Z",
		y.Hash().String() + "  anchor        2026-03-01T10:02:00Z",
		"proof logged by " + string(peer.ID()) + " in its entry #1 (" + proof.Hash().String() + ") at 2026-03-01T11:00:00Z",
		"1 equivocating authors",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	var re resultError
	if !errors.As(err, &re) {
		t.Fatalf("error %v carries no result", err)
	}
	b, err := json.Marshal(re.result)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		OK     bool `json:"ok"`
		Proofs []struct {
			Author  string `json:"author"`
			Seq     uint64 `json:"seq"`
			Entries []struct {
				Hash string    `json:"hash"`
				Kind string    `json:"kind"`
				Time time.Time `json:"time"`
			} `json:"entries"`
			LoggedBy []struct {
				Logger string    `json:"logger"`
				Seq    uint64    `json:"seq"`
				Entry  string    `json:"entry"`
				Time   time.Time `json:"time"`
			} `json:"logged_by"`
		} `json:"proofs"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j.OK || len(j.Proofs) != 1 {
		t.Fatalf("json: %s", b)
	}
	pj := j.Proofs[0]
	first, second := x, y
	if bytes.Compare(x.Encode(), y.Encode()) > 0 {
		first, second = y, x
	}
	if pj.Author != string(alice.ID()) || pj.Seq != 2 || len(pj.Entries) != 2 ||
		pj.Entries[0].Hash != first.Hash().String() || !pj.Entries[0].Time.Equal(consent.TimeOf(first.Time)) ||
		pj.Entries[1].Hash != second.Hash().String() || pj.Entries[1].Kind != "anchor" ||
		len(pj.LoggedBy) != 1 || pj.LoggedBy[0].Logger != string(peer.ID()) || pj.LoggedBy[0].Seq != 1 ||
		pj.LoggedBy[0].Entry != proof.Hash().String() || !pj.LoggedBy[0].Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("json proof: %s", b)
	}
}
