// Package serving is what a peer keeps about the patients it serves, and
// the protocol by which a patient asks a peer to serve it.
//
// A peer serves patient S when it holds S's shares or manifests, when S's
// latest serve entry (consent.KindServe) names it, or when S enrolled it
// over /medwallet/serve/1.0.0 and has not left it since. Serving S means keeping S's feeds (S's home
// feed, every peer's access sub-feed about S) and the feeds of the parties
// S's entries name, and answering ledger requests about them to S, to S's
// other serving peers and to those parties only (p2p/peer's authoriser).
//
// Enrolment: the patient (the stream's authenticated remote, so a peer
// can only enrol itself) sends {1: rendezvous secret, 32 bytes}; the peer
// answers {1: ok} or {2: error, 3: code}. Leaving: the patient sends
// {2: true} when its serve entry no longer names the peer; the peer drops
// it from the set (answer as for enrolment). The set of enrolled subjects,
// with each one's rendezvous secret and enrolment time, is kept in the
// peer's data directory (Set, file "served.db", mode 0600): the secret
// lets the peer be found by those who know it (DHT provider records and
// gossip topics, derived from S and the secret), never by S's ID alone.
//
// The set lives in DATA/served.db, a bbolt file (mode 0600): one record per
// subject, so an enrolment or a leave writes one key in one transaction,
// however many patients the peer serves. A served.json left by an earlier
// version (the whole set as one JSON object) is moved into it on open and
// renamed served.json.migrated.
package serving

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
)

// File is the served set's file in a peer's data directory.
const File = "served.db"

// legacyFile is the served set's file before it moved into bbolt: read
// once, on open, when File does not exist yet.
const legacyFile = "served.json"

// MaxSubjects bounds the subjects one peer keeps enrolled.
const MaxSubjects = 1 << 20

// ErrFull reports an enrolment refused because the set holds MaxSubjects.
var ErrFull = errors.New("serving: the peer serves as many patients as it can")

// Secret is a patient's rendezvous secret.
type Secret [32]byte

// member is a subject's record: {1: secret (bytes 32), 2: enrolled at
// (Unix seconds)} in canonical CBOR.
type member struct {
	Secret Secret    `cbor:"1,keyasint" json:"secret"`
	Since  time.Time `cbor:"-" json:"since"`
	Unix   int64     `cbor:"2,keyasint" json:"-"`
}

var (
	bucketSubjects = []byte("subjects")
	bucketMeta     = []byte("meta")
	keyCount       = []byte("count")
)

// Set is the persistent set of subjects enrolled on a peer. It is safe for
// concurrent use.
type Set struct {
	mu     sync.Mutex // serialises changes and the change hooks' list
	db     *bolt.DB
	max    int
	change []func()
}

// Open opens the set kept at path (a bbolt file), creating it if needed;
// a served.json beside it, from an earlier version, is moved into it.
func Open(path string) (*Set, error) {
	_, statErr := os.Stat(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("served set: %w", err)
	}
	s := &Set{db: db, max: MaxSubjects}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSubjects, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && errors.Is(statErr, os.ErrNotExist) {
		err = s.migrate(filepath.Join(filepath.Dir(path), legacyFile))
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("served set %s: %w", filepath.Base(path), err)
	}
	return s, nil
}

// migrate moves the JSON set at legacy, if there is one, into the file.
func (s *Set) migrate(legacy string) error {
	b, err := os.ReadFile(legacy)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m map[consent.ID]member
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(legacy), err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		subs := tx.Bucket(bucketSubjects)
		for id, mb := range m {
			v, err := encodeMember(mb)
			if err != nil {
				return err
			}
			if err := subs.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyCount, binary.BigEndian.AppendUint64(nil, uint64(len(m))))
	})
	if err != nil {
		return err
	}
	return os.Rename(legacy, legacy+".migrated")
}

// Close closes the file.
func (s *Set) Close() error { return s.db.Close() }

func encodeMember(m member) ([]byte, error) {
	m.Unix = m.Since.Unix()
	return consent.Marshal(m)
}

func decodeMember(v []byte) (member, error) {
	var m member
	if err := consent.Unmarshal(v, &m); err != nil {
		return member{}, fmt.Errorf("served set: %w", err)
	}
	m.Since = time.Unix(m.Unix, 0).UTC()
	return m, nil
}

