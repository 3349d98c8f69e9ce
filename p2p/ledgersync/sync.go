package ledgersync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// SyncID is the anti-entropy protocol: heads, then missing entries.
const SyncID protocol.ID = "/medwallet/ledger-sync/1.0.0"

// SyncService serves SyncID and pulls from peers: on every connection to
// a peer that speaks SyncID, on request (a gossip gap, a new mesh link),
// and periodically.
type SyncService struct {
	h    host.Host
	in   *Ingest
	cfg  config
	log  *slog.Logger
	life *life

	evsub    event.Subscription
	syncQ    chan peer.ID
	syncBusy atomic.Int64 // syncs queued or running
	queuedMu sync.Mutex
	queued   map[peer.ID]bool
	syncLim  limiter
	pub      atomic.Pointer[Republisher] // gossips what a sync brought in; may be unset
}

// GossipOn hands every entry a sync accepts from now on to r (the gossip
// service), as a push does. A peer that ignored a gossiped entry because
// its predecessor had not come yet fetches both by sync, and gossip
// forwards neither: without this, peers downstream would wait for their
// own periodic sync to learn of them.
func (s *SyncService) GossipOn(r Republisher) { s.pub.Store(&r) }

// NewSyncService registers the SyncID handler on h for in's ledger and
// starts syncing with the peers h is and will be connected to;
// WithSyncInterval applies.
func NewSyncService(h host.Host, in *Ingest, opts ...Option) (*SyncService, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &SyncService{
		h: h, in: in, cfg: cfg, log: in.log, life: newLife(cfg.parent),
		syncQ:   make(chan peer.ID, syncQueue),
		queued:  make(map[peer.ID]bool),
		syncLim: newLimiter(cfg.isKnown),
	}
	s.evsub, err = h.EventBus().Subscribe([]any{
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerProtocolsUpdated),
	})
	if err != nil {
		return nil, fmt.Errorf("ledgersync: subscribe to peer events: %w", err)
	}
	h.SetStreamHandler(SyncID, s.handleSync)
	s.life.goroutine(s.watchPeers)
	for range syncWorkers {
		s.life.goroutine(s.syncWorker)
	}
	if cfg.syncInterval > 0 {
		s.life.goroutine(s.periodicSync)
	}
	s.syncConnected()
	return s, nil
}

// syncConnected queues a sync with every connected peer that speaks SyncID.
func (s *SyncService) syncConnected() {
	for _, p := range s.h.Network().Peers() {
		if s.speaksSync(p) {
			s.RequestSync(p)
		}
	}
}

// Close removes the handler, resets open streams and waits for every
// goroutine the service started; it is safe to call twice.
func (s *SyncService) Close() error {
	if !s.life.close() {
		return nil
	}
	s.h.RemoveStreamHandler(SyncID)
	s.life.end()
	if s.evsub != nil {
		_ = s.evsub.Close()
	}
	return nil
}

// watchPeers starts a sync with every peer identified as speaking SyncID.
func (s *SyncService) watchPeers() {
	for {
		select {
		case <-s.life.ctx.Done():
			return
		case ev, ok := <-s.evsub.Out():
			if !ok {
				return
			}
			switch ev := ev.(type) {
			case event.EvtPeerIdentificationCompleted:
				if slices.Contains(ev.Protocols, SyncID) {
					s.RequestSync(ev.Peer)
				}
			case event.EvtPeerProtocolsUpdated:
				if slices.Contains(ev.Added, SyncID) {
					s.RequestSync(ev.Peer)
				}
			}
		}
	}
}

func (s *SyncService) speaksSync(p peer.ID) bool {
	ok, err := s.h.Peerstore().SupportsProtocols(p, SyncID)
	return err == nil && len(ok) > 0
}

// RequestSync queues a pull sync with p unless one is already queued. A
// full queue drops the request: periodic sync catches up.
func (s *SyncService) RequestSync(p peer.ID) {
	if p == s.h.ID() {
		return
	}
	s.queuedMu.Lock()
	defer s.queuedMu.Unlock()
	if s.queued[p] {
		return
	}
	select {
	case s.syncQ <- p:
		s.queued[p] = true
		s.syncBusy.Add(1)
	default:
	}
}

