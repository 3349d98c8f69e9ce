package boltstore

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
)

func manifestKey(owner consent.ID, record string, recipient consent.ID) []byte {
	k := make([]byte, 0, len(owner)+len(record)+len(recipient)+2)
	k = append(k, owner...)
	k = append(k, 0)
	k = append(k, record...)
	k = append(k, 0)
	return append(k, recipient...)
}

// PutManifest stores an encrypted manifest of owner's record, readable by
// recipient (the owner's own copy has recipient == owner), replacing the
// copy there was. It enforces every limit (SetLimits), the put rate
// included; a replaced copy counts only for the bytes it adds.
func (s *Store) PutManifest(owner consent.ID, record string, recipient consent.ID, envelope []byte) error {
	if len(envelope) > store.MaxManifest {
		return fmt.Errorf("manifest: %w", store.ErrTooLarge)
	}
	l, rl := s.limitsAndRate()
	if !l.Allowed(owner) {
		return store.ErrNotAllowed
	}
	if !rl.Take(owner) {
		return store.ErrPutRate
	}
	if err := s.checkFree(l, int64(len(envelope))); err != nil {
		return err
	}
	key := manifestKey(owner, record, recipient)
	old := -1
	if err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketManifest).Get(key); v != nil {
			old = len(v)
		}
		return nil
	}); err != nil {
		return err
	}
	objects := 0
	if old < 0 {
		if err := s.reserveObject(l, owner); err != nil {
			return err
		}
		objects = 1
	}
	grow := int64(len(envelope) - max(old, 0))
	if grow > 0 {
		if err := s.reserveBytes(l, owner, grow); err != nil {
			s.settle(owner, 0, objects, store.OwnerUsage{})
			return err
		}
	}
	var add store.OwnerUsage
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketManifest)
		add = store.OwnerUsage{Manifests: 1, ManifestBytes: int64(len(envelope))}
		if v := b.Get(key); v != nil {
			add = store.OwnerUsage{ManifestBytes: int64(len(envelope) - len(v))}
		}
		if err := s.touch(tx, owner, record); err != nil {
			return err
		}
		return b.Put(key, envelope)
	})
	if err != nil {
		add = store.OwnerUsage{}
	}
	s.settle(owner, max(grow, 0), objects, add)
	return err
}

// Manifests lists owner's manifests readable by recipient ("" means any),
// optionally for one record ("" means all).
func (s *Store) Manifests(owner consent.ID, record string, recipient consent.ID) ([]store.ManifestCopy, error) {
	var out []store.ManifestCopy
	prefix := append([]byte(owner), 0)
	if record != "" {
		prefix = append(append(prefix, record...), 0)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketManifest).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) != 3 {
				continue
			}
			mc := store.ManifestCopy{Owner: owner, Record: string(parts[1]), Recipient: consent.ID(parts[2])}
			if recipient != "" && mc.Recipient != recipient {
				continue
			}
			mc.Envelope = append([]byte(nil), v...)
			out = append(out, mc)
		}
		return nil
	})
	return out, err
}

// DeleteManifests removes every copy of owner's record manifest.
func (s *Store) DeleteManifests(owner consent.ID, record string) error {
	prefix := append(append(append([]byte(owner), 0), record...), 0)
	var gone store.OwnerUsage
	err := s.db.Update(func(tx *bolt.Tx) error {
		gone = store.OwnerUsage{}
		c := tx.Bucket(bucketManifest).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Seek(prefix) {
			gone.Manifests--
			gone.ManifestBytes -= int64(len(v))
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.settle(owner, 0, 0, gone)
	}
	return err
}
