package peer

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
)

// TestOwnerBlobsAreNeverOrphans: a record no anchor names is an orphan on a
// peer the owner's serve entry names, but the owner's backup and sealed
// identity (named by no anchor by design) are not: only their leases
// expire. Without the exception a guardian setup would be collected a
// grace period after it was made.
func TestOwnerBlobsAreNeverOrphans(t *testing.T) {
	w := newAuthWorld(t)
	var mu sync.Mutex
	ref := refereeOf(w.ledger, w.id("self"), true, map[consent.ID]*retired{}, &mu, slog.New(slog.DiscardHandler))
	owner := w.id("S")
	pol := store.Policy{Lease: 180 * 24 * time.Hour, Grace: 7 * 24 * time.Hour}
	created := time.Now().Add(-30 * 24 * time.Hour)
	now := time.Now()
	for _, tc := range []struct {
		record string
		want   string
	}{
		{"0123456789abcdef0123456789abcdef", store.Orphan},
		{consent.BackupRecord(owner), store.Expired},
		{consent.SealedIdentityRecord(owner), store.Expired},
		{consent.AgeKeyRecord(owner), store.Expired},
	} {
		r := ref(owner, tc.record)
		st := store.Classify(pol, store.Item{Owner: owner, Record: tc.record, Created: created},
			store.Lease{Renewed: created.Unix()}, r, now)
		if st.Reason != tc.want {
			t.Errorf("record %s: reason %q, want %q", tc.record, st.Reason, tc.want)
		}
	}
}
