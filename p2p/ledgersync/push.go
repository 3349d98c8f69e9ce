package ledgersync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// PushID is the light-client protocol: heads offered, then the entries
// the peer lacks in batches, one ack per entry.
const PushID protocol.ID = "/medwallet/ledger-push/2.0.0"

// Republisher gossips the entries a push brought in: *GossipService is one.
type Republisher interface {
	Republish(es []*consent.Entry)
}

// PushService serves PushID: light clients outside the gossip mesh push
// entries, the service ingests each into in's ledger and acks it.
type PushService struct {
	h       host.Host
	in      *Ingest
	cfg     config
	log     *slog.Logger
	life    *life
	pub     Republisher // may be nil
	pushLim limiter
}

// NewPushService registers the PushID handler on h for in's ledger; pub,
// if not nil, gossips every entry a push added. WithMaxMessageSize applies.
func NewPushService(h host.Host, in *Ingest, pub Republisher, opts ...Option) (*PushService, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &PushService{h: h, in: in, cfg: cfg, log: in.log, life: newLife(cfg.parent), pub: pub,
		pushLim: newLimiter(cfg.isKnown)}
	h.SetStreamHandler(PushID, s.handlePush)
	return s, nil
}

// Close removes the handler, resets open streams and waits for their
// handlers; it is safe to call twice.
func (s *PushService) Close() error {
	if !s.life.close() {
		return nil
	}
	s.h.RemoveStreamHandler(PushID)
	s.life.end()
	return nil
}

// republish hands entries to the Republisher, if any.
func (s *PushService) republish(es []*consent.Entry) {
	if s.pub != nil && len(es) > 0 {
		s.pub.Republish(es)
	}
}

// AckStatus is what a peer did with one pushed entry.
type AckStatus uint8

// Ack statuses. Numbers are part of the wire format.
const (
	AckAccepted  AckStatus = 1 // joined its feed; gossiped to the network
	AckDuplicate AckStatus = 2 // the peer already held it
	AckPending   AckStatus = 3 // held until its predecessor arrives: push the feed from the peer's head
	AckRejected  AckStatus = 4 // refused; Reason says why
	AckRefused   AckStatus = 5 // not stored: the peer's policy refused it; Code says why (CodeNotAuthorised)
)

func (a AckStatus) String() string {
	switch a {
	case AckAccepted:
		return "accepted"
	case AckDuplicate:
		return "duplicate"
	case AckPending:
		return "pending"
	case AckRejected:
		return "rejected"
	case AckRefused:
		return "refused"
	}
	return fmt.Sprintf("ack(%d)", uint8(a))
}

// Ack answers one pushed entry. Hash is the SHA-256 of the bytes pushed
// (the entry hash when they decode).
type Ack struct {
	Hash   consent.Hash `json:"hash"`
	Status AckStatus    `json:"status"`
	Reason string       `json:"reason,omitempty"` // for rejections; never holds entry bodies
	Code   string       `json:"code,omitempty"`   // for refusals: CodeNotAuthorised
}

// Err is nil if the peer took the entry (accepted, or held it already),
// else an error naming the entry and the peer p that sent the ack; a
// refusal is a *RefusedError (errors.Is ErrNotAuthorised for its code).
func (a Ack) Err(p peer.ID) error {
	switch a.Status {
	case AckAccepted, AckDuplicate:
		return nil
	case AckRefused:
		return fmt.Errorf("entry %s: %w", a.Hash.String()[:12], &RefusedError{Peer: p, Code: a.Code, Detail: a.Reason})
	}
	return fmt.Errorf("peer %s: entry %s: %s %s", p.ShortString(), a.Hash.String()[:12], a.Status, a.Reason)
}

// handlePush serves PushID: offers and entry batches in, one answer out
// per frame, until the client closes its side.
func (s *PushService) handlePush(str network.Stream) {
	s.life.guard(str, &s.pushLim, s.servePush)
}

// maxPushFrame bounds one request frame of a push: a batch of entries.
func (s *PushService) maxPushFrame() int {
	return pushBatchBytes + s.cfg.maxMsgSize + frameOverhead
}

