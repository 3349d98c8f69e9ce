package ledgersync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/p2p/wire"
)

// Fuzz targets for every decoder of network bytes in this package: the
// push stream (offers and entry batches in, held heads and acks out), the sync stream (request
// frames in; heads and batch frames out), a gossip message, and a
// sequence of entries through the ingest path. Each target's seed corpus
// is in testdata/fuzz/FuzzXxx, made of real encoded messages by
// TestWriteFuzzSeeds ($MEDWALLET_WRITE_FUZZ_SEEDS=1 rewrites it).

// fuzzFixture is the ledger state every target starts from: two entries
// of alice's feed held (more of it, and a fork of it, are offered), and a
// proof entry by a witness against mallory, who signed two entries at
// seq 1 (neither is held).
type fuzzFixture struct {
	alice, witness, peer *consent.KeySigner
	feed                 []*consent.Entry // alice's, 5 entries
	fork                 *consent.Entry   // alice's other seq 3
	mallory              []*consent.Entry // two entries at seq 1
	proof                *consent.Entry   // the witness's proof against mallory
	held                 []*consent.Entry // what the ledger starts with
}

func newFuzzFixture(tb testing.TB) *fuzzFixture {
	tb.Helper()
	x := &fuzzFixture{alice: testSigner(tb, "alice"), witness: testSigner(tb, "witness"), peer: testSigner(tb, "peer")}
	x.feed = makeFeed(tb, x.alice, 5)
	x.fork = signRaw(tb, x.alice, &consent.Entry{Seq: 3, Prev: x.feed[1].Hash(), Time: x.feed[1].Time + 1, Kind: consent.KindAnchor,
		Body: mustMarshal(tb, &consent.AnchorBody{Record: "rec-fork", Manifest: consent.HashBytes([]byte("fork"))})})
	mallory := testSigner(tb, "mallory")
	for _, rec := range []string{"rec-m1", "rec-m2"} {
		x.mallory = append(x.mallory, signRaw(tb, mallory, &consent.Entry{Seq: 1, Time: t0.Unix(), Kind: consent.KindAnchor,
			Body: mustMarshal(tb, &consent.AnchorBody{Record: rec, Manifest: consent.HashBytes([]byte(rec))})}))
	}
	p, err := consent.NewEquivocationProof(x.mallory[0], x.mallory[1])
	if err != nil {
		tb.Fatal(err)
	}
	if x.proof, err = consent.NewEntry(x.witness, consent.Head{}, t0, consent.KindEquivocation, p); err != nil {
		tb.Fatal(err)
	}
	x.held = []*consent.Entry{x.feed[0], x.feed[1], x.proof}
	return x
}

// ingest returns a fresh Ingest over a memory ledger holding x.held, with
// a small max entry size so the size limit is within the fuzzer's reach.
func (x *fuzzFixture) ingest(tb testing.TB, st consent.Store) *Ingest {
	tb.Helper()
	l, err := consent.OpenLedger(st)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range x.held {
		if _, err := l.Ingest(e); err != nil {
			tb.Fatal(err)
		}
	}
	in, err := NewIngest(l, WithMaxMessageSize(4096), WithClock(func() time.Time { return t0.Add(time.Hour) }))
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// scoped is a frame reader's stream with no resource limits; it writes
// nowhere. Only Scope and Write are called.
type scoped struct{ network.Stream }

func (scoped) Scope() network.StreamScope  { return &network.NullScope{} }
func (scoped) Write(p []byte) (int, error) { return len(p), nil }

func (s scoped) readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	b, release, err := wire.ReadFrame(s, r, limit)
	if err != nil {
		return nil, err
	}
	release()
	return b, nil
}

