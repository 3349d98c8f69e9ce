package wire

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// MaxRateRemotes bounds the remotes a RemoteRates tracks; beyond it the
// table starts again (a forgotten remote gets a new burst, as a new
// identity would).
const MaxRateRemotes = 4096

// RemoteRates is a token bucket per remote peer: a request rate that one
// identity cannot exceed, in at most MaxRateRemotes buckets. It is safe
// for concurrent use.
type RemoteRates struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[peer.ID]*rate.Limiter
}

// NewRemoteRates allows each remote perSecond requests a second, after a
// burst of burst.
func NewRemoteRates(perSecond float64, burst int) *RemoteRates {
	return &RemoteRates{limit: rate.Limit(perSecond), burst: burst, buckets: map[peer.ID]*rate.Limiter{}}
}

// Allow takes a token from p's bucket, and reports whether there was one.
func (r *RemoteRates) Allow(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.buckets[p]
	if !ok {
		if len(r.buckets) >= MaxRateRemotes {
			clear(r.buckets)
		}
		l = rate.NewLimiter(r.limit, r.burst)
		r.buckets[p] = l
	}
	return l.Allow()
}