func (s *PushService) servePush(str network.Stream) {
	remote := str.Conn().RemotePeer()
	m := newMeter(str, PushStreamLife, s.cfg.timeout, MinPushRate)
	r := bufio.NewReader(m)
	for range maxPushRequests {
		if err := m.next(); err != nil {
			s.log.Debug("push stream reset", "peer", shortPeer(remote), "err", err)
			str.Reset()
			return
		}
		b, rel, err := wire.ReadFrame(str, r, s.maxPushFrame())
		if errors.Is(err, io.EOF) {
			str.Close()
			return
		}
		if err != nil {
			s.log.Debug("push refused", "peer", shortPeer(remote), "err", err)
			s.in.n.rejected.Add(1)
			str.Reset()
			return
		}
		var ans any
		ans, err = s.serveRequest(remote, b, m)
		rel()
		if err == nil {
			err = wire.Write(str, ans)
		}
		if err != nil {
			s.log.Debug("push stream reset", "peer", shortPeer(remote), "err", err)
			str.Reset()
			return
		}
	}
	str.Reset()
}

// serveRequest answers one push request frame: an offer of heads, or a
// batch of entries. An error resets the stream.
func (s *PushService) serveRequest(remote peer.ID, b []byte, m *meter) (any, error) {
	var req pushRequest
	if err := consent.Unmarshal(b, &req); err != nil {
		s.in.n.rejected.Add(1)
		return nil, fmt.Errorf("decoding a push request: %w", err)
	}
	switch req.Op {
	case pushOpOffer:
		if len(req.Heads) == 0 || len(req.Heads) > maxOfferHeads || len(req.Entries) > 0 {
			return nil, fmt.Errorf("offer of %d heads", len(req.Heads))
		}
		return s.offer(remote, req.Heads), nil
	case pushOpEntries:
		if len(req.Entries) == 0 || len(req.Entries) > maxPushBatch || len(req.Heads) > 0 {
			return nil, fmt.Errorf("batch of %d entries", len(req.Entries))
		}
		for _, enc := range req.Entries {
			if len(enc) > s.cfg.maxMsgSize {
				s.in.n.rejected.Add(1)
				return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrEntryTooLarge, len(enc), s.cfg.maxMsgSize)
			}
		}
		s.in.n.pushBatches.Add(1)
		s.in.n.pushEntries.Add(uint64(len(req.Entries)))
		acks := s.pushBatch(remote, req.Entries)
		ans := pushAcks{Acks: make([]wireAck, len(acks))}
		progress := false
		for i, a := range acks {
			ans.Acks[i] = wireAck{Hash: a.Hash, Status: uint8(a.Status), Reason: a.Reason, Code: a.Code}
			progress = progress || a.Status == AckAccepted || a.Status == AckDuplicate || a.Status == AckPending
		}
		if progress {
			// A push that moves on gets a new life: a long feed never
			// times out while it progresses.
			m.progress(PushStreamLife)
		}
		return ans, nil
	}
	return nil, fmt.Errorf("unknown push op %d", req.Op)
}

// offer answers the client's heads with what this peer holds of each
// author's feed: nothing of a feed the remote may not read (the
// Authoriser), so that an offer tells a stranger nothing; its entries then
// meet the Authoriser one by one.
func (s *PushService) offer(remote peer.ID, heads []feedHead) offerAnswer {
	ans := offerAnswer{Held: make([]heldHead, len(heads))}
	// The Authoriser reads the ledger itself: ask it outside the lock.
	hidden := make([]bool, len(heads))
	for i, fh := range heads {
		hidden[i] = !s.in.mayRead(remote, fh.Author)
	}
	s.in.l.View(func(v *consent.View) {
		for i, fh := range heads {
			if hidden[i] {
				continue
			}
			h := v.Head(fh.Author)
			ans.Held[i] = heldHead{Seq: h.Seq, Hash: h.Hash}
			if fh.Seq >= 1 && fh.Seq <= h.Seq {
				h, _ := v.HashAt(fh.Author, fh.Seq)
				ans.Held[i].Has = h == fh.Hash
			}
		}
	})
	return ans
}