func (s *SyncService) syncWorker() {
	for {
		select {
		case <-s.life.ctx.Done():
			return
		case p := <-s.syncQ:
			s.queuedMu.Lock()
			delete(s.queued, p)
			s.queuedMu.Unlock()
			ctx, cancel := context.WithTimeout(s.life.ctx, SyncStreamLife)
			n, err := s.syncWith(ctx, p)
			cancel()
			s.syncBusy.Add(-1)
			if err != nil {
				if s.life.ctx.Err() == nil {
					s.log.Debug("sync failed", "peer", shortPeer(p), "err", err)
				}
				continue
			}
			if n > 0 {
				s.log.Debug("synced", "peer", shortPeer(p), "accepted", n)
			}
		}
	}
}

func (s *SyncService) periodicSync() {
	t := time.NewTimer(jitter(s.cfg.syncInterval))
	defer t.Stop()
	known := false
	for {
		select {
		case <-s.life.ctx.Done():
			return
		case <-t.C:
		}
		// Every other round with a known peer, when one is connected,
		// so that many strangers connected cannot crowd them out.
		known = !known
		var cands, knownCands []peer.ID
		for _, p := range s.h.Network().Peers() {
			if s.speaksSync(p) {
				cands = append(cands, p)
				if s.cfg.isKnown(p) {
					knownCands = append(knownCands, p)
				}
			}
		}
		if known && len(knownCands) > 0 {
			cands = knownCands
		}
		if len(cands) > 0 {
			s.RequestSync(cands[rand.IntN(len(cands))])
		}
		t.Reset(jitter(s.cfg.syncInterval))
	}
}

// jitter returns d ± 25%.
func jitter(d time.Duration) time.Duration {
	q := int64(d / 4)
	if q <= 0 {
		return d
	}
	return d - time.Duration(q) + time.Duration(rand.Int64N(2*q+1))
}

// maxBatchFrame bounds one batch frame: the soft budget plus one entry that
// may pass it, plus CBOR headers.
const maxBatchFrame = batchBytes + consent.MaxEntrySize + frameOverhead

// MaxPullBytes bounds the entries one Pull returns (about: bodies and
// signatures plus a fixed allowance per entry).
const MaxPullBytes = 256 << 20

// pullLimit is MaxPullBytes, lowered by tests.
var pullLimit = MaxPullBytes

// ErrPullLimit is returned by Pull, with the entries so far, when more
// than MaxPullBytes were on offer.
var ErrPullLimit = errors.New("ledgersync: pull limit reached; ingest and pull again")

// errSkipFeed, from a sink, stops fetching the current feed.
var errSkipFeed = errors.New("skip feed")

// maxSyncRequests bounds the requests on one sync stream.
const maxSyncRequests = 1 << 20

// handleSync serves SyncID: any number of heads and fetch requests, each
// answered by one frame, each under its own deadline.
func (s *SyncService) handleSync(str network.Stream) {
	s.life.guard(str, &s.syncLim, s.serveSync)
}

func (s *SyncService) serveSync(str network.Stream) {
	m := newMeter(str, SyncStreamLife, s.cfg.timeout, 0)
	r := bufio.NewReader(m)
	for range maxSyncRequests {
		if err := m.next(); err != nil {
			str.Reset()
			return
		}
		var req syncRequest
		err := wire.Read(str, r, maxRequestFrame, &req)
		if errors.Is(err, io.EOF) {
			str.Close()
			return
		}
		if err != nil {
			s.log.Debug("sync request refused", "peer", shortPeer(str.Conn().RemotePeer()), "err", err)
			str.Reset()
			return
		}
		remote := str.Conn().RemotePeer()
		switch req.Op {
		case opHeads:
			err = wire.Write(str, s.headsAfter(remote, req.After))
		case opFetch:
			var b batch
			b, err = s.fetch(remote, req.Author, req.From, req.Limit)
			if err == nil {
				err = wire.Write(str, b)
			}
			if err == nil && len(b.Entries) > 0 {
				// A pull that moves on gets a new life: a long feed is
				// never cut while it progresses.
				m.progress(SyncStreamLife)
			}
		default:
			err = fmt.Errorf("unknown sync op %d", req.Op)
		}
		if err != nil {
			s.log.Debug("sync stream failed", "peer", shortPeer(str.Conn().RemotePeer()), "err", err)
			str.Reset()
			return
		}
	}
	str.Reset()
}

