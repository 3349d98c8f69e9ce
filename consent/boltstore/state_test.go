package boltstore

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	bolt "go.etcd.io/bbolt"
)

func anchorEntries(t *testing.T, s consent.Signer, n int) []*consent.Entry {
	t.Helper()
	var (
		out  []*consent.Entry
		head consent.Head
	)
	for i := range n {
		e, err := consent.NewEntry(s, head, time.Unix(1767225600+int64(i), 0), consent.KindAnchor,
			&consent.AnchorBody{Record: "rec-1", Manifest: consent.HashBytes([]byte{byte(i)})})
		if err != nil {
			t.Fatal(err)
		}
		head = e.Head()
		out = append(out, e)
	}
	return out
}

func generation(t *testing.T, s *Store) uint64 {
	t.Helper()
	g, err := s.Generation()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The generation counts the entries added: Put and PutBatch raise it by
// what they add, not by what they were handed.
func TestGeneration(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	signer, err := consent.NewKeySigner(ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	es := anchorEntries(t, signer, 6)
	if g := generation(t, s); g != 0 {
		t.Fatalf("new store: generation %d", g)
	}
	if err := s.Put(es[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(es[0]); err != nil { // held already: no change
		t.Fatal(err)
	}
	if g := generation(t, s); g != 1 {
		t.Fatalf("after one entry: generation %d", g)
	}
	if err := s.PutBatch([]*consent.Entry{es[0], es[1], es[2], es[2]}); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, s); g != 3 {
		t.Fatalf("after three entries: generation %d", g)
	}
	// A refused batch adds nothing.
	other, err := consent.NewEntry(signer, es[2].Head(), time.Unix(1767225700, 0), consent.KindAnchor,
		&consent.AnchorBody{Record: "rec-2", Manifest: consent.HashBytes([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatch([]*consent.Entry{es[3], other}); err == nil {
		t.Fatal("conflicting batch stored")
	}
	if g := generation(t, s); g != 3 {
		t.Fatalf("after a refused batch: generation %d, want 3", g)
	}
	if err := s.PutBatch([]*consent.Entry{es[3], es[4]}); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, s); g != 5 {
		t.Fatalf("after five entries: generation %d, want 5", g)
	}
}

// A store written before the generation existed starts from the number of
// entries it holds.
func TestGenerationOfOldStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := consent.NewKeySigner(ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatch(anchorEntries(t, signer, 7)); err != nil {
		t.Fatal(err)
	}
	// What an older binary leaves: no generation.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(metaBucket).Delete(genKey) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if g := generation(t, s); g != 7 {
		t.Fatalf("generation %d, want 7", g)
	}
}

// stateGen is the generation the saved state describes, 0 for none.
func stateGen(t *testing.T, s *Store) (uint64, bool) {
	t.Helper()
	g, ok, err := s.StateGeneration()
	if err != nil {
		t.Fatal(err)
	}
	return g, ok
}

// get returns a copy of the value at k of a table of the saved state.
func get(t *testing.T, s *Store, table, k string) []byte {
	t.Helper()
	var out []byte
	if err := s.StateGet(table, []byte(k), func(v []byte) error { out = bytes.Clone(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// scan returns the keys StateScan gives.
func scan(t *testing.T, s *Store, table, prefix, after string, desc bool) []string {
	t.Helper()
	var a []byte
	if after != "" {
		a = []byte(after)
	}
	var out []string
	if err := s.StateScan(table, []byte(prefix), a, desc, func(k, _ []byte) error { out = append(out, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSaveLoadState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	signer, err := consent.NewKeySigner(ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	es := anchorEntries(t, signer, 200) // enough for the entries bucket to have a page of its own
	if err := s.PutBatch(es[:100]); err != nil {
		t.Fatal(err)
	}
	if g, ok := stateGen(t, s); ok || g != 0 {
		t.Fatalf("no state saved: generation %d, %v", g, ok)
	}
	keys := []string{"a\x00\x01", "a\x00\x02", "a\x00\x03", "ab\x00\x01", "b\x00\x01"}
	err = s.SaveState(100, true, func(put consent.StatePut) error {
		for _, k := range keys {
			if err := put("t", []byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return put("other", []byte("k"), []byte("w"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	if g, ok := stateGen(t, s); !ok || g != 100 {
		t.Fatalf("state saved: generation %d, %v", g, ok)
	}
	if v := get(t, s, "t", keys[1]); string(v) != "v"+keys[1] {
		t.Fatalf("get: %q", v)
	}
	if v := get(t, s, "t", "none"); v != nil {
		t.Fatalf("get of no key: %q", v)
	}
	if v := get(t, s, "no table", "k"); v != nil {
		t.Fatalf("get in no table: %q", v)
	}
	for _, tc := range []struct {
		prefix, after string
		desc          bool
		want          []string
	}{
		{"a\x00", "", false, keys[:3]},
		{"a\x00", "", true, []string{keys[2], keys[1], keys[0]}},
		{"a\x00", keys[0], false, keys[1:3]},
		{"a\x00", keys[2], true, []string{keys[1], keys[0]}},
		{"a\x00", keys[0], true, nil},
		{"b\x00", "", true, keys[4:]},
		{"", "", false, keys},
		{"", "", true, []string{keys[4], keys[3], keys[2], keys[1], keys[0]}},
		{"\xff", "", true, nil},
	} {
		if got := scan(t, s, "t", tc.prefix, tc.after, tc.desc); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("scan %q after %q desc %v: %q, want %q", tc.prefix, tc.after, tc.desc, got, tc.want)
		}
	}
	// A save that fails leaves no state; one bigger than a transaction
	// commits in several, and only the last records the generation.
	big := bytes.Repeat([]byte{1}, 64<<10)
	n := 0
	errFail := errors.New("fail")
	err = s.SaveState(101, false, func(put consent.StatePut) error {
		for ; n < 3*saveTxBytes/len(big); n++ {
			if err := put("big", fmt.Append(nil, n), big); err != nil {
				return err
			}
		}
		return errFail
	})
	if !errors.Is(err, errFail) {
		t.Fatalf("failed save: %v", err)
	}
	if g, ok := stateGen(t, s); ok {
		t.Fatalf("after a failed save: generation %d", g)
	}
	err = s.SaveState(100, false, func(put consent.StatePut) error { return put("t", []byte("x"), []byte("y")) })
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := stateGen(t, s); !ok || g != 100 || get(t, s, "t", "x") == nil || get(t, s, "big", "0") == nil || get(t, s, "t", keys[0]) == nil {
		t.Fatalf("an incremental save: generation %d, %v, or a key missing", g, ok)
	}
	// A full save drops every table first.
	if err := s.SaveState(100, true, func(put consent.StatePut) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if get(t, s, "t", keys[0]) != nil || get(t, s, "big", "0") != nil {
		t.Fatal("a full save kept the old tables")
	}
	// An entry added by a binary that does not count: the generation
	// stays, the entries bucket's root moves, and the state is not
	// offered.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(entriesBucket).Put(key(es[100].Author, es[100].Seq), es[100].Encode())
	}); err != nil {
		t.Fatal(err)
	}
	if g, ok := stateGen(t, s); ok {
		t.Fatalf("after an uncounted write: generation %d", g)
	}
	// Reopened, the store counts its entries again.
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, s); g != 101 {
		t.Fatalf("after an uncounted write: generation %d, want 101", g)
	}
	if err := s.SaveState(generation(t, s), false, func(consent.StatePut) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.DropState(); err != nil {
		t.Fatal(err)
	}
	if g, ok := stateGen(t, s); ok {
		t.Fatalf("after DropState: generation %d", g)
	}
}

// countingStore counts the entries a Ledger reads from the store.
type countingStore struct {
	*Store
	scanned, got int
}

func (c *countingStore) Scan(fn func(*consent.Entry) error) error {
	return c.Store.Scan(func(e *consent.Entry) error { c.scanned++; return fn(e) })
}

func (c *countingStore) ScanRaw(fn func([]byte) error) error {
	return c.Store.ScanRaw(func(b []byte) error { c.scanned++; return fn(b) })
}

func (c *countingStore) ScanFeed(a consent.ID, from uint64, fn func(*consent.Entry) error) error {
	return c.Store.ScanFeed(a, from, func(e *consent.Entry) error { c.scanned++; return fn(e) })
}

func (c *countingStore) Get(a consent.ID, seq uint64) (*consent.Entry, error) {
	c.got++
	return c.Store.Get(a, seq)
}

// genEntries makes n entries of three feeds, the shape of the bench: a
// patient's grants and revocations to a clinician, and a peer's access
// entries carrying the clinician's signed requests. Entry i of n is the
// same whatever n.
func genEntries(tb testing.TB, n int) ([]*consent.Entry, map[consent.ID]*consent.KeySigner) {
	return genEntriesOf(tb, "", n)
}

// genEntriesOf is genEntries with keys of their own per salt.
func genEntriesOf(tb testing.TB, salt string, n int) ([]*consent.Entry, map[consent.ID]*consent.KeySigner) {
	tb.Helper()
	signers := map[consent.ID]*consent.KeySigner{}
	key := func(who string) *consent.KeySigner {
		seed := sha256.Sum256([]byte("medwallet state test key: " + salt + who))
		s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
		if err != nil {
			tb.Fatal(err)
		}
		signers[s.ID()] = s
		return s
	}
	patient, clin, peer := key("patient"), key("clinician"), key("peer")
	heads := map[consent.ID]consent.Head{}
	t0 := time.Unix(1767225600, 0)
	var out []*consent.Entry
	add := func(sg consent.Signer, kind consent.Kind, body any) *consent.Entry {
		e, err := consent.NewEntry(sg, heads[sg.ID()], t0.Add(time.Duration(len(out))*time.Second), kind, body)
		if err != nil {
			tb.Fatal(err)
		}
		heads[sg.ID()] = e.Head()
		out = append(out, e)
		return e
	}
	var last consent.Hash
	for i := 0; i < n; i++ {
		switch {
		case i%2 == 1:
			r, err := consent.SignRequest(clin, consent.Request{Owner: patient.ID(), Record: "rec-1",
				Scope: "patient/Observation.rs", Purpose: "TREAT", Time: t0.Unix(), Nonce: []byte(fmt.Sprintf("nonce-%012d", i))})
			if err != nil {
				tb.Fatal(err)
			}
			add(peer, consent.KindAccess, &consent.AccessBody{Request: r.Encode(), Allow: true,
				Reason: consent.ReasonGranted, Grant: last, OwnerHead: heads[patient.ID()]})
		case i%6 == 4:
			add(patient, consent.KindRevoke, &consent.RevokeBody{Grant: last})
		default:
			last = add(patient, consent.KindGrant, &consent.Grant{Grantee: clin.ID(), Records: []string{"rec-1"},
				Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: t0.Unix()}).Hash()
		}
	}
	return out, signers
}

// stateLedger writes a small ledger of three feeds (grants, revocations,
// accesses; the shape of the bench) to path, through a Ledger that it
// closes, and returns the state of its view.
func stateLedger(t *testing.T, path string, n int) []byte {
	return stateLedgerOf(t, path, "", n)
}

func stateLedgerOf(t *testing.T, path, salt string, n int) []byte {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := consent.OpenLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	es, _ := genEntriesOf(t, salt, n)
	for len(es) > 0 {
		k := min(len(es), 256)
		if _, err := l.IngestBatch(es[:k]); err != nil {
			t.Fatal(err)
		}
		es = es[k:]
	}
	st := viewState(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

func viewState(t *testing.T, l *consent.Ledger) []byte {
	t.Helper()
	var (
		b   []byte
		err error
	)
	l.View(func(v *consent.View) { b, err = consent.EncodeState(v) })
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// open opens the ledger at path through a counting store.
func open(t *testing.T, path string) (*consent.Ledger, *countingStore) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingStore{Store: s}
	l, err := consent.OpenLedger(c)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, c
}

// TestOpenFromState: a ledger closed with its state opens without reading
// its entries, and its view is the one that was closed.
func TestOpenFromState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	want := stateLedger(t, path, 300)
	l, c := open(t, path)
	if c.scanned != 0 || !l.OpenedFromState() {
		t.Fatalf("opened with a fresh state: %d entries read, from state %v", c.scanned, l.OpenedFromState())
	}
	if c.got > 2*3 { // the heads of the three feeds, and that nothing follows them
		t.Fatalf("opened with a fresh state: %d entries read back", c.got)
	}
	if got := viewState(t, l); !bytes.Equal(got, want) {
		t.Fatal("the view restored from the state is not the one saved")
	}
	// And it reads entries on demand.
	if n := len(l.Entries()); n != 300 {
		t.Fatalf("%d entries, want 300", n)
	}
}

// A state that is missing, stale, of another version, corrupt or does not
// match the entries is rebuilt from the entries, and the view is the same.
func TestStateRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, s *Store)
	}{
		{"no state bucket", func(t *testing.T, s *Store) {
			if err := s.DropState(); err != nil {
				t.Fatal(err)
			}
		}},
		{"corrupt core", func(t *testing.T, s *Store) {
			spoilCore(t, s, func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		}},
		{"truncated core", func(t *testing.T, s *Store) {
			spoilCore(t, s, func(b []byte) []byte { return b[:len(b)/3] })
		}},
		{"another version", func(t *testing.T, s *Store) {
			spoilCore(t, s, func(b []byte) []byte { b[1]++; return b })
		}},
		{"the state of earlier releases", func(t *testing.T, s *Store) {
			// A version 2 state: one value, no tables.
			if err := s.db.Update(func(tx *bolt.Tx) error {
				sb := tx.Bucket(stateBucket)
				if err := dropTables(sb); err != nil {
					return err
				}
				return sb.Put(oldStateKey, []byte{0x83, 0x02, 0x40, 0x40})
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a table missing", func(t *testing.T, s *Store) {
			for _, name := range []string{"g", "n", "r"} {
				dropTable(t, s, name)
			}
		}},
		{"feed hashes missing", func(t *testing.T, s *Store) { dropTable(t, s, "h") }},
		{"another generation", func(t *testing.T, s *Store) {
			g, _ := stateGen(t, s)
			setStateGeneration(t, s, g+1)
		}},
		{"stale: entries added since", func(t *testing.T, s *Store) {
			// A store whose state was saved before its last entries (a
			// process killed before Close).
			es, _ := genEntries(t, 310)
			if err := s.PutBatch(es[300:]); err != nil {
				t.Fatal(err)
			}
		}},
		{"a state of another ledger", func(t *testing.T, s *Store) {
			// A valid state, of a ledger with as many entries (the
			// generation matches) but not these.
			opath := filepath.Join(t.TempDir(), "other.db")
			stateLedgerOf(t, opath, "other ", 300)
			o, err := Open(opath)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			g, _ := stateGen(t, s)
			copyState(t, o, s, g)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			stateLedger(t, path, 300)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.spoil(t, s)
			// The view the entries give, built without any state.
			ref := consent.NewView()
			if err := s.Scan(func(e *consent.Entry) error { _, err := ref.Ingest(e); return err }); err != nil {
				t.Fatal(err)
			}
			want, err := consent.EncodeState(ref)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()

			l, c := open(t, path)
			if l.OpenedFromState() || c.scanned == 0 {
				t.Fatalf("opened from a spoilt state (%d entries read)", c.scanned)
			}
			if got := viewState(t, l); !bytes.Equal(got, want) {
				t.Fatal("the rebuilt view is not the one the entries give")
			}
			l.Close()
			// The rebuild saved a fresh state.
			l, c = open(t, path)
			if !l.OpenedFromState() || c.scanned != 0 {
				t.Fatalf("no fresh state after a rebuild (%d entries read)", c.scanned)
			}
			if got := viewState(t, l); !bytes.Equal(got, want) {
				t.Fatal("the fresh state is not the one the entries give")
			}
		})
	}
}

// spoilCore replaces the state's core with f of it.
func spoilCore(t *testing.T, s *Store, f func([]byte) []byte) {
	t.Helper()
	b := get(t, s, "core", "core")
	if b == nil {
		t.Fatal("no state to spoil")
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(stateBucket).Bucket([]byte(tablePrefix+"core")).Put([]byte("core"), f(b))
	}); err != nil {
		t.Fatal(err)
	}
}

func dropTable(t *testing.T, s *Store, name string) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(stateBucket).DeleteBucket([]byte(tablePrefix + name))
	}); err != nil {
		t.Fatal(err)
	}
}

// setStateGeneration records gen as the generation the saved state
// describes, whatever it describes.
func setStateGeneration(t *testing.T, s *Store, gen uint64) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error { return putUint(tx.Bucket(stateBucket), genKey, gen) }); err != nil {
		t.Fatal(err)
	}
}

// copyState saves the state of from into to, as describing gen.
func copyState(t *testing.T, from, to *Store, gen uint64) {
	t.Helper()
	type kv struct {
		table   string
		key, vl []byte
	}
	var all []kv
	err := from.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(stateBucket).ForEachBucket(func(name []byte) error {
			return tx.Bucket(stateBucket).Bucket(name).ForEach(func(k, v []byte) error {
				all = append(all, kv{string(name[len(tablePrefix):]), bytes.Clone(k), bytes.Clone(v)})
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = to.SaveState(gen, true, func(put consent.StatePut) error {
		for _, x := range all {
			if err := put(x.table, x.key, x.vl); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A view that holds what its store does not is not saved: an equivocation
// it was handed (the proof lives in memory), or entries waiting for a
// predecessor. The next open reads the entries, and answers as they say.
func TestStateNotSavedWhenViewHoldsMore(t *testing.T) {
	es, signers := genEntries(t, 40)
	for _, tc := range []struct {
		name string
		feed func(t *testing.T, l *consent.Ledger)
	}{
		{"equivocation", func(t *testing.T, l *consent.Ledger) {
			if _, err := l.IngestBatch(es[30:]); err != nil {
				t.Fatal(err)
			}
			last := es[len(es)-1] // seq > 1
			var prev consent.Head
			l.View(func(v *consent.View) {
				h, _ := v.HashAt(last.Author, last.Seq-1)
				p, err := v.EntryAt(last.Author, last.Seq-1)
				if err != nil {
					t.Fatal(err)
				}
				prev = consent.Head{Seq: last.Seq - 1, Hash: h, Time: p.Time}
			})
			fork, err := consent.NewEntry(signers[last.Author], prev, time.Unix(last.Time, 0), consent.KindAnchor,
				&consent.AnchorBody{Record: "fork", Manifest: consent.HashBytes([]byte("fork"))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Ingest(fork); !errors.Is(err, consent.ErrEquivocation) {
				t.Fatalf("fork: %v", err)
			}
		}},
		{"pending", func(t *testing.T, l *consent.Ledger) {
			if _, err := l.IngestBatch(es[31:]); err != nil { // es[30] is missing
				t.Fatal(err)
			}
			var n int
			l.View(func(v *consent.View) { n = v.Pending() })
			if n == 0 {
				t.Fatal("nothing pending")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			l, err := consent.OpenLedger(s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.IngestBatch(es[:30]); err != nil {
				t.Fatal(err)
			}
			if err := l.SaveState(); err != nil {
				t.Fatal(err)
			}
			tc.feed(t, l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, c := open(t, path)
			if l.OpenedFromState() || c.scanned == 0 {
				t.Fatal("a view holding more than its store was saved, or a stale state loaded")
			}
			var eq bool
			l.View(func(v *consent.View) { _, fromStore := v.Proof(es[len(es)-1].Author); eq = fromStore })
			if eq {
				t.Fatal("a proof that lived in memory survived the restart")
			}
		})
	}
}
