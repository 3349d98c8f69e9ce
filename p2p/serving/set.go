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
// peer's data directory (Set, file "served.json", mode 0600): the secret
// lets the peer be found by those who know it (DHT provider records and
// gossip topics, derived from S and the secret), never by S's ID alone.
package serving

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// File is the served set's file in a peer's data directory.
const File = "served.json"

// MaxSubjects bounds the subjects one peer keeps enrolled.
const MaxSubjects = 1 << 20

// ErrFull reports an enrolment refused because the set holds MaxSubjects.
var ErrFull = errors.New("serving: the peer serves as many patients as it can")

// Secret is a patient's rendezvous secret.
type Secret [32]byte

type member struct {
	Secret Secret    `json:"secret"`
	Since  time.Time `json:"since"`
}

// Set is the persistent set of subjects enrolled on a peer. It is safe for
// concurrent use.
type Set struct {
	mu     sync.Mutex
	path   string
	m      map[consent.ID]member
	change []func()
}

// Open reads the set kept at path, or starts an empty one if there is no
// file yet.
func Open(path string) (*Set, error) {
	s := &Set{path: path, m: make(map[consent.ID]member)}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("served set: %w", err)
	}
	if err := json.Unmarshal(b, &s.m); err != nil {
		return nil, fmt.Errorf("served set %s: %w", filepath.Base(path), err)
	}
	return s, nil
}

// Enrol adds subject with its secret (or updates its secret) and saves
// the set. It reports whether the subject is new.
func (s *Set) Enrol(subject consent.ID, secret Secret, now time.Time) (bool, error) {
	s.mu.Lock()
	old, had := s.m[subject]
	if had && old.Secret == secret {
		s.mu.Unlock()
		return false, nil
	}
	if !had && len(s.m) >= MaxSubjects {
		s.mu.Unlock()
		return false, ErrFull
	}
	since := now.UTC().Truncate(time.Second)
	if had {
		since = old.Since
	}
	s.m[subject] = member{Secret: secret, Since: since}
	err := s.saveLocked()
	if err != nil {
		if had {
			s.m[subject] = old
		} else {
			delete(s.m, subject)
		}
	}
	fns := append([]func(){}, s.change...)
	s.mu.Unlock()
	if err != nil {
		return false, err
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
	old, had := s.m[subject]
	if !had {
		s.mu.Unlock()
		return false, nil
	}
	delete(s.m, subject)
	err := s.saveLocked()
	if err != nil {
		s.m[subject] = old
	}
	fns := append([]func(){}, s.change...)
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	for _, fn := range fns {
		fn()
	}
	return true, nil
}

func (s *Set) saveLocked() error {
	b, err := json.Marshal(s.m)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("served set: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("served set: %w", err)
	}
	return nil
}

// Subjects returns the enrolled subjects, sorted.
func (s *Set) Subjects() []consent.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]consent.ID, 0, len(s.m))
	for id := range s.m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Secret returns subject's rendezvous secret, if subject is enrolled.
func (s *Set) Secret(subject consent.ID) ([32]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.m[subject]
	return m.Secret, ok
}

// Since returns when subject enrolled.
func (s *Set) Since(subject consent.ID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.m[subject]
	return m.Since, ok
}

// Has reports whether subject is enrolled.
func (s *Set) Has(subject consent.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[subject]
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
