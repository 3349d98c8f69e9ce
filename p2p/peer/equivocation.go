package peer

import "github.com/medwallet/medwallet/consent"

// logEquivocations has the peer log every equivocation its ledger services
// detect as an equivocation entry on its own feed (unless the ledger
// already holds one against that author, see ledgersync.LogEquivocation)
// and gossip it like an access entry. Since the entry is on the ledger, the
// author stays refused after a restart, and every peer the proof reaches
// refuses it too.
func (p *Peer) logEquivocations() {
	p.Sync.OnEquivocation(func(pr *consent.EquivocationProof) {
		e, err := p.Sync.LogEquivocation(p.signer, pr)
		if err != nil {
			p.log.Warn("equivocation proof not logged; the author stays refused until a restart",
				"author", pr.Author().Short(), "err", err)
			return
		}
		if e == nil {
			return
		}
		p.metrics.Entry("own", e.Kind)
		select {
		case p.outbox <- e:
		default:
			p.log.Warn("gossip queue full; sync will carry the equivocation entry")
		}
	})
}