// pushBatch ingests one batch of pushed entries and acks each: the
// entries are checked (decodeBatch: signatures together where no budget
// applies), then those that extend their feeds join the ledger together
// (acceptBatch: one store transaction).
func (s *PushService) pushBatch(remote peer.ID, encs [][]byte) []Ack {
	acks := make([]Ack, len(encs))
	es, errs := s.in.decodeBatch(encs, remote, "push")
	var ok []*consent.Entry
	var at []int
	for i, b := range encs {
		acks[i].Hash = consent.HashBytes(b)
		switch err := errs[i]; {
		case errors.Is(err, ErrRecoveryCap):
			acks[i].Status, acks[i].Code, acks[i].Reason = AckRefused, CodeRecoveryCap, clip(err.Error())
		case errors.Is(err, ErrNotAuthorised):
			acks[i].Status, acks[i].Code, acks[i].Reason = AckRefused, CodeNotAuthorised, clip(err.Error())
		case err != nil:
			s.in.n.rejected.Add(1)
			acks[i].Status, acks[i].Reason = AckRejected, clip(err.Error())
			s.log.Debug("push refused", "peer", shortPeer(remote), "err", err)
		default:
			ok = append(ok, es[i])
			at = append(at, i)
		}
	}
	res, _ := s.in.acceptBatch(ok, nil)
	var acc []*consent.Entry
	for j, r := range res {
		ack := &acks[at[j]]
		switch r.out {
		case outAccepted:
			ack.Status = AckAccepted
			acc = append(acc, r.acc...)
		case outDuplicate:
			ack.Status = AckDuplicate
		case outPending:
			ack.Status = AckPending
		default:
			ack.Status, ack.Reason = AckRejected, clip(r.reason())
			if r.out == outInternal {
				acc = append(acc, r.acc...)
			}
		}
		s.log.Debug("pushed", "entry", entryName(ok[j]), "ack", ack.Status)
	}
	s.republish(acc)
	return acks
}

func clip(s string) string {
	if len(s) > maxReasonLen {
		return s[:maxReasonLen]
	}
	return s
}

// maxUnofferedPush is the most entries Push sends without offering heads
// first: for a grant or a revocation, sending is cheaper than asking.
const maxUnofferedPush = 16

// Push sends entries to p over PushID and returns one Ack per entry, in
// order. Unless they are few (maxUnofferedPush), it first offers p the
// head of each author's entries and sends only those p lacks, in batches; the entries p showed it holds (its head
// is one of them, or follows from one by the hash chain) are acked
// AckDuplicate without being sent. p verifies and ingests each entry it
// gets and gossips those it accepted. Give each feed's entries in seq
// order; any number of entries may be pushed.
func Push(ctx context.Context, h host.Host, p peer.ID, entries []*consent.Entry) (acks []Ack, err error) {
	if len(entries) == 0 {
		return nil, nil
	}
	ps, err := openPush(ctx, h, p)
	if err != nil {
		return nil, err
	}
	defer ps.finish(&err)
	str, r, deadline := ps.str, ps.r, ps.deadline

	acks = make([]Ack, len(entries))
	send := make([]bool, len(entries))
	for i := range send {
		send[i] = true
	}
	if len(entries) > maxUnofferedPush {
		if send, err = offerHeads(str, r, deadline, entries); err != nil {
			return nil, err
		}
	}
	for i, e := range entries {
		if !send[i] {
			acks[i] = Ack{Hash: e.Hash(), Status: AckDuplicate}
		}
	}
	batches := pushBatches(entries, send)
	if len(batches) == 0 {
		return acks, str.CloseWrite()
	}

	// Write the batches while reading their acks, so that the peer never
	// waits for the next batch; flow control bounds what is in flight.
	werr := make(chan error, 1)
	go func() {
		for _, bt := range batches {
			encs := make([][]byte, len(bt))
			for j, i := range bt {
				encs[j] = entries[i].Encode()
			}
			if err := wire.Write(str, pushRequest{Op: pushOpEntries, Entries: encs}); err != nil {
				werr <- err
				return
			}
		}
		werr <- str.CloseWrite()
	}()
	defer func() {
		if err != nil {
			str.Reset()
		}
		if werrv := <-werr; err == nil && werrv != nil {
			err = werrv
		}
	}()
	for _, bt := range batches {
		deadline()
		var ans pushAcks
		if err := wire.Read(str, r, maxPushAcksFrame, &ans); err != nil {
			return acks, fmt.Errorf("acks: %w", err)
		}
		if len(ans.Acks) != len(bt) {
			return acks, fmt.Errorf("%d acks for a batch of %d", len(ans.Acks), len(bt))
		}
		for j, i := range bt {
			wa := ans.Acks[j]
			if wa.Hash != entries[i].Hash() {
				return acks, fmt.Errorf("ack for %s names another entry", entryName(entries[i]))
			}
			acks[i] = Ack{Hash: wa.Hash, Status: AckStatus(wa.Status), Reason: wa.Reason, Code: wa.Code}
		}
	}
	return acks, nil
}

