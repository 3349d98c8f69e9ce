package ledgersync

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Stream limits of the push and sync services. They are per remote: one
// remote, or many, cannot take the streams another remote needs (the
// ledger-push and ledger-sync slots were global pools before; eight
// identities held all of them and a revocation could not get in).
const (
	// StreamsPerPeer is how many push streams, and how many sync streams,
	// one remote may have open at once.
	StreamsPerPeer = 2
	// KnownStreamsPerPeer is the same for a known peer (WithKnownPeers),
	// whose catch-up and periodic syncs must never wait for strangers.
	KnownStreamsPerPeer = 8
	// maxStrangerStreams is a last resort against memory exhaustion by
	// very many identities, per protocol; known peers are not counted.
	// The resource manager's own limits bound the streams before this.
	maxStrangerStreams = 512

	// PushStreamLife and SyncStreamLife bound an inbound stream from its
	// start, or from its last batch that made progress (a push batch
	// taken, a fetch answered with entries), however it is fed: a remote
	// that sends a byte every few seconds no longer keeps a stream for
	// ever, and a long feed is never cut while it moves on.
	PushStreamLife = 2 * time.Minute
	SyncStreamLife = 5 * time.Minute
	// MinPushRate is the least average rate, in bytes per second of time
	// spent waiting for the remote, that a push stream must keep once
	// pushRateGrace of waiting passed.
	MinPushRate   = 1 << 10
	pushRateGrace = 10 * time.Second
)

// ErrTooSlow is the reason a push stream is reset when the remote sends
// below MinPushRate.
var ErrTooSlow = errors.New("ledgersync: remote sends below the minimum rate")

// limiter bounds concurrent inbound streams of one protocol per remote:
// StreamsPerPeer for a stranger, KnownStreamsPerPeer for a known peer.
type limiter struct {
	known func(peer.ID) bool

	mu        sync.Mutex
	strangers int
	perPeer   map[peer.ID]int
}

func newLimiter(known func(peer.ID) bool) limiter { return limiter{known: known} }

func (l *limiter) acquire(p peer.ID) bool {
	known := l.known != nil && l.known(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case known && l.perPeer[p] >= KnownStreamsPerPeer:
		return false
	case !known && (l.perPeer[p] >= StreamsPerPeer || l.strangers >= maxStrangerStreams):
		return false
	}
	if l.perPeer == nil {
		l.perPeer = make(map[peer.ID]int)
	}
	if !known {
		l.strangers++
	}
	l.perPeer[p]++
	return true
}

func (l *limiter) release(p peer.ID) {
	known := l.known != nil && l.known(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !known {
		l.strangers--
	}
	if l.perPeer[p]--; l.perPeer[p] == 0 {
		delete(l.perPeer, p)
	}
}

// meter keeps an inbound stream within its life and idle deadlines and,
// when minRate is set, a minimum rate: it counts the bytes read and the
// time spent waiting for them. Package wire is to get a reader that does
// this for every protocol; until then the push and sync services use
// this one (the swap is local to newMeter and next).
type meter struct {
	str     network.Stream
	end     time.Time     // the stream's life ends here
	idle    time.Duration // at most this between two frames
	minRate int           // bytes per second of waiting; 0: no minimum
	grace   time.Duration

	n      int64
	waited time.Duration
}

func newMeter(str network.Stream, life, idle time.Duration, minRate int) *meter {
	return &meter{str: str, end: time.Now().Add(life), idle: idle, minRate: minRate, grace: pushRateGrace}
}

// progress starts the stream's life again: the remote made progress (a
// push batch was taken), so a long push is bounded per batch, not in all.
func (m *meter) progress(life time.Duration) { m.end = time.Now().Add(life) }

// next is called before each frame is read: it fails once the stream is
// below its minimum rate, and sets the deadline of the next exchange to
// the earlier of now plus idle and the end of the stream's life.
func (m *meter) next() error {
	if m.minRate > 0 && m.waited > m.grace && float64(m.n) < float64(m.minRate)*m.waited.Seconds() {
		return fmt.Errorf("%w: %d bytes in %v (minimum %d B/s)", ErrTooSlow, m.n, m.waited.Round(time.Millisecond), m.minRate)
	}
	d := time.Now().Add(m.idle)
	if m.end.Before(d) {
		d = m.end
	}
	_ = m.str.SetDeadline(d)
	return nil
}

// Read reads from the stream, counting bytes and the time waited.
func (m *meter) Read(p []byte) (int, error) {
	start := time.Now()
	n, err := m.str.Read(p)
	m.waited += time.Since(start)
	m.n += int64(n)
	return n, err
}

var _ io.Reader = (*meter)(nil)
