package peer

import (
	"path/filepath"

	"github.com/medwallet/medwallet/p2p/witness"
)

// startWitness serves /medwallet/witness/1.0.0 unless cfg turns it off,
// with its store in DATA/witness.db, and /medwallet/witness/checkpoint/1.0.0
// (checkpoints of this peer's sub-feeds, for their subjects).
func (p *Peer) startWitness(cfg Config) error {
	if cfg.NoWitness {
		return nil
	}
	db, err := witness.OpenBolt(filepath.Join(cfg.DataDir, witness.File))
	if err != nil {
		return err
	}
	p.witnessDB = db
	lim := witness.DefaultLimits()
	if cfg.WitnessMaxLogs > 0 {
		lim.MaxLogs = cfg.WitnessMaxLogs
	}
	p.witness = witness.NewService(p.Host, db, p.signer, witness.WithLimits(lim), witness.WithLogger(p.log),
		witness.WithSubFeedCheckpoints(witness.LedgerHashes(p.Ledger)))
	return nil
}