// offerHeads offers p the head of each author's entries and returns which
// entries to send: all but those p showed it holds.
func offerHeads(str network.Stream, r *bufio.Reader, deadline func(), entries []*consent.Entry) ([]bool, error) {
	// Per author, its entries by seq; a seq given twice (a fork) makes
	// nothing of that author provably held.
	type feed struct {
		head   *consent.Entry
		bySeq  map[uint64]*consent.Entry
		forked bool
	}
	feeds := map[consent.ID]*feed{}
	var authors []consent.ID
	for _, e := range entries {
		f := feeds[e.Author]
		if f == nil {
			f = &feed{bySeq: map[uint64]*consent.Entry{}}
			feeds[e.Author] = f
			authors = append(authors, e.Author)
		}
		if o, ok := f.bySeq[e.Seq]; ok && o.Hash() != e.Hash() {
			f.forked = true
		}
		f.bySeq[e.Seq] = e
		if f.head == nil || e.Seq >= f.head.Seq {
			f.head = e
		}
	}
	// held[author] is the highest seq p provably holds of the entries.
	held := make(map[consent.ID]uint64, len(authors))
	for len(authors) > 0 {
		n := min(len(authors), maxOfferHeads)
		page := authors[:n]
		authors = authors[n:]
		heads := make([]feedHead, n)
		for i, a := range page {
			hd := feeds[a].head
			heads[i] = feedHead{Author: a, Seq: hd.Seq, Hash: hd.Hash()}
		}
		deadline()
		if err := wire.Write(str, pushRequest{Op: pushOpOffer, Heads: heads}); err != nil {
			return nil, err
		}
		var ans offerAnswer
		if err := wire.Read(str, r, maxOfferFrame, &ans); err != nil {
			return nil, fmt.Errorf("offer: %w", err)
		}
		if len(ans.Held) != n {
			return nil, fmt.Errorf("offer: %d answers for %d heads", len(ans.Held), n)
		}
		for i, a := range page {
			f, hh := feeds[a], ans.Held[i]
			switch {
			case f.forked:
			case hh.Has:
				held[a] = heads[i].Seq
			case hh.Seq > 0 && hh.Seq < heads[i].Seq && f.bySeq[hh.Seq] != nil && f.bySeq[hh.Seq].Hash() == hh.Hash:
				held[a] = hh.Seq
			}
		}
	}
	// An entry is held if the hash chain links it to the held entry: walk
	// each author's chain down from there once (linear in the feed; a walk
	// per entry was quadratic, and a long feed's push stalled the stream
	// until the peer reset it).
	linked := make(map[consent.ID]map[uint64]consent.Hash, len(held))
	for a, top := range held {
		f := feeds[a]
		cur := f.bySeq[top]
		if cur == nil {
			continue
		}
		chain := map[uint64]consent.Hash{top: cur.Hash()}
		for cur.Seq > 1 {
			prev := f.bySeq[cur.Seq-1]
			if prev == nil {
				break
			}
			ph := prev.Hash()
			if cur.Prev != ph {
				break
			}
			chain[prev.Seq] = ph
			cur = prev
		}
		linked[a] = chain
	}
	send := make([]bool, len(entries))
	for i, e := range entries {
		h, ok := linked[e.Author][e.Seq]
		send[i] = !ok || h != e.Hash()
	}
	return send, nil
}