// frames encodes bs as a stream of frames.
func frames(bs ...[]byte) []byte {
	var buf bytes.Buffer
	for _, b := range bs {
		if err := wire.WriteFrame(&buf, b); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

// held reports whether in's ledger holds e in its feed.
func held(in *Ingest, e *consent.Entry) bool {
	h := e.Hash()
	var ok bool
	in.l.View(func(v *consent.View) {
		if f := v.Feed(e.Author); uint64(len(f)) >= e.Seq && e.Seq > 0 {
			ok = f[e.Seq-1].Hash() == h
		}
	})
	return ok
}

// FuzzPushRequest: the server side of a push stream. An offer is answered
// with one held head per offered head; a batch gets one ack per entry,
// naming its hash; an accepted entry is in its feed; an equivocating
// author's entry is never taken in; answers fit their frame limits.
func FuzzPushRequest(f *testing.F) {
	x := newFuzzFixture(f)
	for _, s := range x.seeds()["FuzzPushRequest"] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := x.ingest(t, consent.NewMemStore())
		defer in.Close()
		s := &PushService{in: in, log: in.log, cfg: in.cfg}
		r := bufio.NewReader(bytes.NewReader(b))
		for range 16 {
			fr, err := scoped{}.readFrame(r, s.maxPushFrame())
			if err != nil {
				return
			}
			ans, err := s.serveRequest("", fr, &meter{})
			if err != nil {
				continue
			}
			var req pushRequest
			if err := consent.Unmarshal(fr, &req); err != nil {
				t.Fatalf("answered a request that does not decode: %v", err)
			}
			limit := maxOfferFrame
			switch a := ans.(type) {
			case offerAnswer:
				if len(a.Held) != len(req.Heads) {
					t.Fatalf("%d held heads for %d offered", len(a.Held), len(req.Heads))
				}
			case pushAcks:
				limit = maxPushAcksFrame
				if len(a.Acks) != len(req.Entries) {
					t.Fatalf("%d acks for %d entries", len(a.Acks), len(req.Entries))
				}
				for i, ack := range a.Acks {
					enc := req.Entries[i]
					if ack.Hash != consent.HashBytes(enc) || len(ack.Reason) > maxReasonLen {
						t.Fatalf("ack %+v for a %d-byte entry", ack, len(enc))
					}
					e, derr := consent.DecodeEntry(enc)
					switch AckStatus(ack.Status) {
					case AckAccepted, AckDuplicate:
						if derr != nil || !held(in, e) {
							t.Fatalf("%v but not held (%v)", AckStatus(ack.Status), derr)
						}
						if e.Author == x.mallory[0].Author {
							t.Fatal("an equivocating author's entry was taken in")
						}
					case AckPending, AckRejected:
					default:
						t.Fatalf("status %v", AckStatus(ack.Status))
					}
				}
			default:
				t.Fatalf("answer %T", ans)
			}
			if enc, err := consent.Marshal(ans); err != nil || len(enc) > limit {
				t.Fatalf("answer of %d bytes over its limit %d (%v)", len(enc), limit, err)
			}
		}
	})
}

// FuzzPushResponse: the client side of a push stream: offer answers and
// ack batches decode strictly or fail, never panic.
func FuzzPushResponse(f *testing.F) {
	x := newFuzzFixture(f)
	for _, s := range x.seeds()["FuzzPushResponse"] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var oa offerAnswer
		if err := wire.Read(scoped{}, r, maxOfferFrame, &oa); err != nil {
			return
		}
		for range 16 {
			var pa pushAcks
			if err := wire.Read(scoped{}, r, maxPushAcksFrame, &pa); err != nil {
				return
			}
			for _, wa := range pa.Acks {
				a := Ack{Hash: wa.Hash, Status: AckStatus(wa.Status), Reason: wa.Reason, Code: wa.Code}
				_ = a.Status.String()
				_ = a.Err("")
			}
			if again, err := consent.Marshal(pa); err != nil || len(again) > maxPushAcksFrame {
				t.Fatalf("decoded acks do not re-encode within the frame limit: %v", err)
			}
		}
	})
}

