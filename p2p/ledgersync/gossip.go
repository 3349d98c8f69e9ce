package ledgersync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
)

// GossipTopic is the one global gossipsub topic of a peer that follows no
// serving set (see Follow): every entry it holds goes to every subscriber.
// It carries no ID of any kind. A peer that follows a serving set leaves
// it and gossips each entry on the topic of its subject instead
// (consent.Topic), which a stranger who knows only the subject's ID cannot
// name.
const GossipTopic = "/medwallet/ledger/1"

// Syncer is asked for a pull sync with a peer that gossip shows this peer
// is behind: *SyncService is one.
type Syncer interface {
	RequestSync(p peer.ID)
}

// GossipService runs gossipsub on GossipTopic for a ledger: the topic
// validator ingests what peers gossip, and Publish and Republish gossip
// this peer's entries and those it took in by push or released from
// pending.
type GossipService struct {
	h    host.Host
	in   *Ingest
	cfg  config
	log  *slog.Logger
	life *life
	sync Syncer // may be nil

	psCancel context.CancelFunc // gossipsub's context; cancelled last by Close
	ps       *pubsub.PubSub
	topic    *pubsub.Topic // the global topic; nil once Follow is called
	relay    pubsub.RelayCancelFunc
	pubQ     chan *consent.Entry

	// Per-subject gossip (Follow). following is set once; subjects is an
	// immutable snapshot, replaced by refresh, that gossipsub's event loop
	// reads without locks (it must never wait on joinMu, which is held
	// while refresh calls into gossipsub).
	following atomic.Bool
	follow    Follow
	subjects  atomic.Pointer[map[string]*subjectTopic] // topic name -> joined topic
	joinMu    sync.Mutex                               // serialises refresh and Close
	changed   chan struct{}
	filtered  atomic.Uint64 // subscriptions to our topics refused (tests)

	meshMu sync.Mutex
	mesh   map[peer.ID]map[string]bool // our topics' meshes, as meshTracer sees them
}

// NewGossipService starts gossipsub on h and joins GossipTopic with the
// entry validator, which ingests into in's ledger; sync, if not nil, is
// asked to sync with a peer whose gossip shows a gap and with every new
// mesh peer. WithMaxMessageSize and WithLogger apply. The service owns its
// gossipsub instance, so h must not run another one.
func NewGossipService(h host.Host, in *Ingest, sync Syncer, opts ...Option) (_ *GossipService, err error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &GossipService{
		h: h, in: in, cfg: cfg, log: in.log, life: newLife(cfg.parent), sync: sync,
		psCancel: func() {},
		pubQ:     make(chan *consent.Entry, pubQueue),
		mesh:     make(map[peer.ID]map[string]bool),
		changed:  make(chan struct{}, 1),
	}
	s.subjects.Store(&map[string]*subjectTopic{})
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// gossipsub gets a context of its own, ended after the topic is left.
	psCtx, psCancel := context.WithCancel(cfg.parent)
	s.psCancel = psCancel
	s.ps, err = pubsub.NewGossipSub(psCtx, s.h,
		// Entries carry their author's signature; the envelope carries none
		// and names no originating peer (see doc.go).
		pubsub.WithNoAuthor(),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithMessageIdFn(msgID),
		pubsub.WithPeerOutboundQueueSize(outboundQueue),
		pubsub.WithMaxMessageSize(s.cfg.maxMsgSize+frameOverhead),
		pubsub.WithLogger(s.cfg.logger.With("svc", "pubsub")),
		pubsub.WithRawTracer(meshTracer{s}),
		// Only the subscriptions to our topics by peers allowed on them
		// are tracked, so we send a subject's entries to no one else.
		pubsub.WithSubscriptionFilter(subFilter{s}),
		pubsub.WithPeerFilter(s.peerAllowed),
	)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: start gossipsub: %w", err)
	}
	if err := s.ps.RegisterTopicValidator(GossipTopic, s.validate); err != nil {
		return nil, fmt.Errorf("ledgersync: register validator: %w", err)
	}
	s.topic, err = s.ps.Join(GossipTopic)
	if err != nil {
		return nil, fmt.Errorf("ledgersync: join %s: %w", GossipTopic, err)
	}
	// Relay joins the mesh without a subscription: the validator ingests.
	s.relay, err = s.topic.Relay()
	if err != nil {
		return nil, fmt.Errorf("ledgersync: relay %s: %w", GossipTopic, err)
	}
	s.life.goroutine(s.publishLoop)
	return s, nil
}

