package ledgersync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// testAuth lets readers read the feeds named for them and writers write
// any entry; everyone else is refused.
type testAuth struct {
	mu      sync.Mutex
	readers map[peer.ID]map[consent.ID]bool
	writers map[peer.ID]bool
}

func (a *testAuth) MayRead(remote peer.ID, author consent.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readers[remote][author]
}

func (a *testAuth) MayWrite(remote peer.ID, e *consent.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.writers[remote] {
		return nil
	}
	return fmt.Errorf("%w: this peer does not serve that feed", ErrNotAuthorised)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fetchRaw asks p for author's feed from seq 1 over a raw sync stream.
func fetchRaw(t *testing.T, n *node, client host.Host, author consent.ID) batch {
	t.Helper()
	str, err := client.NewStream(ctxT(t, wait), n.h.ID(), SyncID)
	if err != nil {
		t.Fatal(err)
	}
	defer str.Close()
	if err := wire.Write(str, syncRequest{Op: opFetch, Author: author, From: 1, Limit: 16}); err != nil {
		t.Fatal(err)
	}
	var b batch
	if err := wire.Read(str, bufio.NewReader(str), maxBatchFrame, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// With an Authoriser, heads list only the feeds the remote may read, a
// remote that may read none is refused, a fetch of a feed it may not read
// is refused, and a push it may not make is acked refused and not stored;
// every refusal is counted, and logged once a minute per remote without
// naming the feed's author.
func TestAuthoriserRefusals(t *testing.T) {
	alice, bob := testSigner(t, "alice"), testSigner(t, "bob")
	auth := &testAuth{readers: map[peer.ID]map[consent.ID]bool{}, writers: map[peer.ID]bool{}}
	var logs syncBuffer
	n := newNode(t, WithAuthoriser(auth), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	aliceFeed := appendN(t, n.l, alice, 3)
	appendN(t, n.l, bob, 2)

	reader, stranger := newHost(t), newHost(t)
	auth.readers[reader.ID()] = map[consent.ID]bool{alice.ID(): true}
	auth.writers[reader.ID()] = true
	connect(t, reader, n.h)
	connect(t, stranger, n.h)

	// Heads: the reader learns of alice's feed only.
	got, err := Pull(ctxT(t, wait), reader, n.h.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(aliceFeed) {
		t.Fatalf("reader pulled %d entries, want alice's %d", len(got), len(aliceFeed))
	}
	for _, e := range got {
		if e.Author != alice.ID() {
			t.Fatalf("reader got an entry of %s", e.Author.Short())
		}
	}
	// A fetch of bob's feed is refused.
	if b := fetchRaw(t, n, reader, bob.ID()); b.Code != CodeNotAuthorised || len(b.Entries) != 0 {
		t.Fatalf("fetch of a feed the reader may not read: code %q, %d entries", b.Code, len(b.Entries))
	}

	// The stranger may read nothing: heads refused with a typed error.
	_, err = Pull(ctxT(t, wait), stranger, n.h.ID(), nil)
	var re *RefusedError
	if !errors.Is(err, ErrNotAuthorised) || !errors.As(err, &re) || re.Code != CodeNotAuthorised {
		t.Fatalf("stranger's pull: %v, want a refusal %q", err, CodeNotAuthorised)
	}
	if b := fetchRaw(t, n, stranger, alice.ID()); b.Code != CodeNotAuthorised {
		t.Fatalf("stranger's fetch: code %q", b.Code)
	}

	// Push: the stranger's entries are refused and not stored.
	carol := testSigner(t, "carol")
	feed := makeFeed(t, carol, 2)
	acks, err := Push(ctxT(t, wait), stranger, n.h.ID(), feed)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		if a.Status != AckRefused || a.Code != CodeNotAuthorised {
			t.Fatalf("ack %d: %+v, want refused %q", i, a, CodeNotAuthorised)
		}
		if err := a.Err(stranger.ID()); !errors.Is(err, ErrNotAuthorised) {
			t.Fatalf("ack %d: Err() = %v, want ErrNotAuthorised", i, err)
		}
	}
	if n.head(carol.ID()).Seq != 0 || n.s.GapStats().Entries != 0 {
		t.Fatal("a refused entry was stored")
	}
	// The reader may write: its push is taken.
	if acks, err := Push(ctxT(t, wait), reader, n.h.ID(), feed); err != nil || acks[1].Status != AckAccepted {
		t.Fatalf("reader's push: %+v, %v", acks, err)
	}

	st := n.s.Stats()
	// reader's fetch, stranger's heads and fetch, 2 pushed.
	if st.NotAuthorised != 5 {
		t.Errorf("Stats.NotAuthorised = %d, want 5", st.NotAuthorised)
	}
	out := logs.String()
	if c := strings.Count(out, "not authorised"); c != 2 {
		t.Errorf("%d refusal lines, want one per remote:\n%s", c, out)
	}
	for _, id := range []consent.ID{alice.ID(), bob.ID(), carol.ID()} {
		if strings.Contains(out, id.Short()) || strings.Contains(out, string(id)[:12]) {
			t.Errorf("the log names %s in clear:\n%s", id.Short(), out)
		}
	}
}

// Entries a sync brings in are stored only when the Authoriser allows.
func TestAuthoriserRefusesSyncedEntries(t *testing.T) {
	alice := testSigner(t, "alice")
	src := newNode(t)
	appendN(t, src.l, alice, 3)
	auth := &testAuth{writers: map[peer.ID]bool{}}
	dst := newNode(t, WithAuthoriser(auth))
	connect(t, dst.h, src.h)
	// The sync on connect brings nothing in.
	eventually(t, wait, "on-connect sync", func() bool { return dst.s.Stats().Syncs > 0 && dst.s.syncBusy.Load() == 0 })
	if dst.head(alice.ID()).Seq != 0 {
		t.Fatal("a synced entry the Authoriser refused was stored")
	}
	if dst.s.Stats().NotAuthorised == 0 {
		t.Error("the refusal was not counted")
	}
	auth.mu.Lock()
	auth.writers[src.h.ID()] = true
	auth.mu.Unlock()
	if _, err := dst.s.SyncWith(ctxT(t, wait), src.h.ID()); err != nil {
		t.Fatal(err)
	}
	if dst.head(alice.ID()).Seq != 3 {
		t.Fatalf("head %d after an allowed sync, want 3", dst.head(alice.ID()).Seq)
	}
}
