package consent_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
)

// viewCase is a ledger to ingest, in this order, and the feeds a view
// must accept from it (by author, the hashes in seq order).
type viewCase struct {
	name    string
	in      []*consent.Entry
	want    map[consent.ID][]consent.Hash
	reqs    []*consent.Request // requests to decide on
	evident bool               // the view learns of an equivocation from two entries (kept in memory only)
}

func hashesOf(es []*consent.Entry) []consent.Hash {
	out := make([]consent.Hash, len(es))
	for i, e := range es {
		out[i] = e.Hash()
	}
	return out
}

// chainBuilder signs entries at each author's head.
type chainBuilder struct {
	t     *testing.T
	heads map[consent.ID]consent.Head
	feeds map[consent.ID][]*consent.Entry
	all   []*consent.Entry
	at    time.Time
}

func newChainBuilder(t *testing.T) *chainBuilder {
	return &chainBuilder{t: t, heads: map[consent.ID]consent.Head{}, feeds: map[consent.ID][]*consent.Entry{}, at: bt0}
}

func (c *chainBuilder) add(s consent.Signer, kind consent.Kind, body any) *consent.Entry {
	c.t.Helper()
	c.at = c.at.Add(time.Second)
	e, err := consent.NewEntry(s, c.heads[s.ID()], c.at, kind, body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.heads[s.ID()] = e.Head()
	c.feeds[s.ID()] = append(c.feeds[s.ID()], e)
	c.all = append(c.all, e)
	return e
}

func (c *chainBuilder) want() map[consent.ID][]consent.Hash {
	out := map[consent.ID][]consent.Hash{}
	for a, es := range c.feeds {
		out[a] = hashesOf(es)
	}
	return out
}

// consentLedger builds a patient's grants and revocations, a clinician's
// identity, and a peer's access entries in a sub-feed about the patient.
func consentLedger(t *testing.T) (*chainBuilder, []*consent.Request) {
	c := newChainBuilder(t)
	patient, clin, peer := batchSigner(t, "vs-patient"), batchSigner(t, "vs-clinician"), batchSigner(t, "vs-peer")
	sub, err := consent.NewSubFeed(peer, patient.ID())
	if err != nil {
		t.Fatal(err)
	}
	c.add(sub, consent.KindLink, sub.Link())
	var grants []consent.Hash
	var reqs []*consent.Request
	for i := range 12 {
		rec := fmt.Sprint("rec-", i%4)
		g := c.add(patient, consent.KindGrant, &consent.Grant{Grantee: clin.ID(), Records: []string{rec},
			Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: bt0.Unix()})
		grants = append(grants, g.Hash())
		r, err := consent.SignRequest(clin, consent.Request{Owner: patient.ID(), Record: rec, Scope: "patient/Observation.rs",
			Purpose: "TREAT", Time: c.at.Unix(), Nonce: fmt.Appendf(nil, "viewstore-nonce-%06d", i)})
		if err != nil {
			t.Fatal(err)
		}
		c.add(sub, consent.KindAccess, &consent.AccessBody{Request: r.Encode(), Allow: true, Reason: consent.ReasonGranted,
			Grant: g.Hash(), OwnerHead: c.heads[patient.ID()]})
		if i%3 == 2 {
			c.add(patient, consent.KindRevoke, &consent.RevokeBody{Grant: grants[i-1]})
		}
	}
	// Fresh requests to decide on (the logged ones would be replays): one
	// per record, and one for a record never granted.
	for i := range 5 {
		r, err := consent.SignRequest(clin, consent.Request{Owner: patient.ID(), Record: fmt.Sprint("rec-", i), Scope: "patient/Observation.rs",
			Purpose: "TREAT", Time: bt0.Add(time.Hour).Unix(), Nonce: fmt.Appendf(nil, "viewstore-fresh-%06d", i)})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	return c, reqs
}

func viewCases(t *testing.T) []viewCase {
	var cases []viewCase

	c, reqs := consentLedger(t)
	cases = append(cases, viewCase{name: "in order", in: c.all, want: c.want(), reqs: reqs})

	shuffled := slices.Clone(c.all)
	rand.New(rand.NewPCG(12, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	cases = append(cases, viewCase{name: "shuffled: gaps filled later", in: shuffled, want: c.want(), reqs: reqs})

	rev := slices.Clone(c.all)
	slices.Reverse(rev)
	cases = append(cases, viewCase{name: "reversed: all pending until the first", in: rev, want: c.want(), reqs: reqs})

	eq := batchSigner(t, "vs-equivocator")
	a, b := chainOf(t, eq, 8, "a"), chainOf(t, eq, 8, "b")
	in := append(slices.Clone(a), b[5], b[6])
	in = append(in, c.all...)
	want := c.want()
	want[eq.ID()] = hashesOf(a)
	cases = append(cases, viewCase{name: "equivocation", in: in, want: want, reqs: reqs, evident: true})

	// Duplicates, a gap never filled (the stray entry stays pending).
	stray := chainOf(t, batchSigner(t, "vs-stray"), 3, "")
	in = append(slices.Clone(c.all[:10]), c.all[3], stray[2], c.all[3])
	in = append(in, c.all[10:]...)
	in = append(in, c.all[0])
	cases = append(cases, viewCase{name: "duplicates and a gap never filled", in: in, want: c.want(), reqs: reqs})
	return cases
}

// viewFacts is what a view shows of a ledger.
type viewFacts struct {
	feeds   map[consent.ID][]consent.Hash // by FeedFrom
	heads   map[consent.ID]consent.Head
	pending int
	equiv   []consent.ID
	grants  []string
	dec     []consent.Decision
}

func factsOf(t *testing.T, v *consent.View, reqs []*consent.Request) viewFacts {
	t.Helper()
	f := viewFacts{feeds: map[consent.ID][]consent.Hash{}, heads: map[consent.ID]consent.Head{}, pending: v.Pending()}
	for _, a := range v.Authors() {
		hd := v.Head(a)
		f.heads[a] = hd
		err := v.FeedFrom(a, 1, func(e *consent.Entry) error {
			h := e.Hash()
			f.feeds[a] = append(f.feeds[a], h)
			if at, ok := v.HashAt(a, e.Seq); !ok || at != h {
				t.Errorf("%s#%d: HashAt %v %v, the entry's hash %v", a.Short(), e.Seq, at, ok, h)
			}
			got, err := v.EntryAt(a, e.Seq)
			if err != nil || got.Hash() != h {
				t.Errorf("%s#%d: EntryAt: %v", a.Short(), e.Seq, err)
			}
			if got, ok := v.Entry(h); !ok || got.Hash() != h {
				t.Errorf("%s#%d: Entry(hash) found %v", a.Short(), e.Seq, ok)
			}
			if !v.Has(h) {
				t.Errorf("%s#%d: Has is false", a.Short(), e.Seq)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := uint64(len(f.feeds[a])); n != hd.Seq || n > 0 && f.feeds[a][n-1] != hd.Hash {
			t.Errorf("%s: FeedFrom gave %d entries, head %d", a.Short(), n, hd.Seq)
		}
		if _, err := v.EntryAt(a, hd.Seq+1); !errors.Is(err, consent.ErrNotFound) {
			t.Errorf("%s: EntryAt past the head: %v, want ErrNotFound", a.Short(), err)
		}
		if _, ok := v.HashAt(a, hd.Seq+1); ok {
			t.Errorf("%s: HashAt past the head", a.Short())
		}
		if hd.Seq > 2 {
			var from []consent.Hash
			if err := v.FeedFrom(a, 3, func(e *consent.Entry) error { from = append(from, e.Hash()); return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(from, f.feeds[a][2:]) {
				t.Errorf("%s: FeedFrom(3) is not the feed from seq 3", a.Short())
			}
		}
		if v.Equivocating(a) {
			f.equiv = append(f.equiv, a)
		}
	}
	for _, g := range v.Grants() {
		f.grants = append(f.grants, fmt.Sprintf("%v revoked=%v", g.ID, v.Revoked(g.ID)))
	}
	for _, r := range reqs {
		f.dec = append(f.dec, consent.Decide(v, r, bt0.Add(time.Hour)))
	}
	return f
}

func sameFacts(t *testing.T, what string, got, want viewFacts, state bool) {
	t.Helper()
	if fmt.Sprint(got.feeds) != fmt.Sprint(want.feeds) || fmt.Sprint(got.heads) != fmt.Sprint(want.heads) {
		t.Errorf("%s: feeds or heads differ", what)
	}
	if !state {
		return
	}
	if got.pending != want.pending || !slices.Equal(got.equiv, want.equiv) {
		t.Errorf("%s: %d pending, equivocating %v; want %d, %v", what, got.pending, got.equiv, want.pending, want.equiv)
	}
	if !slices.Equal(got.grants, want.grants) || !slices.Equal(got.dec, want.dec) {
		t.Errorf("%s: grants or decisions differ:\n%v\n%v\nwant\n%v\n%v", what, got.grants, got.dec, want.grants, want.dec)
	}
}

// TestViewOverStore: a view whose entries are in a store (a Ledger's,
// over a boltstore, fed by Ingest, by IngestBatch, or opened again) shows
// the same feeds, heads, hashes, entries and decisions as a view that
// keeps them itself (NewView), and both accept exactly the feeds expected.
func TestViewOverStore(t *testing.T) {
	for _, c := range viewCases(t) {
		t.Run(c.name, func(t *testing.T) {
			mem := consent.NewView()
			for _, e := range c.in {
				if _, err := mem.Ingest(e); err != nil && !errors.Is(err, consent.ErrEquivocation) {
					t.Fatal(err)
				}
			}
			ref := factsOf(t, mem, c.reqs)
			if fmt.Sprint(ref.feeds) != fmt.Sprint(c.want) {
				t.Fatalf("NewView accepted other feeds than expected")
			}
			if c.evident != (len(ref.equiv) > 0) {
				t.Fatalf("equivocating authors %v", ref.equiv)
			}
			allows := 0
			for _, d := range ref.dec {
				if d.Allow {
					allows++
				}
			}
			if allows == 0 || allows == len(ref.dec) {
				t.Fatalf("the requests are all allowed or all denied: %+v", ref.dec)
			}
			for _, batch := range []int{1, 7, 1000} {
				path := filepath.Join(t.TempDir(), "ledger.db")
				s, err := boltstore.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				l, err := consent.OpenLedger(s)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(c.in); i += batch {
					part := c.in[i:min(i+batch, len(c.in))]
					if batch == 1 {
						_, err = l.Ingest(part[0])
					} else {
						_, err = l.IngestBatch(part)
					}
					if err != nil && !errors.Is(err, consent.ErrEquivocation) {
						t.Fatal(err)
					}
				}
				var got viewFacts
				l.View(func(v *consent.View) { got = factsOf(t, v, c.reqs) })
				sameFacts(t, fmt.Sprint("ledger, batches of ", batch), got, ref, true)
				l.Close()

				s, err = boltstore.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				l, err = consent.OpenLedger(s)
				if err != nil {
					t.Fatal(err)
				}
				l.View(func(v *consent.View) { got = factsOf(t, v, c.reqs) })
				// Entries pending and equivocations seen only in memory are
				// not stored: the reopened view has the feeds, and the rest
				// when there were none.
				sameFacts(t, fmt.Sprint("reopened, batches of ", batch), got, ref, ref.pending == 0 && !c.evident)
				l.Close()
			}
		})
	}
}
