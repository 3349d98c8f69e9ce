package ledgersync

import (
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// WithSyncObserver hears every pull sync with how far behind the remote
// this peer was: the feeds the remote was ahead on, and the entries taken.
func TestSyncObserver(t *testing.T) {
	a := newNode(t)
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	feed := appendN(t, a.l, alice, 3)
	appendN(t, a.l, bob, 2)
	var mu sync.Mutex
	var got []SyncResult
	b := newNode(t, WithSyncObserver(func(p peer.ID, r SyncResult) {
		if p != a.h.ID() {
			t.Errorf("a sync with %s, want %s", p, a.h.ID())
		}
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}))
	// b holds alice's first entry already: behind on both feeds still.
	if _, err := b.l.Ingest(feed[0]); err != nil {
		t.Fatal(err)
	}
	connect(t, b.h, a.h)
	// The sync on connect takes what b lacks; one more sync finds nothing
	// (once the first has let go of its stream).
	eventually(t, 10*time.Second, "b holds a's feeds", func() bool { return b.head(alice.ID()).Seq == 3 && b.head(bob.ID()).Seq == 2 })
	eventually(t, 10*time.Second, "another sync succeeds", func() bool {
		_, err := b.s.SyncWith(ctxT(t, 10*time.Second), a.h.ID())
		return err == nil
	})
	mu.Lock()
	defer mu.Unlock()
	accepted, maxBehind := 0, 0
	for _, r := range got {
		accepted += r.Accepted
		maxBehind = max(maxBehind, r.Behind)
	}
	if accepted != 4 || maxBehind != 2 {
		t.Fatalf("syncs %+v: took %d entries, at most %d feeds behind; want 4 and 2", got, accepted, maxBehind)
	}
	if last := got[len(got)-1]; last.Behind != 0 || last.Accepted != 0 {
		t.Fatalf("the sync after catching up says %+v, want nothing behind", last)
	}
}
