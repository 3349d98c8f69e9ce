package consent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// equivocationWorld: alice grants bob a record, then signs two entries at
// seq 3; a peer, dave, logs the proof on its own feed. It returns the
// entries without the second of the two (what a replica that only received
// the proof holds), the proof entry, and the fork.
func equivocationWorld(t *testing.T) (w *world, alice, bob, dave *KeySigner, proofEntry, fork *Entry) {
	t.Helper()
	w = newWorld(t)
	alice, bob, dave = testSigner(t, "alice"), testSigner(t, "bob"), testSigner(t, "dave")
	w.add(alice, t0.Add(-2*time.Hour), KindIdentity, &IdentityBody{AgeRecipient: "age1alice", Role: "patient"})
	w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{"rec-1"}, Scopes: []string{"patient/*.rs"}})
	x := w.add(alice, t0.Add(-30*time.Minute), KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m1"))})
	fork, err := NewEntry(alice, w.view.Feed(alice.ID())[1].Head(), t0.Add(-29*time.Minute), KindAnchor,
		&AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m2"))})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewEquivocationProof(x, fork)
	if err != nil {
		t.Fatal(err)
	}
	proofEntry = w.add(dave, t0.Add(-10*time.Minute), KindEquivocation, p)
	return w, alice, bob, dave, proofEntry, fork
}

// A replica that holds a proof entry, by any author, refuses the
// equivocating author's grants, and rebuilds that from its store: the
// proof lives in the ledger, not only in memory.
func TestProofEntryRebuildsEquivocators(t *testing.T) {
	w, alice, bob, dave, proofEntry, fork := equivocationWorld(t)
	st := NewMemStore()
	for _, e := range w.entries {
		if err := st.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	l, err := OpenLedger(st)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	req := newRequest(t, bob, alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	l.View(func(v *View) {
		if !v.Equivocating(alice.ID()) {
			t.Fatal("a reopened ledger forgot the equivocation")
		}
		if d := Decide(v, req, t0); d.Allow || d.Reason != ReasonEquivocating {
			t.Errorf("grant of an equivocating owner: %+v", d)
		}
		logs := v.ProofLogs(alice.ID())
		want := ProofLog{Author: alice.ID(), Logger: dave.ID(), Seq: 1, Entry: proofEntry.Hash(), Time: proofEntry.Time}
		if len(logs) != 1 || logs[0] != want {
			t.Errorf("proof logs %+v, want %+v", logs, want)
		}
		if p, ok := v.Proof(alice.ID()); !ok || p.Seq() != 3 {
			t.Errorf("proof %v %v", p, ok)
		}
	})
	// Without the proof entry, the same entries give an allow.
	v := NewView()
	for _, e := range w.entries {
		if e != proofEntry {
			if _, err := v.Ingest(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := Decide(v, req, t0); !d.Allow {
		t.Fatalf("without the proof: %+v", d)
	}
	// Two entries at one slot are recorded too, but live in memory only.
	if _, err := v.Ingest(fork); !errors.Is(err, ErrEquivocation) {
		t.Fatal(err)
	}
	if !v.Equivocating(alice.ID()) || len(v.ProofLogs(alice.ID())) != 0 {
		t.Error("an equivocation found by a view is not an entry")
	}
}

// An issuer that equivocated vouches for no one: its credentials no longer
// reach role grants, on every view that holds the proof.
func TestEquivocatingIssuerCredentialsDropped(t *testing.T) {
	w := newWorld(t)
	alice, mercy, frank, dave := testSigner(t, "alice"), testSigner(t, "mercy"), testSigner(t, "frank"), testSigner(t, "dave")
	role := testSigner(t, "mercy physician role").ID()
	w.add(mercy, t0.Add(-3*time.Hour), KindCredential, &CredentialBody{Subject: frank.ID(), Role: "physician", RoleID: role,
		NotBefore: t0.Add(-3 * time.Hour).Unix(), Details: []byte("ciphertext"), RoleRecipient: "age1role"})
	w.grant(alice, Grant{Grantee: role, Issuer: mercy.ID(), Role: "physician", Records: []string{"rec-1"}, Scopes: []string{"patient/*.rs"}})
	req := newRequest(t, frank, alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	if d := Decide(w.view, req, t0); !d.Allow {
		t.Fatalf("before: %+v", d)
	}
	a := w.add(mercy, t0.Add(-time.Hour), KindAnchor, &AnchorBody{Record: "r", Manifest: HashBytes([]byte("a"))})
	b, err := NewEntry(mercy, w.view.Feed(mercy.ID())[0].Head(), t0.Add(-time.Hour), KindAnchor, &AnchorBody{Record: "r", Manifest: HashBytes([]byte("b"))})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewEquivocationProof(a, b)
	if err != nil {
		t.Fatal(err)
	}
	w.add(dave, t0.Add(-time.Minute), KindEquivocation, p)
	req = newRequest(t, frank, alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	if d := Decide(w.view, req, t0); d.Allow || d.Reason != ReasonNoCredential {
		t.Fatalf("after the issuer's equivocation: %+v, want %s", d, ReasonNoCredential)
	}
}

// The audit explains a proof: the author, the seq, both entries with
// their times, and who logged it.
func TestAuditExplainsProof(t *testing.T) {
	w, alice, _, dave, proofEntry, fork := equivocationWorld(t)
	for _, tc := range []struct {
		name    string
		entries []*Entry
		logged  bool
	}{
		{"proof entry", w.entries, true},
		{"two entries, no proof entry", append(withoutEntry(w.entries, proofEntry), fork), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := AuditLedger(tc.entries)
			if rep.OK() || len(rep.Proofs) != 1 {
				t.Fatalf("ok %v, proofs %+v", rep.OK(), rep.Proofs)
			}
			pr := rep.Proofs[0]
			if pr.Author != alice.ID() || pr.Seq != 3 {
				t.Errorf("proof of %s#%d", pr.Author.Short(), pr.Seq)
			}
			hashes := map[Hash]int64{}
			for _, e := range pr.Entries {
				hashes[e.Hash] = e.Time
				if e.Kind != "anchor" {
					t.Errorf("kind %q", e.Kind)
				}
			}
			x := w.view.Feed(alice.ID())[2]
			if hashes[x.Hash()] != x.Time || hashes[fork.Hash()] != fork.Time {
				t.Errorf("entries %+v, want %s and %s", pr.Entries, x.Hash(), fork.Hash())
			}
			switch {
			case tc.logged && (len(pr.LoggedBy) != 1 || pr.LoggedBy[0].Logger != dave.ID() || pr.LoggedBy[0].Entry != proofEntry.Hash()):
				t.Errorf("logged by %+v, want dave's entry", pr.LoggedBy)
			case !tc.logged && len(pr.LoggedBy) != 0:
				t.Errorf("logged by %+v, want none", pr.LoggedBy)
			}
			var detail string
			for _, f := range rep.Findings {
				if f.Kind == FindingEquivocation {
					detail = f.Detail
				}
			}
			if tc.logged && !strings.Contains(detail, "by "+dave.ID().Short()) {
				t.Errorf("finding %q does not name the logger", detail)
			}
		})
	}
}

func withoutEntry(es []*Entry, x *Entry) []*Entry {
	var out []*Entry
	for _, e := range es {
		if e != x {
			out = append(out, e)
		}
	}
	return out
}
