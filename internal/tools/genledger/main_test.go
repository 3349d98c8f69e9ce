package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/p2p/serving"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// writeExport writes a key export (docs/cli.md "Key backups") of a fresh
// identity, with a cheap scrypt work factor.
func writeExport(t *testing.T, path, role, pass string) consent.ID {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	card, err := consent.NewCard(priv, x.Recipient().String(), "Test "+role, role, time.Now().Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(map[string]any{"format": "medwallet-key-export-v1", "card": card.String(),
		"version": 1, "ed25519_seed": base64.StdEncoding.EncodeToString(priv.Seed()), "age_identity": x.String()})
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aw := armor.NewWriter(f)
	ew, err := age.Encrypt(aw, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ew.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return card.ID
}

// about is the patient an entry's feed is about: the subject of a
// sub-feed, else the author.
func about(v *consent.View, author consent.ID) consent.ID {
	if _, s, ok := v.SubFeedOf(author); ok {
		return s
	}
	return author
}

// openStore opens a generated store as a ledger, as wallets and peers do,
// and returns it with its entries and a function that closes it (called
// at the end of the test if not before).
func openStore(t *testing.T, path string) (*consent.Ledger, []*consent.Entry, func()) {
	t.Helper()
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := consent.OpenLedger(st)
	if err != nil {
		st.Close()
		t.Fatalf("%s: %v", path, err)
	}
	// The generator leaves the view state saved, as a medwallet that
	// closed its ledger does: opening reads no entry.
	if !l.OpenedFromState() {
		l.Close()
		t.Fatalf("%s: opened by reading every entry, not from its saved view state", path)
	}
	var once sync.Once
	closeIt := func() { once.Do(func() { l.Close() }) }
	t.Cleanup(closeIt)
	return l, l.Entries(), closeIt
}

// audit runs what 'medwallet audit verify' runs and fails on any finding.
func audit(t *testing.T, name string, es []*consent.Entry) *consent.AuditReport {
	t.Helper()
	rep := consent.AuditLedgerWith(es, consent.AccessCheck{Now: time.Now()})
	if len(rep.Findings) != 0 || !rep.OK() || rep.Allowed == 0 || rep.Denied == 0 || rep.Revocations == 0 {
		t.Fatalf("%s: audit: %+v", name, rep)
	}
	return rep
}

// The generated ledger holds exactly the entries asked for, and an audit
// from scratch (what 'medwallet audit verify' runs) finds nothing: every
// signature and chain verifies and every logged decision is what Decide
// answers as of its entry.
func TestGeneratedLedgerAudits(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MEDWALLET_EXPORT_PASSPHRASE", "test")
	patient := writeExport(t, filepath.Join(dir, "p.key"), "patient", "test")
	writeExport(t, filepath.Join(dir, "c.key"), "clinician", "test")
	for _, tc := range []struct {
		name                       string
		entries, records, patients int
	}{
		{"one record", 203, 1, 0},
		{"records and patients", 130, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ledger.db")
			peers := t.TempDir()
			c := &config{entries: tc.entries, records: tc.records, patients: tc.patients, out: out,
				dirs: []string{filepath.Join(peers, "peer1"), filepath.Join(peers, "peer2")}}
			if err := run(c, filepath.Join(dir, "p.key"), filepath.Join(dir, "c.key")); err != nil {
				t.Fatal(err)
			}
			l, es, _ := openStore(t, out)
			mine, story := 0, 0
			patients := map[consent.ID]bool{}
			l.View(func(v *consent.View) {
				for _, e := range es {
					if e.Author == patient {
						mine++
					}
					if about(v, e.Author) == patient {
						story++
					}
					if id, ok := v.Identity(e.Author); ok && id.Role == "patient" {
						patients[e.Author] = true
					}
				}
			})
			// The story, and the patient's identity entry.
			if story != tc.entries+1 {
				t.Fatalf("%d entries about the patient, want %d", story, tc.entries+1)
			}
			if len(patients) != tc.patients+1 {
				t.Fatalf("%d patients, want %d", len(patients), tc.patients+1)
			}
			audit(t, "network", es)
			// About half of the story is the patient's own feed.
			if mine < tc.entries/2-tc.records || mine > tc.entries/2+tc.records+2 {
				t.Fatalf("patient feed: %d of %d entries", mine, tc.entries)
			}
		})
	}
	// An existing store is never overwritten.
	out := filepath.Join(dir, "exists.db")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &config{entries: 100, records: 1, out: out, dirs: []string{filepath.Join(dir, "peer1")}}
	if err := run(c, filepath.Join(dir, "p.key"), filepath.Join(dir, "c.key")); err == nil {
		t.Fatal("run over an existing store succeeded")
	}
}

// A placed network: 40 patients on 12 peers, 3 serving each (so each peer
// serves 10), 4 of the peers with a data directory. Each directory's store
// holds exactly the feeds of the patients its served set enrols (those
// whose serve entry names it: their home feeds and every sub-feed about
// them) and of the party they name (the clinician), and audits clean on
// its own; the home holds the patient's; and a wallet restored from the
// patient's key export on that home owns its feed (it appends to it).
func TestPlacedNetwork(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MEDWALLET_EXPORT_PASSPHRASE", "test")
	patient := writeExport(t, filepath.Join(dir, "p.key"), "patient", "test")
	clinician := writeExport(t, filepath.Join(dir, "c.key"), "clinician", "test")
	var dirs []string
	for i := range 4 {
		dirs = append(dirs, filepath.Join(dir, fmt.Sprintf("peer%d", i)))
	}
	home := filepath.Join(dir, "home")
	// 103 entries end the patient's story on a grant (anchors and serve:
	// 3; first cycles, with the 3 links: 6 and 5; then 4 a cycle), so the
	// last grant is live.
	const entries = 103
	c := &config{entries: entries, records: 2, patients: 39, npeers: 12, k: 3, dirs: dirs, home: home,
		out: filepath.Join(dir, "all.db"), scratch: t.TempDir()}
	if err := run(c, filepath.Join(dir, "p.key"), filepath.Join(dir, "c.key")); err != nil {
		t.Fatal(err)
	}

	// The whole network: who serves whom, and how many entries are about
	// each patient.
	all, es, _ := openStore(t, c.out)
	audit(t, "network", es)
	count := map[consent.ID]int{}
	servedBy := map[consent.ID][]consent.ID{} // peer -> patients
	all.View(func(v *consent.View) {
		for _, e := range es {
			s := about(v, e.Author)
			count[s]++
			if e.Kind == consent.KindAccess {
				// Logged by a peer of the patient's serve entry.
				parent, _, ok := v.SubFeedOf(e.Author)
				if !ok || !slices.Contains(v.ServingPeers(s), parent) {
					t.Fatalf("access about %s by %s, not in a serving peer's sub-feed", s.Short(), e.Author.Short())
				}
			}
		}
		for _, a := range v.Authors() {
			for _, p := range v.ServingPeers(a) {
				servedBy[p] = append(servedBy[p], a)
			}
		}
	})
	if len(count) != 40+1 || count[patient] != entries+1 {
		t.Fatalf("%d feeds' subjects, want 41; %d entries about the patient, want %d", len(count), count[patient], entries+1)
	}

	// Each peer's directory.
	for _, d := range dirs {
		key, err := node.LoadOrCreateKey(filepath.Join(d, peer.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := consent.NewKeySigner(key)
		id := ks.ID()
		set, err := serving.Open(filepath.Join(d, serving.File))
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := any(set).(io.Closer); ok { // a set kept in a database
			t.Cleanup(func() { c.Close() })
		}
		want := servedBy[id]
		slices.Sort(want)
		if got := set.Subjects(); len(got) != 10 || !slices.Equal(got, want) {
			t.Fatalf("%s serves %d patients %v, its serve entries name it for %v", d, len(got), got, want)
		}
		if set.Has(patient) {
			if sec, _ := set.Secret(patient); sec == ([32]byte{}) {
				t.Fatalf("%s: no rendezvous secret for the patient", d)
			}
		}
		l, pes, _ := openStore(t, filepath.Join(d, peer.LedgerFile))
		audit(t, d, pes)
		got := map[consent.ID]int{}
		l.View(func(v *consent.View) {
			for _, e := range pes {
				s := about(v, e.Author)
				got[s]++
				if set.Has(s) {
					continue
				}
				named := false
				for _, p := range set.Subjects() {
					named = named || v.Names(p, s)
				}
				if !named {
					t.Fatalf("%s keeps an entry of %s, which it does not serve and no served patient names", d, s.Short())
				}
			}
		})
		for _, s := range set.Subjects() {
			if got[s] != count[s] {
				t.Fatalf("%s keeps %d entries about a served patient, the network %d", d, got[s], count[s])
			}
		}
		if len(got) != 10+1 || got[clinician] != 1 {
			t.Fatalf("%s keeps the feeds of %d subjects (want 10 patients and the clinician)", d, len(got))
		}
	}

	// The patient's home, and a wallet restored from its key export.
	hl, hes, closeHome := openStore(t, filepath.Join(home, "ledger.db"))
	hl.View(func(v *consent.View) {
		for _, e := range hes {
			if s := about(v, e.Author); s != patient && s != clinician {
				t.Fatalf("the home holds an entry about %s", s.Short())
			}
		}
	})
	var head uint64
	for _, e := range hes {
		if e.Author == patient {
			head = max(head, uint64(e.Seq))
		}
	}
	closeHome()
	if len(hes) != entries+2 {
		t.Fatalf("the home holds %d entries, want %d", len(hes), entries+2)
	}
	data, err := os.ReadFile(filepath.Join(dir, "p.key"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := wallet.ImportKey(wallet.Config{Home: home, Keystore: keystore.NewMemory()}, data, "test")
	if err != nil {
		t.Fatal(err)
	}
	grants, err := w.Grants(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var live *wallet.GrantInfo
	for i := range grants {
		if grants[i].Given && grants[i].Status == wallet.GrantActive {
			live = &grants[i]
		}
	}
	if live == nil {
		t.Fatalf("no live grant among the wallet's %d", len(grants))
	}
	if _, err := w.Revoke(context.Background(), live.ID.String()); err != nil {
		t.Fatal(err)
	}
	after, err := w.LedgerEntries()
	if err != nil {
		t.Fatal(err)
	}
	var last *consent.Entry
	for _, e := range after {
		if e.Author == patient && (last == nil || e.Seq > last.Seq) {
			last = e
		}
	}
	if len(after) != len(hes)+1 || last.Kind != consent.KindRevoke || uint64(last.Seq) != head+1 {
		t.Fatalf("after the restored wallet's revoke: %d entries (was %d), its feed ends with %v at %d",
			len(after), len(hes), last.Kind, last.Seq)
	}
}