// headsAfter returns the page of heads of authors sorted after `after`
// whose feeds remote may read. A remote that may read none of the feeds
// held here is refused (CodeNotAuthorised) on its first page.
func (s *SyncService) headsAfter(remote peer.ID, after consent.ID) headsPage {
	var page headsPage
	hidden := 0
	var authors []consent.ID
	s.in.l.View(func(v *consent.View) {
		all := v.Authors()
		authors = all[sort.Search(len(all), func(i int) bool { return all[i] > after }):]
	})
	// The Authoriser reads the ledger itself: ask it outside the lock.
	var readable []consent.ID
	for _, a := range authors {
		if len(readable) == headsPageSize {
			page.More = true
			break
		}
		if !s.in.mayRead(remote, a) {
			hidden++
			continue
		}
		readable = append(readable, a)
	}
	s.in.l.View(func(v *consent.View) {
		for _, a := range readable {
			h := v.Head(a)
			page.Heads = append(page.Heads, feedHead{Author: a, Seq: h.Seq, Hash: h.Hash})
		}
	})
	if after == "" && hidden > 0 && len(page.Heads) == 0 {
		s.in.notAuthorised(remote, "heads", "")
		return headsPage{Heads: []feedHead{}, Code: CodeNotAuthorised}
	}
	if page.Heads == nil {
		page.Heads = []feedHead{}
	}
	return page
}

// fetch returns consecutive entries of author's feed from seq `from`, or
// a refusal if remote may not read it.
func (s *SyncService) fetch(remote peer.ID, author consent.ID, from uint64, limit uint32) (batch, error) {
	if from == 0 {
		return batch{}, errors.New("fetch from seq 0")
	}
	if !s.in.mayRead(remote, author) {
		s.in.notAuthorised(remote, "fetch", author)
		return batch{Entries: [][]byte{}, Code: CodeNotAuthorised}, nil
	}
	s.in.n.fetches.Add(1)
	n := min(int(limit), maxBatchLen)
	var es []*consent.Entry
	var rerr error
	s.in.l.View(func(v *consent.View) {
		if n <= 0 {
			return
		}
		rerr = v.FeedFrom(author, from, func(e *consent.Entry) error {
			es = append(es, e)
			if len(es) == n {
				return errFull
			}
			return nil
		})
	})
	if rerr != nil && !errors.Is(rerr, errFull) {
		return batch{}, fmt.Errorf("fetch: %w", rerr)
	}
	b := batch{Entries: [][]byte{}}
	size := 0
	for _, e := range es {
		enc := e.Encode()
		if len(b.Entries) > 0 && size+len(enc) > batchBytes {
			break
		}
		size += len(enc)
		b.Entries = append(b.Entries, enc)
	}
	s.in.n.served.Add(uint64(len(b.Entries)))
	return b, nil
}

// hashIs reports whether v's accepted entry seq of author has hash h.
func hashIs(v *consent.View, author consent.ID, seq uint64, h consent.Hash) bool {
	got, ok := v.HashAt(author, seq)
	return ok && got == h
}

// errFull stops a feed read that has what it needs.
var errFull = errors.New("batch full")

// SyncWith pulls from p every entry of every feed that p holds beyond this
// peer's heads, and ingests them. It also fetches the entry behind any head
// of p that conflicts with a held entry, so that equivocation is recorded.
// It returns the number of entries that joined a feed.
func (s *SyncService) SyncWith(ctx context.Context, p peer.ID) (int, error) {
	if !s.life.enter() {
		return 0, ErrClosed
	}
	defer s.life.wg.Done()
	return s.syncWith(ctx, p)
}

