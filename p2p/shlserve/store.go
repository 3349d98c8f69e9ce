package shlserve

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
)

// File is the store's file in a peer's data directory.
const File = "shl.db"

var (
	bucketLinks = []byte("links")
	bucketFiles = []byte("files")
)

// Verifier is the salted argon2id hash of a link's passcode.
type Verifier struct {
	Salt []byte `cbor:"1,keyasint"`
	Hash []byte `cbor:"2,keyasint"`
}

// link is what the store keeps about one link.
type link struct {
	Owner    consent.ID   `cbor:"1,keyasint"`
	Entry    consent.Hash `cbor:"2,keyasint"`
	Types    []string     `cbor:"3,keyasint"`
	Verifier *Verifier    `cbor:"4,keyasint,omitempty"`
	Held     uint64       `cbor:"5,keyasint,omitempty"` // bit i: file i is held
	Failures uint32       `cbor:"6,keyasint,omitempty"`
	// Dead is when the peer dropped the files of a revoked, expired or
	// locked link (Unix s): the descriptor stays a while so that later
	// requests are still decided and logged, and counts for no quota.
	Dead int64 `cbor:"7,keyasint,omitempty"`
}

func (l *link) complete() bool { return l.Held == 1<<len(l.Types)-1 }

// usage is an owner's links and file bytes on this peer.
type usage struct {
	links int
	bytes int64
}

// Store keeps the links' descriptors and files.
type Store struct {
	db *bolt.DB
	mu sync.Mutex
	by map[consent.ID]usage // rebuilt on open
}

// OpenStore opens (or creates) dir/File.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, File), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("shl store: %w", err)
	}
	s := &Store{db: db, by: map[consent.ID]usage{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLinks, bucketFiles} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		files := tx.Bucket(bucketFiles)
		return tx.Bucket(bucketLinks).ForEach(func(k, v []byte) error {
			var l link
			if err := consent.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("link %q: %w", k, err)
			}
			if l.Dead != 0 {
				return nil
			}
			u := s.by[l.Owner]
			u.links++
			for i := range l.Types {
				u.bytes += int64(len(files.Get(fileKey(string(k), i))))
			}
			s.by[l.Owner] = u
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shl store: %w", err)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func fileKey(id string, i int) []byte {
	k := append([]byte(id), 0)
	return binary.BigEndian.AppendUint16(k, uint16(i))
}

// errQuota reports an owner over MaxLinks or MaxBytes.
var errQuota = errors.New("quota")

// put stores file i of link id (descriptor l, for a new link) within the
// owner's limits. A file already held is replaced.
func (s *Store) put(id string, l link, i int, file []byte, lim Limits) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		links, files := tx.Bucket(bucketLinks), tx.Bucket(bucketFiles)
		u := s.by[l.Owner]
		cur := l
		if v := links.Get([]byte(id)); v != nil {
			if err := consent.Unmarshal(v, &cur); err != nil {
				return err
			}
			if cur.Entry != l.Entry || cur.Owner != l.Owner {
				return fmt.Errorf("%w: the link ID is taken", errOwner)
			}
			if cur.Dead != 0 {
				return errDead
			}
		} else {
			if u.links >= lim.MaxLinks {
				return errQuota
			}
			u.links++
		}
		old := int64(len(files.Get(fileKey(id, i))))
		if u.bytes-old+int64(len(file)) > lim.MaxBytes {
			return errQuota
		}
		u.bytes += int64(len(file)) - old
		cur.Held |= 1 << i
		v, err := consent.Marshal(&cur)
		if err != nil {
			return err
		}
		if err := links.Put([]byte(id), v); err != nil {
			return err
		}
		if err := files.Put(fileKey(id, i), file); err != nil {
			return err
		}
		s.by[l.Owner] = u
		return nil
	})
}

// get returns link id's descriptor.
func (s *Store) get(id string) (link, bool, error) {
	var l link
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLinks).Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		return consent.Unmarshal(v, &l)
	})
	return l, ok, err
}

// file returns file i of link id (a copy).
func (s *Store) file(id string, i int) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFiles).Get(fileKey(id, i))
		if v == nil {
			return errNoFile
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

var (
	errNoFile = errors.New("file not held")
	errDead   = errors.New("the link is dead")
)

// setFailures records link id's count of wrong passcodes.
func (s *Store) setFailures(id string, n uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		var l link
		if err := consent.Unmarshal(v, &l); err != nil {
			return err
		}
		l.Failures = n
		nv, err := consent.Marshal(&l)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
}

// drop removes link id and its files.
func (s *Store) drop(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		links, files := tx.Bucket(bucketLinks), tx.Bucket(bucketFiles)
		v := links.Get([]byte(id))
		if v == nil {
			return nil
		}
		var l link
		if err := consent.Unmarshal(v, &l); err != nil {
			return err
		}
		if err := s.dropFiles(files, id, l); err != nil {
			return err
		}
		return links.Delete([]byte(id))
	})
}

// kill drops the files of link id and keeps its descriptor, dead since now.
func (s *Store) kill(id string, now int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		links, files := tx.Bucket(bucketLinks), tx.Bucket(bucketFiles)
		v := links.Get([]byte(id))
		if v == nil {
			return nil
		}
		var l link
		if err := consent.Unmarshal(v, &l); err != nil {
			return err
		}
		if l.Dead != 0 {
			return nil
		}
		if err := s.dropFiles(files, id, l); err != nil {
			return err
		}
		l.Dead, l.Held = max(now, 1), 0
		nv, err := consent.Marshal(&l)
		if err != nil {
			return err
		}
		return links.Put([]byte(id), nv)
	})
}

// dropFiles deletes the files of a link and takes a live link off its
// owner's usage. s.mu is held.
func (s *Store) dropFiles(files *bolt.Bucket, id string, l link) error {
	if l.Dead != 0 {
		return nil
	}
	u := s.by[l.Owner]
	for i := range l.Types {
		k := fileKey(id, i)
		u.bytes -= int64(len(files.Get(k)))
		if err := files.Delete(k); err != nil {
			return err
		}
	}
	u.links--
	if u.links <= 0 {
		delete(s.by, l.Owner)
	} else {
		s.by[l.Owner] = u
	}
	return nil
}

// each calls fn for every link held.
func (s *Store) each(fn func(id string, l link)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLinks).ForEach(func(k, v []byte) error {
			var l link
			if err := consent.Unmarshal(v, &l); err != nil {
				return nil
			}
			fn(string(k), l)
			return nil
		})
	})
}