// FuzzSyncRequest: the server side of a sync stream: whatever the
// requests, answers stay within their frame limits and a batch holds
// consecutive entries of the feed asked for.
func FuzzSyncRequest(f *testing.F) {
	x := newFuzzFixture(f)
	for _, s := range x.seeds()["FuzzSyncRequest"] {
		f.Add(s)
	}
	in := x.ingest(f, consent.NewMemStore())
	f.Cleanup(func() { in.Close() })
	s := &SyncService{in: in, log: in.log}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for range 16 {
			var req syncRequest
			if err := wire.Read(scoped{}, r, maxRequestFrame, &req); err != nil {
				return
			}
			var ans any
			switch req.Op {
			case opHeads:
				page := s.headsAfter("", req.After)
				for _, h := range page.Heads {
					if h.Author <= req.After {
						t.Fatalf("head of %s after %s", h.Author, req.After)
					}
				}
				ans = page
			case opFetch:
				bt, err := s.fetch("", req.Author, req.From, req.Limit)
				if err != nil {
					continue
				}
				if len(bt.Entries) > int(req.Limit) || len(bt.Entries) > maxBatchLen {
					t.Fatalf("%d entries for a limit of %d", len(bt.Entries), req.Limit)
				}
				for i, enc := range bt.Entries {
					e, err := consent.DecodeEntry(enc)
					if err != nil || e.Author != req.Author || e.Seq != req.From+uint64(i) {
						t.Fatalf("batch entry %d: %v", i, err)
					}
				}
				ans = bt
			default:
				return
			}
			enc, err := consent.Marshal(ans)
			if err != nil || len(enc) > maxBatchFrame {
				t.Fatalf("answer of %d bytes: %v", len(enc), err)
			}
		}
	})
}

// FuzzSyncResponse: the client side of a sync stream: a heads page, then
// batches, read and verified as a pull does and ingested as SyncWith does.
// Whatever the peer sends, nothing it sends joins a feed unless it
// verifies and chains, and nothing of an equivocating author joins.
func FuzzSyncResponse(f *testing.F) {
	x := newFuzzFixture(f)
	for _, s := range x.seeds()["FuzzSyncResponse"] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := x.ingest(t, consent.NewMemStore())
		defer in.Close()
		r := bufio.NewReader(bytes.NewReader(b))
		var page headsPage
		if err := wire.Read(scoped{}, r, maxHeadsFrame, &page); err != nil {
			return
		}
		stops := func(o outcome) bool { return o == outConflict || o == outRefused || o == outBadChain }
		sink := func(es []*consent.Entry) error {
			for _, e := range es {
				if consent.VerifyEntry(e) != nil {
					t.Fatal("an entry that does not verify reached the sink")
				}
			}
			res, k := in.acceptBatch(es, stops)
			for _, r := range res[:k] {
				for _, a := range r.acc {
					if a.Author == x.mallory[0].Author {
						t.Fatal("an equivocating author's entry joined a feed")
					}
				}
			}
			if k > 0 && stops(res[k-1].out) {
				return errSkipFeed
			}
			return nil
		}
		for i, fh := range page.Heads {
			if i == 4 {
				break
			}
			var from uint64 = 1
			in.l.View(func(v *consent.View) { from = max(v.Head(fh.Author).Seq, 1) })
			if from > fh.Seq || fh.Seq-from > 64 {
				continue
			}
			if err := fetchFeed(scoped{}, r, "", func() {}, fh, from, sink); err != nil {
				return
			}
		}
	})
}

// FuzzGossipMessage: the topic validator on any message: an accepted
// message is an entry now in its feed; nothing of an equivocating author
// is accepted (so nothing of it is forwarded).
func FuzzGossipMessage(f *testing.F) {
	x := newFuzzFixture(f)
	for _, s := range x.seeds()["FuzzGossipMessage"] {
		f.Add(s)
	}
	h := newHost(f)
	stranger := newHost(f).ID()
	f.Fuzz(func(t *testing.T, b []byte) {
		in := x.ingest(t, consent.NewMemStore())
		defer in.Close()
		s := &GossipService{h: h, in: in, log: in.log, pubQ: make(chan *consent.Entry, pubQueue)}
		got := s.validate(context.Background(), stranger, message(b))
		if got != pubsub.ValidationAccept {
			return
		}
		e, err := consent.DecodeEntry(b)
		if err != nil || consent.VerifyEntry(e) != nil || !held(in, e) {
			t.Fatalf("accepted a message that is not an entry now held: %v", err)
		}
		if e.Author == x.mallory[0].Author {
			t.Fatal("accepted an equivocating author's entry")
		}
	})
}

