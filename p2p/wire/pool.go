package wire

import (
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
)

// Pool is a budget of bytes shared by all the streams of one service, on
// top of the resource manager's scopes: a protocol whose frames may be
// large (manifests: 16 MiB) keeps the frames it holds at once, from every
// remote together, under a bound of its own, whatever the host's resource
// manager allows. The last bytes of the pool are kept for small
// reservations, so that remotes holding large frames cannot keep the small
// requests of everyone else out.
type Pool struct {
	mu       sync.Mutex
	limit    int64
	small    int
	reserved int64
	used     int64
}

// NewPool returns a pool of limit bytes, of which the last reserved bytes
// only reservations of at most small bytes may use.
func NewPool(limit int64, small int, reserved int64) *Pool {
	return &Pool{limit: limit, small: small, reserved: reserved}
}

// Used returns the bytes reserved now.
func (p *Pool) Used() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

func (p *Pool) reserve(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	free := p.limit
	if n > p.small {
		free -= p.reserved
	}
	if p.used+int64(n) > free {
		return fmt.Errorf("%w: service pool of %d bytes has %d free, %d asked", network.ErrResourceLimitExceeded,
			p.limit, p.limit-p.used, n)
	}
	p.used += int64(n)
	return nil
}

func (p *Pool) release(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used -= int64(n)
}

// Scoped returns s with every memory reservation made through it counted
// in p as well: a reservation fails if either p or s's scope refuses it.
func (p *Pool) Scoped(s Scoped) Scoped { return pooled{s: s, p: p} }

// Take reserves n bytes in p alone, for memory a handler holds besides
// the frames the stream's scope counts (a decoded copy of a frame, an
// answer it builds); the caller calls release once done. A refusal wraps
// network.ErrResourceLimitExceeded.
func (p *Pool) Take(n int) (release func(), err error) {
	if err := p.reserve(n); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { p.release(n) }) }, nil
}

type pooled struct {
	s Scoped
	p *Pool
}

func (w pooled) Scope() network.StreamScope { return pooledScope{StreamScope: w.s.Scope(), p: w.p} }

type pooledScope struct {
	network.StreamScope
	p *Pool
}

func (s pooledScope) ReserveMemory(n int, prio uint8) error {
	if err := s.p.reserve(n); err != nil {
		return err
	}
	if err := s.StreamScope.ReserveMemory(n, prio); err != nil {
		s.p.release(n)
		return err
	}
	return nil
}

func (s pooledScope) ReleaseMemory(n int) {
	s.StreamScope.ReleaseMemory(n)
	s.p.release(n)
}
