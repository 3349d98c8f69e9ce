package wire

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Limit bounds the streams of one kind (a protocol's puts, say) in
// progress at once: PerRemote for each remote peer, Total for all of them
// together (the last resort when many identities ask at once).
type Limit struct {
	PerRemote int
	Total     int
}

// Slots counts the streams of one kind in progress, per remote and in
// total, and refuses one over its Limit at once: nothing waits for a slot,
// so a refused client hears "busy" quickly and can ask another peer, and
// kinds counted by different Slots never wait for each other.
type Slots struct {
	lim   Limit
	mu    sync.Mutex
	per   map[peer.ID]int
	total int
}

// NewSlots returns empty slots bounded by l.
func NewSlots(l Limit) *Slots { return &Slots{lim: l, per: map[peer.ID]int{}} }

// Acquire takes a slot for remote p, or reports false when p or everyone
// holds as many as the limit allows. The caller calls release once, when
// the stream is done.
func (s *Slots) Acquire(p peer.ID) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.lim.Total || s.per[p] >= s.lim.PerRemote {
		return nil, false
	}
	s.total++
	s.per[p]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.per[p]--; s.per[p] <= 0 {
				delete(s.per, p)
			}
		})
	}, true
}

// InUse returns the slots held by p and by everyone.
func (s *Slots) InUse(p peer.ID) (remote, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.per[p], s.total
}
