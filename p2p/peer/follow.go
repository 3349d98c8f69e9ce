package peer

import (
	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
)

// follow makes gossip per patient: this peer joins the topic of each
// subject that enrolled it (the served set), and only the subject itself
// and this peer's known peers (bootstrap and network file) get the
// subject's messages or a place in its mesh (the default access of
// ledgersync.Follow; docs/network.md, "Discovery and per-patient gossip").
// Serving peers this peer does not know, and subjects it serves only
// through shares it holds, are reached by push and sync.
func (p *Peer) follow() error {
	return p.Sync.Follow(ledgersync.Follow{Served: p.served, SubjectOf: subjectOf})
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
