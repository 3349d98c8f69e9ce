package shares

// Per-requester rate limit on gets. Every get a peer decides costs it an
// access entry that is replicated to the parties it names, so the peer
// limits how fast one requester (the connection's authenticated remote)
// may ask, before deciding anything. See docs/network.md, "Access-entry
// budget".

import (
	"container/list"
	"errors"
	"sync"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// Default limits on the gets of one requester at one peer: a burst that
// covers a clinician importing a patient's 50 records of 5 shares each
// from this one peer with room to retry, then 5 gets a second.
const (
	DefaultGetBurst = 300
	DefaultGetRate  = 5.0 // gets per second, sustained
	// MaxGetBuckets bounds the requesters tracked at once; beyond it the
	// least recently seen is forgotten (its next get starts with a full
	// burst, as a new identity's would).
	MaxGetBuckets = 4096
)

// ErrRateLimited is a get refused with code "rate-limited": the peer
// limits how fast one requester may ask, and decided, logged and released
// nothing. Another holder may serve the share; this one will again after a
// short wait.
var ErrRateLimited = errors.New("rate limited: too many requests from you to this peer")

// WithGetLimit sets the per-requester limit on gets: burst gets at once,
// then rate a second. A rate or burst <= 0 keeps the default.
func WithGetLimit(rate float64, burst int) Option {
	return func(s *Service) { s.gets.rate, s.gets.burst = rate, burst }
}

// getLimiter is a token bucket per requester ID, at most max of them,
// least recently used first out. Its zero value uses the defaults.
type getLimiter struct {
	rate  float64
	burst int
	max   int

	mu      sync.Mutex
	buckets map[consent.ID]*list.Element // of *bucket
	lru     list.List                    // front: most recently used
}

type bucket struct {
	id     consent.ID
	tokens float64
	at     time.Time // when tokens was computed
}

// allow takes a token from id's bucket at now, or reports false.
func (l *getLimiter) allow(id consent.ID, now time.Time) bool {
	rate, burst, max := l.rate, float64(l.burst), l.max
	if rate <= 0 {
		rate = DefaultGetRate
	}
	if burst <= 0 {
		burst = DefaultGetBurst
	}
	if max <= 0 {
		max = MaxGetBuckets
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[consent.ID]*list.Element)
	}
	var b *bucket
	if el, ok := l.buckets[id]; ok {
		l.lru.MoveToFront(el)
		b = el.Value.(*bucket)
		if dt := now.Sub(b.at).Seconds(); dt > 0 {
			b.tokens = min(burst, b.tokens+dt*rate)
			b.at = now
		}
	} else {
		for len(l.buckets) >= max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.buckets, old.Value.(*bucket).id)
		}
		b = &bucket{id: id, tokens: burst, at: now}
		l.buckets[id] = l.lru.PushFront(b)
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// size is the number of requesters tracked.
func (l *getLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