func (s *SyncService) syncWith(ctx context.Context, p peer.ID) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.life.ctx, cancel)
	defer stop()

	n, behind := 0, 0
	var acc []*consent.Entry
	defer func() {
		if r := s.pub.Load(); r != nil && len(acc) > 0 {
			(*r).Republish(acc)
		}
	}()
	start := func(fh feedHead) (uint64, bool) {
		var from uint64
		var ok bool
		s.in.l.View(func(v *consent.View) {
			local := v.Head(fh.Author)
			switch {
			case fh.Seq > local.Seq:
				// Fetch from our own head, not after it: if p's feed forked
				// from ours, its entry there differs and the equivocation is
				// recorded, instead of every later entry failing to link.
				from, ok = max(local.Seq, 1), true
			case fh.Seq > 0 && !hashIs(v, fh.Author, fh.Seq, fh.Hash):
				from, ok = fh.Seq, true
			}
		})
		behind += btoi(ok)
		return from, ok
	}
	// stops: nothing more of this feed from p fits here (the author
	// forked, which is recorded as evidence when both entries are at hand,
	// or p sent an entry over an admission limit), or p misbehaved.
	stops := func(o outcome) bool {
		switch o {
		case outConflict, outBadChain, outRefused, outInvalid, outInternal:
			return true
		}
		return false
	}
	sink := func(es []*consent.Entry) error {
		take, skip := es, false
		for i, e := range es {
			if err := s.in.mayWrite(p, "sync", e); err != nil {
				// Not stored here: the rest of the feed neither.
				take, skip = es[:i], true
				break
			}
			if err := s.in.charge(e, len(e.Encode()), p); err != nil {
				// The author spent its budget here: the rest of its feed
				// waits for a later sync.
				s.in.n.rejected.Add(1)
				take, skip = es[:i], true
				break
			}
		}
		res, k := s.in.acceptBatch(take, stops)
		for _, r := range res[:k] {
			n += len(r.acc)
			acc = append(acc, r.acc...)
			s.in.n.synced.Add(uint64(len(r.acc)))
		}
		if k > 0 {
			switch r := res[k-1]; r.out {
			case outConflict, outBadChain, outRefused:
				return errSkipFeed
			case outInvalid:
				return fmt.Errorf("peer sent %s: %s", entryName(take[k-1]), r.reason())
			case outInternal:
				return r.err
			}
		}
		if skip {
			return errSkipFeed
		}
		return nil
	}
	err := pull(ctx, s.h, p, s.cfg.timeout, start, sink)
	if err != nil {
		s.in.n.syncErrors.Add(1)
		err = fmt.Errorf("ledgersync: sync with %s: %w", shortPeer(p), err)
		s.cfg.observeSync(p, SyncResult{Behind: behind, Accepted: n, Err: err})
		return n, err
	}
	s.in.n.syncs.Add(1)
	s.cfg.observeSync(p, SyncResult{Behind: behind, Accepted: n})
	return n, nil
}

// Pull fetches from p, over SyncID, the entries of every feed p holds
// beyond have[author] (the seq the caller holds; a missing author means
// none, so a nil map fetches everything). Entries are verified, each
// feed's are in order and chained, and the first of each feed follows the
// caller's seq. It is for light clients that run no Service.
//
// One Pull returns at most MaxPullBytes of entries: past that it returns
// what it has with ErrPullLimit, and the caller ingests them and pulls
// again from its new heads. PullBatches hands the entries over as they
// come instead, with no such limit.
func Pull(ctx context.Context, h host.Host, p peer.ID, have map[consent.ID]uint64) ([]*consent.Entry, error) {
	var out []*consent.Entry
	size := 0
	err := PullBatches(ctx, h, p, have, func(es []*consent.Entry) error {
		for _, e := range es {
			if size += len(e.Body) + len(e.Sig) + 128; size > pullLimit {
				return ErrPullLimit
			}
			out = append(out, e)
		}
		return nil
	})
	if errors.Is(err, ErrPullLimit) {
		return out, ErrPullLimit
	}
	return out, err
}

// PullBatches fetches from p what Pull does, and hands the entries to fn
// as they come, in batches (at most 256 entries of one feed, in order,
// verified and chained; the first of a feed follows the caller's seq), so
// that the caller holds one batch at a time: fn ingests it, say. An error
// from fn stops the pull and is returned (wrapped); errors.Is finds it.
// After a batch that fn took, have is not updated: the caller passes
// what it holds to the next peer's pull.
func PullBatches(ctx context.Context, h host.Host, p peer.ID, have map[consent.ID]uint64, fn func([]*consent.Entry) error) error {
	start := func(fh feedHead) (uint64, bool) {
		seq := have[fh.Author]
		return seq + 1, fh.Seq > seq
	}
	if err := pull(ctx, h, p, DefaultStreamTimeout, start, fn); err != nil {
		if errors.Is(err, ErrPullLimit) {
			return err
		}
		return fmt.Errorf("ledgersync: pull from %s: %w", shortPeer(p), err)
	}
	return nil
}

