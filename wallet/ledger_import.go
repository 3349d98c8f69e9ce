package wallet

// The checkpoints of an imported ledger file: `ledger import` keeps the
// key certificates, checkpoints and cosignatures an export carries in
// witness.json, as if this wallet had collected them, so that its audit and
// its own exports show them too.

import (
	"bytes"
	"io"

	"github.com/medwallet/medwallet/consent"
)

// readImport reads an exported ledger file for ImportLedger: it keeps the
// file's checkpoints (importCheckpoints) and returns its entries.
func (w *Wallet) readImport(r io.Reader) ([]*consent.Entry, error) {
	x, err := consent.ReadExportFile(r)
	if err != nil {
		return nil, err
	}
	if err := w.importCheckpoints(x); err != nil {
		return nil, err
	}
	return x.Entries, nil
}

// importCheckpoints merges the certificates and checkpoint notes of x into
// witness.json. For each certificate that verifies, the notes signed by its
// key (with those the wallet holds already) are checked against the
// certified author's entries in x where x holds enough of them: the
// newest one that agrees with them (the most cosigned, at equal size) is
// kept as the feed's checkpoint, one that disagrees, or that cannot be
// checked and is not the one kept, as evidence (at most 16 per feed, as
// for witnessing); older ones that agree are dropped. Notes that no
// certificate's key signed are not kept.
func (w *Wallet) importCheckpoints(x *consent.ExportFile) error {
	if len(x.Certs) == 0 || len(x.Checkpoints) == 0 {
		return nil
	}
	held := map[consent.ID][]consent.Hash{} // each author's feed in x, from seq 1 while it is unbroken
	for _, e := range x.Entries {
		if hs := held[e.Author]; e.Seq == uint64(len(hs))+1 {
			held[e.Author] = append(hs, e.Hash())
		}
	}
	witnessMu.Lock()
	defer witnessMu.Unlock()
	st, err := w.readWitnessState()
	if err != nil {
		return err
	}
	changed := false
	for _, cert := range x.Certs {
		if cert == nil || cert.Verify() != nil {
			continue
		}
		origin := cert.Origin()
		fc := st.Feeds[origin]
		if fc != nil && (fc.Cert == nil || fc.Cert.Author != cert.Author) {
			continue
		}
		var cands []*consent.SignedCheckpoint
		add := func(note []byte) {
			sc, err := consent.OpenCheckpoint(note, cert.Key)
			if err != nil {
				return
			}
			for _, c := range cands {
				if bytes.Equal(c.Note, sc.Note) {
					return
				}
			}
			cands = append(cands, sc)
		}
		if fc != nil && fc.Note != "" {
			add([]byte(fc.Note))
		}
		for _, n := range x.Checkpoints {
			add(n)
		}
		if len(cands) == 0 || fc != nil && len(cands) == 1 && string(cands[0].Note) == fc.Note {
			continue
		}
		hs := held[cert.Author]
		var tree *consent.Tree
		// agrees reports whether x holds sc.Size entries of the author
		// (checked) and whether their tree has sc's root.
		agrees := func(sc *consent.SignedCheckpoint) (checked, ok bool) {
			if uint64(len(hs)) < sc.Size {
				return false, false
			}
			if tree == nil {
				tree = consent.NewTree(hs)
			}
			root, err := tree.Root(sc.Size)
			return true, err == nil && root == sc.Root
		}
		var best *consent.SignedCheckpoint
		for _, sc := range cands {
			if checked, ok := agrees(sc); checked && ok &&
				(best == nil || sc.Size > best.Size || sc.Size == best.Size && len(sc.Cosigners) > len(best.Cosigners)) {
				best = sc
			}
		}
		if best == nil {
			best = cands[0] // the one held already, or the file's first
		}
		if fc == nil {
			fc = &feedCheckpoints{Cert: cert, Sizes: map[string]uint64{}}
			st.Feeds[origin] = fc
		}
		fc.Note = string(best.Note)
		for _, sc := range cands {
			if sc == best {
				continue
			}
			if checked, ok := agrees(sc); !checked || !ok {
				fc.addEvidence(sc.Note)
			}
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return w.writeWitnessState(st)
}
