package consent

import (
	"bytes"
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAuditStoreMatchesAuditLedger: auditing a store feed by feed gives
// the report AuditLedgerWith gives on the same entries, invalid entries
// and findings included, and the view of the audited entries.
func TestAuditStoreMatchesAuditLedger(t *testing.T) {
	for seed := range uint64(4) {
		l := newRandLedger(t, 100+seed)
		for range 120 {
			l.step()
		}
		es := append([]*Entry(nil), l.entries...)
		// One entry with a broken signature, one access entry that lies.
		bad := *es[len(es)/2]
		bad.Sig = append([]byte(nil), bad.Sig...)
		bad.Sig[0] ^= 1
		es[len(es)/2] = &bad
		s := NewMemStore()
		for _, e := range es {
			if err := s.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		got, v, err := AuditStore(s, AccessCheck{})
		if err != nil {
			t.Fatal(err)
		}
		want := AuditLedger(es)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: AuditStore = %+v\nAuditLedger = %+v", seed, got, want)
		}
		if len(want.Findings) == 0 {
			t.Fatalf("seed %d: no findings", seed)
		}
		if n := len(v.Authors()); n != want.Feeds {
			t.Fatalf("seed %d: view of %d feeds, want %d", seed, n, want.Feeds)
		}
	}
}

// scanOnly hides a store's ScanRaw: AuditStore then reads it with Scan.
type scanOnly struct{ Store }

// tamperedLedger is a random ledger (grants, revocations, credentials,
// break-glass, accesses and equivocation proofs) with, on top: entries
// whose signature a bit flip broke, in two feeds; a feed with a gap; an
// access entry carrying a request signed by no one, one dated in the
// future and one by a decider no one knows (suspicious); an allow under a
// grant that does not exist and one naming an owner head that is not in
// the owner's feed (violations). Entries are sorted by author and seq.
func tamperedLedger(t *testing.T, seed uint64) []*Entry {
	l := newRandLedger(t, seed)
	for range 150 {
		l.step()
	}
	for range 3 {
		l.equivocate()
	}
	stranger := testSigner(t, "stranger")
	r := l.request(l.at)
	bad := *r
	bad.Sig = append([]byte(nil), r.Sig...)
	bad.Sig[3] ^= 1
	owner := r.Owner
	l.add(l.peer, KindAccess, &AccessBody{Request: bad.Encode(), Reason: ReasonNoGrant, OwnerHead: l.head(owner)})
	future := l.request(l.at.Add(24 * time.Hour))
	l.at = l.at.Add(24 * time.Hour)
	l.add(l.peer, KindAccess, &AccessBody{Request: future.Encode(), Reason: ReasonNoGrant, OwnerHead: l.head(future.Owner)})
	l.at = l.at.Add(-24 * time.Hour)
	r = l.request(l.at)
	l.add(stranger, KindAccess, &AccessBody{Request: r.Encode(), Reason: ReasonNoGrant, OwnerHead: l.head(r.Owner)})
	r = l.request(l.at)
	l.add(l.peer, KindAccess, &AccessBody{Request: r.Encode(), Allow: true, Reason: ReasonGranted,
		Grant: HashBytes([]byte("no such grant")), OwnerHead: l.head(r.Owner)})
	r = l.request(l.at)
	l.add(l.peer, KindAccess, &AccessBody{Request: r.Encode(), Allow: true, Reason: ReasonGranted,
		Grant: HashBytes([]byte("another grant")), OwnerHead: Head{Seq: l.head(r.Owner).Seq, Hash: HashBytes([]byte("no such head"))}})

	es := slices.Clone(l.entries)
	slices.SortFunc(es, func(a, b *Entry) int {
		if c := cmp.Compare(a.Author, b.Author); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	flip := func(i int) {
		e := *es[i]
		e.Sig = append([]byte(nil), e.Sig...)
		e.Sig[0] ^= 1
		es[i] = &e
	}
	// A bit flip in the first feed and in the last; the feed in the
	// middle loses an entry.
	flip(1)
	flip(len(es) - 2)
	mid := es[len(es)/2].Author
	for i, e := range es {
		if e.Author == mid && e.Seq == 2 {
			es = slices.Delete(es, i, i+1)
			break
		}
	}
	return es
}

// TestAuditStoreMatchesAuditLedgerTampered: the streaming audit of a store
// (read raw or with Scan) and AuditLedgerWith of the same entries give the
// same report on ledgers with invalid entries, a gap, forks proven on the
// ledger, and suspicious and violating accesses, with a reader that knows
// the time and the deciders.
func TestAuditStoreMatchesAuditLedgerTampered(t *testing.T) {
	for seed := range uint64(3) {
		es := tamperedLedger(t, 200+seed)
		dave := testSigner(t, "dave").ID()
		c := AccessCheck{Now: t0.Add(48 * time.Hour), Decider: func(id ID) bool { return id == dave }}
		want := AuditLedgerWith(es, c)
		has := map[string]bool{}
		for _, f := range want.Findings {
			has[f.Kind] = true
		}
		for _, k := range []string{FindingInvalid, FindingChain, FindingEquivocation, FindingSuspicious, FindingViolation} {
			if !has[k] {
				t.Errorf("seed %d: no %s finding: %s", seed, k, kinds(want))
			}
		}
		s := NewMemStore()
		for _, e := range es {
			if err := s.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		for name, st := range map[string]Store{"raw": s, "scan": scanOnly{s}} {
			got, v, err := AuditStore(st, c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				wj, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("seed %d, %s: AuditStore = %s\nAuditLedgerWith = %s", seed, name, gj, wj)
			}
			if n := len(v.Authors()); n != want.Feeds {
				t.Fatalf("seed %d: view of %d feeds, want %d", seed, n, want.Feeds)
			}
		}
	}
}

// TestAuditStoreOutOfOrder: a store whose scan gives an author's entries
// out of order (an entry filed under another key) cannot be audited.
func TestAuditStoreOutOfOrder(t *testing.T) {
	es := tamperedLedger(t, 7)
	s := NewMemStore()
	for _, e := range es {
		if err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	// Move an entry to the slot of a later one.
	e := es[3]
	b := e.Encode()
	s.m[authorSeq{e.Author, e.Seq + 100}] = b
	if _, _, err := AuditStore(s, AccessCheck{}); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("AuditStore = %v, want an out-of-order error", err)
	}
}

// TestSignedMessageOf: the signed message cut from an entry's encoding is
// the one SignedMessage builds.
func TestSignedMessageOf(t *testing.T) {
	for _, e := range tamperedLedger(t, 9) {
		if got, want := signedMessageOf(e.Encode(), e), e.SignedMessage(); !bytes.Equal(got, want) {
			t.Fatalf("%s#%d: signed message differs", e.Author.Short(), e.Seq)
		}
	}
}
