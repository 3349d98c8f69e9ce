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
// recipient (the owner's own copy has recipient == owner).
func (s *Store) PutManifest(owner consent.ID, record string, recipient consent.ID, envelope []byte) error {
	if len(envelope) > store.MaxManifest {
		return fmt.Errorf("manifest: %w", store.ErrTooLarge)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketManifest).Put(manifestKey(owner, record, recipient), envelope)
	})
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
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketManifest).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}