// get reads subject's record; ok is false when it is not enrolled (or its
// record does not decode).
func (s *Set) get(subject consent.ID) (m member, ok bool) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSubjects).Get([]byte(subject))
		if v == nil {
			return nil
		}
		var err error
		m, err = decodeMember(v)
		ok = err == nil
		return nil
	})
	return m, ok
}

// Enrol adds subject with its secret (or updates its secret) and saves
// it. It reports whether the subject is new.
func (s *Set) Enrol(subject consent.ID, secret Secret, now time.Time) (bool, error) {
	s.mu.Lock()
	old, had := s.get(subject)
	if had && old.Secret == secret {
		s.mu.Unlock()
		return false, nil
	}
	m := member{Secret: secret, Since: now.UTC().Truncate(time.Second)}
	if had {
		m.Since = old.Since
	}
	v, err := encodeMember(m)
	if err == nil {
		err = s.db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			n := count(meta)
			if !had {
				if n >= uint64(s.max) {
					return ErrFull
				}
				if err := meta.Put(keyCount, binary.BigEndian.AppendUint64(nil, n+1)); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketSubjects).Put([]byte(subject), v)
		})
	}
	fns := append([]func(){}, s.change...)
	s.mu.Unlock()
	if errors.Is(err, ErrFull) {
		return false, ErrFull
	}
	if err != nil {
		return false, fmt.Errorf("served set: %w", err)
	}
	for _, fn := range fns {
		fn()
	}
	return !had, nil
}

// Leave removes subject and saves the set. It reports whether subject was
// enrolled.
func (s *Set) Leave(subject consent.ID) (bool, error) {
	s.mu.Lock()
	had := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		subs := tx.Bucket(bucketSubjects)
		if subs.Get([]byte(subject)) == nil {
			return nil
		}
		had = true
		meta := tx.Bucket(bucketMeta)
		if n := count(meta); n > 0 {
			if err := meta.Put(keyCount, binary.BigEndian.AppendUint64(nil, n-1)); err != nil {
				return err
			}
		}
		return subs.Delete([]byte(subject))
	})
	fns := append([]func(){}, s.change...)
	s.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("served set: %w", err)
	}
	if !had {
		return false, nil
	}
	for _, fn := range fns {
		fn()
	}
	return true, nil
}

func count(meta *bolt.Bucket) uint64 {
	if c := meta.Get(keyCount); len(c) == 8 {
		return binary.BigEndian.Uint64(c)
	}
	return 0
}

// Len is the number of subjects enrolled.
func (s *Set) Len() int {
	var n uint64
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = count(tx.Bucket(bucketMeta))
		return nil
	})
	return int(n)
}

// Subjects returns the enrolled subjects, sorted (bytewise, as bbolt keeps
// them).
func (s *Set) Subjects() []consent.ID {
	var out []consent.ID
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubjects).ForEach(func(k, _ []byte) error {
			out = append(out, consent.ID(k))
			return nil
		})
	})
	return out
}

// Secret returns subject's rendezvous secret, if subject is enrolled.
func (s *Set) Secret(subject consent.ID) ([32]byte, bool) {
	m, ok := s.get(subject)
	return m.Secret, ok
}

// Since returns when subject enrolled.
func (s *Set) Since(subject consent.ID) (time.Time, bool) {
	m, ok := s.get(subject)
	return m.Since, ok
}

// Has reports whether subject is enrolled.
func (s *Set) Has(subject consent.ID) bool {
	_, ok := s.get(subject)
	return ok
}

// OnChange registers fn, called (outside the set's lock) after every
// enrolment or leave that changed the set.
func (s *Set) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.change = append(s.change, fn)
}

// MarshalText writes the secret in hexadecimal.
func (s Secret) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(s[:])), nil }

// UnmarshalText reads 64 hexadecimal digits.
func (s *Secret) UnmarshalText(b []byte) error {
	if len(b) != 2*len(s) {
		return fmt.Errorf("serving: secret: want %d hex digits, got %d", 2*len(s), len(b))
	}
	_, err := hex.Decode(s[:], b)
	return err
}
