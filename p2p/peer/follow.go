package peer

import (
	"sync"
	"sync/atomic"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/serving"
)

// follow makes gossip per patient: this peer joins the topic of each
// subject that enrolled it (the served set), and only the subject itself
// and peers (topicAccess) get the subject's messages or a place in its
// mesh (docs/network.md, "Discovery and per-patient gossip"). Subjects
// it serves only through shares it holds are reached by push and sync.
func (p *Peer) follow() error {
	p.topicPeers = newServingPeers()
	p.Ledger.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			if sp := v.ServingPeers(a); len(sp) > 0 {
				p.topicPeers.set(a, sp)
			}
		}
	})
	p.Sync.OnAccepted(func(e *consent.Entry) {
		if e.Kind != consent.KindServe {
			return
		}
		var sp []consent.ID
		p.Ledger.View(func(v *consent.View) { sp = v.ServingPeers(e.Author) })
		p.topicPeers.set(e.Author, sp)
	})
	return p.Sync.Follow(ledgersync.Follow{Served: p.served, SubjectOf: subjectOf, Access: p.topicAccess})
}

// topicAccess is gossip's access rule for subject's topic: the subject, a
// known peer, a peer of the subject's serve entry, or a remote that is a
// peer itself (it serves /medwallet/serve/1.0.0, as identify told us) and
// knows the topic's name, which only the subject's rendezvous secret
// gives. The last rule matters because gossipsub asks once, when the
// remote subscribes: fellow serving peers enrol and subscribe before the
// serve entry naming them reaches this peer. gossipsub asks on its event
// loop, so this reads a snapshot and the peerstore and takes no lock.
func (p *Peer) topicAccess(remote lpeer.ID, subject consent.ID) bool {
	r := consent.ID(remote.String())
	if r == subject || p.auth.known[r] || p.topicPeers.has(subject, r) {
		return true
	}
	ps, err := p.Host.Peerstore().SupportsProtocols(remote, serving.ID)
	return err == nil && len(ps) > 0
}

// servingPeers is a copy-on-write snapshot of each subject's serving
// peers (its latest serve entry), read without locks.
type servingPeers struct {
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[map[consent.ID]map[consent.ID]bool]
}

func newServingPeers() *servingPeers {
	s := &servingPeers{}
	m := map[consent.ID]map[consent.ID]bool{}
	s.snap.Store(&m)
	return s
}

func (s *servingPeers) set(subject consent.ID, peers []consent.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.snap.Load()
	m := make(map[consent.ID]map[consent.ID]bool, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	set := make(map[consent.ID]bool, len(peers))
	for _, p := range peers {
		set[p] = true
	}
	m[subject] = set
	s.snap.Store(&m)
}

func (s *servingPeers) has(subject, p consent.ID) bool {
	return (*s.snap.Load())[subject][p]
}

// subjectOf is ledgersync.DefaultSubjectOf, but the link that opens an
// access sub-feed concerns the sub-feed's subject (the sub-feed's access
// entries name it as their request's owner already). It takes no lock:
// gossip calls it on its own goroutines.
func subjectOf(e *consent.Entry) (consent.ID, bool) {
	if e.Kind == consent.KindLink {
		if b, err := e.DecodedBody(); err == nil {
			if lb, ok := b.(*consent.LinkBody); ok {
				return lb.Subject, true
			}
		}
		return "", false
	}
	return ledgersync.DefaultSubjectOf(e)
}