// Close leaves the topic and stops gossipsub, once what the service was
// publishing ended; it is safe to call twice.
func (s *GossipService) Close() error {
	if !s.life.close() {
		return nil
	}
	// Our work first: a publish waiting for readiness holds the topic.
	s.life.end()
	s.joinMu.Lock()
	s.leaveGlobal()
	for _, st := range *s.subjects.Load() {
		s.leave(st)
	}
	s.subjects.Store(&map[string]*subjectTopic{})
	s.joinMu.Unlock()
	// Cancelling its context stops gossipsub's goroutines.
	s.psCancel()
	return nil
}

// askSync asks the Syncer, if any, for a pull sync with p.
func (s *GossipService) askSync(p peer.ID) {
	if s.sync != nil {
		s.sync.RequestSync(p)
	}
}

// msgID is the gossip message ID: the SHA-256 of the data, which for a
// valid message is the entry hash. The same entry published by two peers
// is one message.
func msgID(m *pb.Message) string {
	h := consent.HashBytes(m.GetData())
	return string(h[:])
}

// Publish gossips e, an entry of the local ledger (typically just made with
// Ledger.Append). An entry the ledger does not hold yet is ingested first
// and must join its feed. Publish waits until the topic's mesh has a peer,
// or ctx ends; either way the entry stays in the ledger and reaches other
// peers by sync.
func (s *GossipService) Publish(ctx context.Context, e *consent.Entry) error {
	if !s.life.enter() {
		return ErrClosed
	}
	defer s.life.wg.Done()
	b := e.Encode()
	if len(b) > s.cfg.maxMsgSize {
		return fmt.Errorf("ledgersync: publish %s: %w (%d bytes)", entryName(e), consent.ErrTooLarge, len(b))
	}
	if !s.in.holds(e) {
		if err := consent.VerifyEntry(e); err != nil {
			return fmt.Errorf("ledgersync: publish: %w", err)
		}
		res := s.in.accept(e)
		if res.out != outAccepted && res.out != outDuplicate {
			return fmt.Errorf("ledgersync: publish %s: %s", entryName(e), res.reason())
		}
		s.Republish(res.acc[min(1, len(res.acc)):])
	}
	topic := s.topicOf(e)
	if topic == nil {
		// Not a subject served here: push and sync carry it.
		s.log.Debug("no gossip topic for the entry; left to sync", "entry", entryName(e))
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.life.ctx, cancel)
	defer stop()
	if err := topic.Publish(ctx, b, pubsub.WithReadiness(pubsub.MinTopicSize(1))); err != nil {
		if s.life.ctx.Err() != nil {
			return ErrClosed
		}
		return fmt.Errorf("ledgersync: publish %s: %w", entryName(e), err)
	}
	return nil
}