// FuzzIngest: a sequence of entry frames through the entry decoder and
// the ingest path of a ledger, as a peer does: every equivocation found is
// logged as a proof entry. The ledger reopened from its store (a restart)
// has the same feeds and the same equivocating authors.
func FuzzIngest(f *testing.F) {
	x := newFuzzFixture(f)
	for _, s := range x.seeds()["FuzzIngest"] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st := consent.NewMemStore()
		in := x.ingest(t, st)
		defer in.Close()
		r := bufio.NewReader(bytes.NewReader(b))
		for range 16 {
			fr, err := scoped{}.readFrame(r, consent.MaxEntrySize)
			if err != nil {
				break
			}
			e, err := in.decode(fr)
			if err != nil {
				continue
			}
			in.accept(e)
		}
		// Log what the ledger proved only in memory, as the peer does.
		var unlogged []*consent.EquivocationProof
		in.l.View(func(v *consent.View) {
			for _, p := range v.Proofs() {
				if len(v.ProofLogs(p.Author())) == 0 {
					unlogged = append(unlogged, p)
				}
			}
		})
		tooLarge := map[consent.ID]bool{}
		for _, p := range unlogged {
			_, err := in.LogEquivocation(x.peer, p)
			switch {
			case errors.Is(err, ErrProofTooLarge):
				tooLarge[p.Author()] = true
			case err != nil:
				t.Fatal(err)
			}
		}
		type state struct {
			heads map[consent.ID]consent.Head
			eq    map[consent.ID]bool
		}
		snap := func(l *consent.Ledger) state {
			s := state{heads: map[consent.ID]consent.Head{}, eq: map[consent.ID]bool{}}
			l.View(func(v *consent.View) {
				for _, a := range v.Authors() {
					s.heads[a] = v.Head(a)
				}
				for _, p := range v.Proofs() {
					s.eq[p.Author()] = true
				}
			})
			return s
		}
		before := snap(in.l)
		again, err := consent.OpenLedger(st)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		after := snap(again)
		if fmt.Sprint(before.heads) != fmt.Sprint(after.heads) {
			t.Fatalf("heads changed across a restart:\n%v\n%v", before.heads, after.heads)
		}
		for a := range before.eq {
			// A proof too large to log is the one thing a restart forgets.
			if !after.eq[a] && !tooLarge[a] {
				t.Fatalf("the restart forgot that %s equivocated", a.Short())
			}
		}
	})
}