// pushBatches cuts the entries to send into batches of at most
// maxPushBatch entries and about pushBatchBytes (a batch always holds its
// first entry), as indexes into entries, in order.
func pushBatches(entries []*consent.Entry, send []bool) [][]int {
	var out [][]int
	var cur []int
	size := 0
	for i, e := range entries {
		if !send[i] {
			continue
		}
		n := len(e.Encode())
		if len(cur) > 0 && (len(cur) == maxPushBatch || size+n > clientBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// pushStream is an open ledger-push stream to a peer: reset when the
// context ends, with a deadline (deadline) renewed before each exchange.
type pushStream struct {
	ctx  context.Context
	p    peer.ID
	str  network.Stream
	r    *bufio.Reader
	stop func() bool
}

// openPush opens a push stream to p.
func openPush(ctx context.Context, h host.Host, p peer.ID) (*pushStream, error) {
	str, err := h.NewStream(network.WithAllowLimitedConn(ctx, "medwallet ledger push: control traffic"), p, PushID)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: push to %s: %w", shortPeer(p), err)
	}
	return &pushStream{ctx: ctx, p: p, str: str, r: bufio.NewReader(str),
		stop: context.AfterFunc(ctx, func() { str.Reset() })}, nil
}

// deadline sets the stream's deadline for the next exchange.
func (ps *pushStream) deadline() {
	d := time.Now().Add(DefaultStreamTimeout)
	if cd, ok := ps.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	_ = ps.str.SetDeadline(d)
}

// finish ends the push: it closes the stream, or, when *err is set,
// resets it and words *err (the context's error first, if it ended).
func (ps *pushStream) finish(err *error) {
	ps.stop()
	if *err == nil {
		ps.str.Close()
		return
	}
	ps.str.Reset()
	if ps.ctx.Err() != nil {
		*err = fmt.Errorf("%w (%w)", ps.ctx.Err(), *err)
	}
	*err = fmt.Errorf("ledgersync: push to %s: %w", shortPeer(ps.p), *err)
}

// PushFeed pushes author's feed, as l holds it, to p over PushID: it
// offers p the feed's head and sends the entries p lacks (all of them
// unless p holds an entry of the feed, then those after it), in batches
// read from l as they are sent, so that its memory does not grow with the
// feed. fn gets the ack of every entry sent, in order; an error from fn
// stops the push and is returned. Entries l accepts during the push are
// left for the next one.
func PushFeed(ctx context.Context, h host.Host, p peer.ID, l *consent.Ledger, author consent.ID, fn func(Ack) error) (err error) {
	var head consent.Head
	l.View(func(v *consent.View) { head = v.Head(author) })
	if head.Seq == 0 {
		return nil
	}
	ps, err := openPush(ctx, h, p)
	if err != nil {
		return err
	}
	defer ps.finish(&err)
	str, r, deadline := ps.str, ps.r, ps.deadline

	deadline()
	if err := wire.Write(str, pushRequest{Op: pushOpOffer, Heads: []feedHead{{Author: author, Seq: head.Seq, Hash: head.Hash}}}); err != nil {
		return err
	}
	var ans offerAnswer
	if err := wire.Read(str, r, maxOfferFrame, &ans); err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	if len(ans.Held) != 1 {
		return fmt.Errorf("offer: %d answers for 1 head", len(ans.Held))
	}
	from := uint64(1)
	switch hh := ans.Held[0]; {
	case hh.Has:
		return str.CloseWrite()
	case hh.Seq > 0 && hh.Seq < head.Seq:
		var mine consent.Hash
		l.View(func(v *consent.View) { mine, _ = v.HashAt(author, hh.Seq) })
		if mine == hh.Hash {
			from = hh.Seq + 1
		}
	}

	// Read and write the batches while reading their acks, as Push does.
	batches := make(chan []consent.Hash, 4)
	done := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		var err error
		defer func() { werr <- err }()
		defer close(batches)
		for next := from; next <= head.Seq; {
			var encs [][]byte
			var hs []consent.Hash
			size := 0
			l.View(func(v *consent.View) {
				err = v.FeedFrom(author, next, func(e *consent.Entry) error {
					enc := e.Encode()
					if e.Seq > head.Seq || len(encs) > 0 && (len(encs) == maxPushBatch || size+len(enc) > clientBatchBytes) {
						return errFull
					}
					encs, hs = append(encs, enc), append(hs, consent.HashBytes(enc))
					size += len(enc)
					next = e.Seq + 1
					return nil
				})
			})
			if errors.Is(err, errFull) {
				err = nil
			}
			if err == nil && len(encs) == 0 {
				err = fmt.Errorf("read feed %s: no entry at seq %d", author.Short(), next)
			}
			if err != nil {
				return
			}
			if err = wire.Write(str, pushRequest{Op: pushOpEntries, Entries: encs}); err != nil {
				return
			}
			select {
			case batches <- hs:
			case <-done:
				return
			}
		}
		err = str.CloseWrite()
	}()
	defer func() {
		close(done)
		if err != nil {
			str.Reset()
		}
		if werrv := <-werr; err == nil && werrv != nil {
			err = werrv
		}
	}()
	for hs := range batches {
		deadline()
		var ans pushAcks
		if err := wire.Read(str, r, maxPushAcksFrame, &ans); err != nil {
			return fmt.Errorf("acks: %w", err)
		}
		if len(ans.Acks) != len(hs) {
			return fmt.Errorf("%d acks for a batch of %d", len(ans.Acks), len(hs))
		}
		for j, wa := range ans.Acks {
			if wa.Hash != hs[j] {
				return fmt.Errorf("ack for %s names another entry", hs[j])
			}
			if err := fn(Ack{Hash: wa.Hash, Status: AckStatus(wa.Status), Reason: wa.Reason, Code: wa.Code}); err != nil {
				return err
			}
		}
	}
	return nil
}
