package consent

import (
	"reflect"
	"testing"
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