// seeds returns each target's seed inputs, made of real encodings.
func (x *fuzzFixture) seeds() map[string][][]byte {
	enc := func(es ...*consent.Entry) [][]byte {
		var out [][]byte
		for _, e := range es {
			out = append(out, e.Encode())
		}
		return out
	}
	acks := func(as ...wireAck) []byte { return mustMarshalAny(pushAcks{Acks: as}) }
	push := func(es ...*consent.Entry) []byte {
		return mustMarshalAny(pushRequest{Op: pushOpEntries, Entries: enc(es...)})
	}
	offer := func(head *consent.Entry) []byte {
		return mustMarshalAny(pushRequest{Op: pushOpOffer, Heads: []feedHead{{Author: head.Author, Seq: head.Seq, Hash: head.Hash()}}})
	}
	req := func(r syncRequest) []byte { return mustMarshalAny(r) }
	// What a peer holding alice's whole feed answers to a pull.
	heads := mustMarshalAny(headsPage{Heads: []feedHead{{Author: x.alice.ID(), Seq: 5, Hash: x.feed[4].Hash()}}})
	fetched := mustMarshalAny(batch{Entries: enc(x.feed[1:]...)})
	forked := mustMarshalAny(batch{Entries: enc(x.feed[1], x.fork)})
	return map[string][][]byte{
		"FuzzPushRequest": {
			frames(offer(x.feed[4]), push(x.feed[2], x.feed[3], x.feed[4])),
			frames(push(x.feed[3], x.feed[2])),
			frames(offer(x.fork), push(x.fork, x.feed[2])),
			frames(push(x.mallory[0])),
			frames(mustMarshalAny(pushRequest{Op: pushOpEntries, Entries: [][]byte{[]byte("not an entry")}})),
			frames([]byte("not a request")),
		},
		"FuzzPushResponse": {
			frames(mustMarshalAny(offerAnswer{Held: []heldHead{{Seq: 2, Hash: x.feed[1].Hash()}}}),
				acks(wireAck{Hash: x.feed[2].Hash(), Status: uint8(AckAccepted)})),
			frames(mustMarshalAny(offerAnswer{Held: []heldHead{{Seq: 5, Hash: x.feed[4].Hash(), Has: true}}}),
				acks(wireAck{Hash: x.fork.Hash(), Status: uint8(AckRejected), Reason: "equivocation: another entry holds this author and seq"})),
			frames(mustMarshalAny(offerAnswer{Held: []heldHead{{}}}),
				acks(wireAck{Hash: x.feed[4].Hash(), Status: uint8(AckPending)}, wireAck{Hash: x.feed[3].Hash(), Status: uint8(AckDuplicate)})),
			frames(mustMarshalAny(offerAnswer{Held: []heldHead{{}}}),
				acks(wireAck{Hash: x.feed[0].Hash(), Status: uint8(AckRefused), Code: CodeNotAuthorised, Reason: "not authorised"})),
		},
		"FuzzSyncRequest": {
			frames(req(syncRequest{Op: opHeads})),
			frames(req(syncRequest{Op: opHeads}), req(syncRequest{Op: opFetch, Author: x.alice.ID(), From: 1, Limit: 2})),
			frames(req(syncRequest{Op: opFetch, Author: x.witness.ID(), From: 1, Limit: maxBatchLen})),
			frames(req(syncRequest{Op: opHeads, After: x.alice.ID()})),
		},
		"FuzzSyncResponse": {
			frames(heads, fetched),
			frames(heads, forked),
			frames(mustMarshalAny(headsPage{Heads: []feedHead{{Author: x.mallory[0].Author, Seq: 1, Hash: x.mallory[0].Hash()}}}),
				mustMarshalAny(batch{Entries: enc(x.mallory[0])})),
			frames(mustMarshalAny(headsPage{Heads: []feedHead{}, Code: CodeNotAuthorised})),
			frames(heads, mustMarshalAny(batch{Entries: [][]byte{}, Code: CodeNotAuthorised})),
		},
		"FuzzGossipMessage": enc(x.feed[2], x.feed[3], x.fork, x.mallory[0], x.proof),
		"FuzzIngest": {
			frames(enc(x.feed[2], x.fork, x.feed[3])...),
			frames(enc(x.feed[4], x.feed[3], x.feed[2])...),
			frames(enc(x.feed[3], x.fork, x.feed[2])...),
			frames(enc(x.mallory[1], x.feed[2])...),
		},
	}
}

func mustMarshalAny(v any) []byte {
	b, err := consent.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestWriteFuzzSeeds checks that the checked-in corpora under
// testdata/fuzz hold every seed (testutil.FuzzSeeds rewrites them with
// $MEDWALLET_WRITE_FUZZ_SEEDS set).
func TestWriteFuzzSeeds(t *testing.T) {
	x := newFuzzFixture(t)
	for target, seeds := range x.seeds() {
		named := map[string][]byte{}
		for i, s := range seeds {
			named["seed-"+strconv.Itoa(i)] = s
		}
		testutil.FuzzSeeds(t, target, named)
	}
}