// pull runs the client side of SyncID: page through p's heads; for each
// head that start wants, fetch from the seq it says up to the head, in
// batches, verifying every entry before handing it to sink.
func pull(ctx context.Context, h host.Host, p peer.ID, timeout time.Duration,
	start func(feedHead) (uint64, bool), sink func([]*consent.Entry) error) (err error) {
	str, err := h.NewStream(network.WithAllowLimitedConn(ctx, "medwallet ledger sync: control traffic"), p, SyncID)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	defer func() {
		if err != nil {
			str.Reset()
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
		} else {
			str.Close()
		}
	}()
	deadline := func() {
		d := time.Now().Add(timeout)
		if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
			d = cd
		}
		_ = str.SetDeadline(d)
	}
	r := bufio.NewReader(str)
	var after consent.ID
	seen := 0
	for {
		deadline()
		if err := wire.Write(str, syncRequest{Op: opHeads, After: after}); err != nil {
			return err
		}
		var page headsPage
		if err := wire.Read(str, r, maxHeadsFrame, &page); err != nil {
			return fmt.Errorf("heads: %w", err)
		}
		if page.Code != "" {
			return &RefusedError{Peer: p, Code: page.Code, Detail: "heads"}
		}
		if len(page.Heads) > headsPageSize {
			return fmt.Errorf("heads: %d in one page", len(page.Heads))
		}
		seen += len(page.Heads)
		if seen > maxAuthors {
			return fmt.Errorf("heads: more than %d feeds", maxAuthors)
		}
		for _, fh := range page.Heads {
			if fh.Author <= after {
				return errors.New("heads: not sorted")
			}
			after = fh.Author
			from, ok := start(fh)
			if !ok || from == 0 || from > fh.Seq {
				continue
			}
			if err := fetchFeed(str, r, p, deadline, fh, from, sink); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
		if len(page.Heads) == 0 {
			return errors.New("heads: empty page with more to come")
		}
	}
}

// fetchFeed fetches fh.Author's entries from seq `from` to fh.Seq, in
// batches: each batch's signatures are checked together, and the entries
// up to the first bad one go to sink before the error is returned. The
// request for the next batch goes out before a batch is checked and handed
// to sink, so the peer prepares it meanwhile: at most two batches are in
// flight.
func fetchFeed(str network.Stream, r *bufio.Reader, p peer.ID, deadline func(), fh feedHead, from uint64, sink func([]*consent.Entry) error) error {
	next := from // the first seq not yet asked for
	var limit uint32
	ask := func() error {
		limit = uint32(min(fh.Seq-next+1, maxBatchLen))
		deadline()
		return wire.Write(str, syncRequest{Op: opFetch, Author: fh.Author, From: next, Limit: limit})
	}
	if err := ask(); err != nil {
		return err
	}
	var prev consent.Hash
	for pending := true; pending; {
		pending = false
		asked, at := limit, next
		var b batch
		if err := wire.Read(str, r, maxBatchFrame, &b); err != nil {
			return fmt.Errorf("fetch %s#%d: %w", fh.Author.Short(), at, err)
		}
		if b.Code != "" {
			return &RefusedError{Peer: p, Code: b.Code, Detail: "fetch"}
		}
		if len(b.Entries) == 0 {
			return nil // the peer has less than it announced: nothing more here
		}
		if len(b.Entries) > int(asked) {
			return fmt.Errorf("fetch %s#%d: %d entries for %d asked", fh.Author.Short(), at, len(b.Entries), asked)
		}
		es := make([]*consent.Entry, 0, len(b.Entries))
		var bad error
		for _, enc := range b.Entries {
			e, err := consent.DecodeEntry(enc)
			if err != nil {
				bad = fmt.Errorf("fetch %s#%d: %w", fh.Author.Short(), next, err)
				break
			}
			if e.Author != fh.Author || e.Seq != next {
				bad = fmt.Errorf("fetch %s#%d: got %s", fh.Author.Short(), next, entryName(e))
				break
			}
			if next > from && e.Prev != prev {
				bad = fmt.Errorf("fetch %s#%d: %w", fh.Author.Short(), next, consent.ErrWrongPrev)
				break
			}
			prev = consent.HashBytes(enc)
			es = append(es, e)
			next++
		}
		if bad == nil && next <= fh.Seq {
			if err := ask(); err != nil {
				return err
			}
			pending = true
		}
		for i, err := range consent.VerifyBatch(es) {
			if err != nil {
				bad = fmt.Errorf("fetch %s#%d: %w", fh.Author.Short(), es[i].Seq, err)
				es = es[:i]
				break
			}
		}
		if len(es) > 0 {
			if err := sink(es); err != nil {
				if !errors.Is(err, errSkipFeed) {
					return err
				}
				if pending {
					// The stream goes on with other feeds: drop the
					// answer to the request already sent.
					var drop batch
					if err := wire.Read(str, r, maxBatchFrame, &drop); err != nil {
						return fmt.Errorf("fetch %s#%d: %w", fh.Author.Short(), next, err)
					}
				}
				return nil
			}
		}
		if bad != nil {
			return bad
		}
	}
	return nil
}
