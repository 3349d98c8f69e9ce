package attack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/medwallet/medwallet/consent"
	ledgerstore "github.com/medwallet/medwallet/consent/boltstore"
	"github.com/medwallet/medwallet/p2p/ledgersync"
)

// TestNeedToKnow (issue 12): a patient's ledger is kept by the peers that
// serve her and read by her parties only.
//
//   - A stranger (a fresh key) pulls nothing of Alice's from her peers, and
//     its push of Alice's genuine entries and of a feed of its own is refused
//     with not-authorised, stores nothing, and is logged by the peer.
//   - Carol, a grantee, pulls Alice's home feed (her grant in it) and none of
//     the peers' access sub-feeds about Alice; Alice's serving peers hold
//     each other's sub-feeds about her.
//   - A sixth peer on the same network that Alice's network file does not
//     list (it serves no one) stores nothing of Alice's while she grants,
//     Bob imports and Alice revokes.
//   - The honest checks (record get, import, revoke reaching every peer,
//     log without forgeries) pass throughout.
func TestNeedToKnow(t *testing.T) {
	n := newNetwork(t, netOptions{})
	p6 := n.outsider()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n.honest(ctx)

	p1 := n.peers[0]
	s, err := newStranger(n)
	if err != nil {
		t.Fatal(err)
	}
	defer s.host.Close()

	// The stranger pulls: nothing of Alice's.
	got, err := pullAll(ctx, s.host, p1)
	if err != nil && !errors.Is(err, ledgersync.ErrNotAuthorised) {
		t.Fatalf("stranger's pull: %v, want entries or not-authorised", err)
	}
	if k := n.aliceEntries(got); k != "" {
		t.Fatalf("a stranger pulled %s from p1", k)
	}

	// Carol, a grantee, pulls Alice's home feed with her grant, and no
	// access sub-feed about Alice.
	carol := n.carol.host
	ces, err := pullAll(ctx, carol, p1)
	if err != nil {
		t.Fatalf("Carol's pull: %v", err)
	}
	var aliceFeed []*consent.Entry
	hasGrant := false
	for _, e := range ces {
		if e.Author == n.alice.id {
			aliceFeed = append(aliceFeed, e)
			hasGrant = hasGrant || e.Hash().String() == n.carolGrant
		}
	}
	if !hasGrant {
		t.Fatalf("Carol pulled %d entries of Alice's feed, without her grant %s", len(aliceFeed), n.carolGrant[:12])
	}
	if k := subFeedsAbout(ces, n.alice.id); k != 0 {
		t.Fatalf("Carol pulled %d entries of access sub-feeds about Alice", k)
	}

	// The stranger pushes Alice's genuine entries, and a feed of its own.
	own := []*consent.Entry{s.next(time.Now().Unix(), consent.KindIdentity, identityBody()),
		s.next(time.Now().Unix(), consent.KindGrant, bigGrant(64<<10))}
	for name, es := range map[string][]*consent.Entry{"Alice's entries": aliceFeed, "its own feed": own} {
		acks, err := ledgersync.Push(ctx, s.host, p1.id, es)
		if err != nil && !errors.Is(err, ledgersync.ErrNotAuthorised) {
			t.Fatalf("stranger's push of %s: %v", name, err)
		}
		if len(acks) == 0 && err == nil {
			t.Fatalf("stranger's push of %s: no ack", name)
		}
		for _, a := range acks {
			if a.Status != ledgersync.AckRefused || a.Code != ledgersync.CodeNotAuthorised {
				t.Fatalf("stranger's push of %s: entry %s %s %q, want refused %s", name, a.Hash.String()[:12], a.Status, a.Reason, ledgersync.CodeNotAuthorised)
			}
		}
	}
	back, err := pullAll(ctx, s.host, p1)
	if err != nil && !errors.Is(err, ledgersync.ErrNotAuthorised) {
		t.Fatalf("stranger's pull of its own feed: %v", err)
	}
	for _, e := range back {
		if e.Author == s.id() {
			t.Fatalf("p1 stored the stranger's entry %d", e.Seq)
		}
	}
	if b, _ := os.ReadFile(p1.logf); !strings.Contains(string(b), "ledger request refused: not authorised") {
		t.Fatalf("p1 logged no refusal:\n%s", tail(p1.logf))
	}

	// Stop p2 and the outsider, and read their ledgers.
	p2 := n.peers[1]
	p2.stop()
	p6.stop()
	held := readLedger(t, p2)
	if k := n.aliceEntries(held); !strings.Contains(k, "home feed") || !strings.Contains(k, "sub-feed") {
		t.Fatalf("p2, a serving peer of Alice's, holds %q of hers, want her home feed and the peers' sub-feeds", k)
	}
	if k := n.aliceEntries(readLedger(t, p6)); k != "" {
		t.Fatalf("p6, serving no one, holds %s", k)
	}
}

// outsider starts a sixth peer, bootstrapped to the five, that no network
// file lists and no one enrols: it serves no one.
func (n *testnet) outsider() *peerProc {
	t := n.t
	t.Helper()
	p := n.newPeerProc("p6", freePorts(t, 1)[0], nil)
	n.start(p)
	t.Cleanup(p.kill)
	n.waitUp(p)
	return p
}

func pullAll(ctx context.Context, h host.Host, p *peerProc) ([]*consent.Entry, error) {
	h.Peerstore().AddAddrs(p.id, p.info().Addrs, peerstore.PermanentAddrTTL)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return ledgersync.Pull(ctx, h, p.id, nil)
}

// aliceEntries says what of Alice's es holds: her home feed, access
// sub-feeds about her, access entries about her records ("" if none).
func (n *testnet) aliceEntries(es []*consent.Entry) string {
	var home, access int
	for _, e := range es {
		if e.Author == n.alice.id {
			home++
		}
		if e.Kind == consent.KindAccess {
			if b, err := e.DecodedBody(); err == nil {
				if r, err := consent.DecodeRequest(b.(*consent.AccessBody).Request); err == nil && r.Owner == n.alice.id {
					access++
				}
			}
		}
	}
	sub := subFeedsAbout(es, n.alice.id)
	if home+access+sub == 0 {
		return ""
	}
	return fmt.Sprintf("%d entries of her home feed, %d of sub-feeds about her, %d access entries about her records", home, sub, access)
}

// subFeedsAbout counts the entries of the sub-feeds about subject in es.
func subFeedsAbout(es []*consent.Entry, subject consent.ID) int {
	v := consent.NewView()
	for _, e := range es {
		_, _ = v.Ingest(e)
	}
	c := 0
	for _, e := range es {
		if _, s, ok := v.SubFeedOf(e.Author); ok && s == subject {
			c++
		}
	}
	return c
}

// readLedger reads a stopped peer's ledger.
func readLedger(t testing.TB, p *peerProc) []*consent.Entry {
	t.Helper()
	st, err := ledgerstore.Open(filepath.Join(p.dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []*consent.Entry
	if err := st.Scan(func(e *consent.Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