// Republish queues entries for gossip from this peer (pushed entries,
// entries released from pending, entries a sync brought in): dropped if
// the queue is full, since sync delivers them anyway, with one warning per
// call.
func (s *GossipService) Republish(es []*consent.Entry) {
	dropped := 0
	for _, e := range es {
		select {
		case s.pubQ <- e:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		s.log.Warn("gossip queue full; entries left to sync", "dropped", dropped, "of", len(es))
	}
}

func (s *GossipService) publishLoop() {
	for {
		select {
		case <-s.life.ctx.Done():
			return
		case <-s.changed:
			s.refresh()
		case e := <-s.pubQ:
			topic := s.topicOf(e)
			if topic == nil {
				continue
			}
			var opts []pubsub.PubOpt
			if !s.following.Load() {
				opts = append(opts, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
			}
			// A subject's topic is published to as it is: waiting for a
			// mesh there would hold up every other subject's entries.
			ctx, cancel := context.WithTimeout(s.life.ctx, s.cfg.timeout)
			err := topic.Publish(ctx, e.Encode(), opts...)
			cancel()
			if err != nil && s.life.ctx.Err() == nil {
				s.log.Debug("gossip failed; entry left to sync", "entry", entryName(e), "err", err)
			}
		}
	}
}

// validate is the topic validator. Every message is one canonical entry.
//
//	reject: oversized, malformed, unknown kind, bad signature, or a chain
//	        that does not link to the head held here
//	ignore: already held (not forwarded again, so replays do not flood),
//	        predecessor missing (held pending; a pull sync from the sender
//	        follows), equivocation (recorded as evidence; not forwarded)
//	accept: joined its feed here, or published by this peer
func (s *GossipService) validate(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	return s.validateOn(ctx, from, m, nil)
}

// validateOn is validate on the topic of subject, if not nil: an entry
// whose subject is another is rejected (an honest peer never sends it).
func (s *GossipService) validateOn(_ context.Context, from peer.ID, m *pubsub.Message, subject *consent.ID) pubsub.ValidationResult {
	if from == s.h.ID() {
		// Publish and republish only send entries the ledger holds.
		return pubsub.ValidationAccept
	}
	if subject != nil {
		// Before any charge: an entry replayed on another subject's topic
		// must not spend its author's budget here.
		if e, err := consent.DecodeEntry(m.GetData()); err == nil {
			if got, ok := s.follow.SubjectOf(e); !ok || got != *subject {
				s.in.n.rejected.Add(1)
				s.log.Debug("gossip rejected: entry of another subject", "entry", entryName(e), "from", shortPeer(from))
				return pubsub.ValidationReject
			}
		}
	}
	e, err := s.in.decodeCharged(m.GetData(), from)
	if errors.Is(err, ErrOverBudget) {
		// The author is over its budget here, whoever forwarded it:
		// ignored, so that honest forwarders are not penalised.
		s.in.n.rejected.Add(1)
		s.log.Debug("gossip over budget", "from", shortPeer(from), "err", err)
		return pubsub.ValidationIgnore
	}
	if err != nil {
		s.in.n.rejected.Add(1)
		s.log.Debug("gossip rejected", "from", shortPeer(from), "err", err)
		return pubsub.ValidationReject
	}
	res := s.in.accept(e)
	switch res.out {
	case outAccepted:
		// Entries released from pending by e were ignored when they came:
		// gossip them now so peers downstream get them without a sync.
		s.Republish(res.acc[1:])
		s.log.Debug("gossip accepted", "entry", entryName(e), "released", len(res.acc)-1)
		return pubsub.ValidationAccept
	case outPending:
		s.log.Debug("gossip gap; syncing", "entry", entryName(e), "from", shortPeer(from))
		s.askSync(from)
		return pubsub.ValidationIgnore
	case outDuplicate, outConflict, outInternal:
		return pubsub.ValidationIgnore
	case outRefused:
		// A future-dated entry may be fine by the sender's clock: ignore
		// it without penalising the peer that forwarded it.
		s.log.Debug("gossip refused", "entry", entryName(e), "from", shortPeer(from), "err", res.err)
		if errors.Is(res.err, ErrFutureEntry) {
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationReject
	default:
		s.log.Debug("gossip rejected", "entry", entryName(e), "from", shortPeer(from), "err", res.err)
		return pubsub.ValidationReject
	}
}

// Served is the set of subjects (patients) a peer serves, with the
// rendezvous secret of each (consent.Rendezvous): the patient hands it to
// the peer when it enrols it.
type Served interface {
	// Subjects are the subjects served now.
	Subjects() []consent.ID
	// Secret is the rendezvous secret of a served subject.
	Secret(consent.ID) ([32]byte, bool)
	// OnChange registers fn, called (on any goroutine, never blocking
	// on the caller) after the set or a secret changed.
	OnChange(fn func())
}

// SubjectOf names the subject (patient) an entry concerns, whose topic
// carries it; false if it concerns none.
type SubjectOf func(*consent.Entry) (consent.ID, bool)

// TopicAccess reports whether remote may get the entries of subject by
// gossip from this peer: only allowed remotes' subscriptions to the
// subject's topic are tracked and only they join its mesh.
type TopicAccess func(remote peer.ID, subject consent.ID) bool

// Follow configures per-subject gossip (GossipService.Follow).
type Follow struct {
	// Served are the subjects whose topics this peer joins. Required.
	Served Served
	// SubjectOf is DefaultSubjectOf if nil.
	SubjectOf SubjectOf
	// Access is, if nil, "the subject itself or a known peer"
	// (WithKnownPeers); the peer daemon passes its need-to-know rule.
	Access TopicAccess
}

// ErrFollow reports a Follow call that cannot be honoured.
var ErrFollow = errors.New("ledgersync: cannot follow a serving set")

// DefaultSubjectOf is the subject of an entry on its author's home feed:
// the owner named by the request of an access entry, the owner named by
// a break-glass entry, the author proven to equivocate by an equivocation
// proof, and the author of any other entry.
func DefaultSubjectOf(e *consent.Entry) (consent.ID, bool) {
	switch e.Kind {
	case consent.KindAccess, consent.KindBreakGlass, consent.KindEquivocation:
		b, err := e.DecodedBody()
		if err != nil {
			return "", false
		}
		switch b := b.(type) {
		case *consent.AccessBody:
			r, err := consent.DecodeRequest(b.Request)
			if err != nil {
				return "", false
			}
			return r.Owner, true
		case *consent.BreakGlassBody:
			return b.Owner, true
		case *consent.EquivocationProof:
			return b.Author(), true
		}
		return "", false
	default:
		return e.Author, true
	}
}

// subjectTopic is a joined subject topic.
type subjectTopic struct {
	subject consent.ID
	name    string
	topic   *pubsub.Topic
	relay   pubsub.RelayCancelFunc
}

// Follow switches the service to per-subject gossip, once: it leaves
// GossipTopic, joins the topic of every subject f.Served serves
// (consent.Topic of the subject and its secret) with a validator that
// also rejects entries of other subjects, and follows f.Served's changes.
// From then on Publish and Republish send each entry on the topic of its
// subject, and not at all if this peer does not serve it (sync carries
// it); only remotes f.Access allows are sent a subject's entries.
func (s *GossipService) Follow(f Follow) error {
	if f.Served == nil {
		return fmt.Errorf("%w: no serving set", ErrFollow)
	}
	if !s.life.enter() {
		return ErrClosed
	}
	defer s.life.wg.Done()
	if f.SubjectOf == nil {
		f.SubjectOf = DefaultSubjectOf
	}
	if f.Access == nil {
		f.Access = func(remote peer.ID, subject consent.ID) bool {
			return string(subject) == remote.String() || s.cfg.isKnown(remote)
		}
	}
	s.joinMu.Lock()
	if s.following.Load() {
		s.joinMu.Unlock()
		return fmt.Errorf("%w: already following one", ErrFollow)
	}
	s.follow = f
	s.following.Store(true)
	s.leaveGlobal()
	s.joinMu.Unlock()
	f.Served.OnChange(func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	})
	s.refresh()
	return nil
}

// leaveGlobal leaves GossipTopic; joinMu is held.
func (s *GossipService) leaveGlobal() {
	if s.relay != nil {
		s.relay()
		s.relay = nil
	}
	if s.topic != nil {
		_ = s.topic.Close()
		s.topic = nil
		_ = s.ps.UnregisterTopicValidator(GossipTopic)
	}
}

// leave leaves a subject topic; joinMu is held.
func (s *GossipService) leave(st *subjectTopic) {
	st.relay()
	_ = st.topic.Close()
	_ = s.ps.UnregisterTopicValidator(st.name)
}

// refresh joins the topics of the subjects served now and leaves the
// others.
func (s *GossipService) refresh() {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	if s.life.ctx.Err() != nil || !s.following.Load() {
		return
	}
	old := *s.subjects.Load()
	next := make(map[string]*subjectTopic, len(old))
	for _, id := range s.follow.Served.Subjects() {
		r, ok := s.follow.Served.Secret(id)
		if !ok {
			continue
		}
		name := consent.Topic(id, r)
		if st, ok := old[name]; ok {
			next[name] = st
			continue
		}
		if _, dup := next[name]; dup {
			continue
		}
		st, err := s.join(id, name)
		if err != nil {
			s.log.Warn("cannot join a subject's gossip topic; left to sync", "err", err)
			continue
		}
		next[name] = st
	}
	// Publish the new set before leaving, so the filters never see a
	// topic that is half gone as ours.
	s.subjects.Store(&next)
	for name, st := range old {
		if _, ok := next[name]; !ok {
			s.leave(st)
		}
	}
}

// join joins a subject topic; joinMu is held.
func (s *GossipService) join(subject consent.ID, name string) (*subjectTopic, error) {
	subj := subject
	if err := s.ps.RegisterTopicValidator(name, func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		return s.validateOn(ctx, from, m, &subj)
	}); err != nil {
		return nil, fmt.Errorf("register validator: %w", err)
	}
	t, err := s.ps.Join(name)
	if err != nil {
		_ = s.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("join: %w", err)
	}
	relay, err := t.Relay()
	if err != nil {
		_ = t.Close()
		_ = s.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("relay: %w", err)
	}
	return &subjectTopic{subject: subject, name: name, topic: t, relay: relay}, nil
}

// topicOf is the topic e is gossiped on: the global one, or the topic of
// its subject if it is served here; nil if none.
func (s *GossipService) topicOf(e *consent.Entry) *pubsub.Topic {
	if !s.following.Load() {
		s.joinMu.Lock()
		defer s.joinMu.Unlock()
		return s.topic
	}
	subject, ok := s.follow.SubjectOf(e)
	if !ok {
		return nil
	}
	r, ok := s.follow.Served.Secret(subject)
	if !ok {
		return nil
	}
	if st, ok := (*s.subjects.Load())[consent.Topic(subject, r)]; ok {
		return st.topic
	}
	return nil
}

// subjectOfTopic is the subject of one of our subject topics.
func (s *GossipService) subjectOfTopic(topic string) (consent.ID, bool) {
	st, ok := (*s.subjects.Load())[topic]
	if !ok {
		return "", false
	}
	return st.subject, true
}

// ours reports whether topic is one this service gossips on. It runs on
// gossipsub's event loop: no locks.
func (s *GossipService) ours(topic string) bool {
	if !s.following.Load() {
		return topic == GossipTopic
	}
	_, ok := s.subjectOfTopic(topic)
	return ok
}

// peerAllowed is gossipsub's peer filter: whether p may join our mesh of
// topic and exchange gossip about it with us. It runs on gossipsub's
// event loop: no locks.
func (s *GossipService) peerAllowed(p peer.ID, topic string) bool {
	if !s.following.Load() {
		return topic == GossipTopic
	}
	subject, ok := s.subjectOfTopic(topic)
	return ok && s.follow.Access(p, subject)
}

// subFilter keeps, of a remote's subscriptions, those to our topics that
// the remote may join (and every unsubscription from our topics), so a
// stranger's subscriptions cost nothing here and a stranger is never sent
// a subject's entries.
type subFilter struct{ s *GossipService }

func (f subFilter) CanSubscribe(string) bool { return true }

func (f subFilter) FilterIncomingSubscriptions(from peer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	out := subs[:0:0]
	for _, o := range subs {
		t := o.GetTopicid()
		if !f.s.ours(t) {
			continue
		}
		if o.GetSubscribe() && !f.s.peerAllowed(from, t) {
			f.s.filtered.Add(1)
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// meshGraft and meshPrune record our meshes (meshTracer).
func (s *GossipService) meshGraft(p peer.ID, topic string) {
	s.meshMu.Lock()
	if s.mesh[p] == nil {
		s.mesh[p] = make(map[string]bool)
	}
	s.mesh[p][topic] = true
	s.meshMu.Unlock()
}

func (s *GossipService) meshPrune(p peer.ID, topic string) {
	s.meshMu.Lock()
	delete(s.mesh[p], topic)
	if len(s.mesh[p]) == 0 {
		delete(s.mesh, p)
	}
	s.meshMu.Unlock()
}
