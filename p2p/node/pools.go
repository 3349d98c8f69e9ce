package node

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
)

// pools is a host's resource manager: two go-libp2p resource managers,
// one for strangers and one for known peers. Every connection is opened
// in the strangers' manager (whose allowlist gives known peers' addresses
// connection scopes of their own), and a stream in the manager of the
// peer that it is with, chosen by the peer ID the handshake authenticated.
// So strangers, however many, cannot use up the streams or the stream
// memory of known peers, and a known peer cannot use up the strangers'.
type pools struct {
	network.ResourceManager                         // strangers; every connection
	known                   network.ResourceManager // streams of known peers; nil for a client
	knownIDs                map[peer.ID]bool
	strangerRefusals        *refusals
	knownRefusals           *refusals
}

var _ network.ResourceManager = (*pools)(nil)

func (p *pools) pool(id peer.ID) network.ResourceManager {
	if p.known != nil && p.knownIDs[id] {
		return p.known
	}
	return p.ResourceManager
}

// OpenConnection opens a connection scope in the strangers' manager.
// Every refusal is counted here, those of the per-IP limiter included,
// which go-libp2p does not report.
func (p *pools) OpenConnection(dir network.Direction, usefd bool, endpoint ma.Multiaddr) (network.ConnManagementScope, error) {
	s, err := p.ResourceManager.OpenConnection(dir, usefd, endpoint)
	if err != nil {
		p.strangerRefusals.conn(dir, err)
	}
	return s, err
}

// OpenStream opens a stream scope in the pool of peer id.
func (p *pools) OpenStream(id peer.ID, dir network.Direction) (network.StreamManagementScope, error) {
	return p.pool(id).OpenStream(id, dir)
}

// ViewPeer views the peer's scope in its pool.
func (p *pools) ViewPeer(id peer.ID, f func(network.PeerScope) error) error {
	return p.pool(id).ViewPeer(id, f)
}

// GetConnLimit is the strangers' system connection limit; the connection
// manager compares its high water mark with it.
func (p *pools) GetConnLimit() int {
	if l, ok := p.ResourceManager.(interface{ GetConnLimit() int }); ok {
		return l.GetConnLimit()
	}
	return 0
}

// Close closes both managers.
func (p *pools) Close() error {
	err := p.ResourceManager.Close()
	if p.known != nil {
		err = errors.Join(err, p.known.Close())
	}
	return err
}

// Refusals counts what a host's resource manager refused, by kind.
type Refusals struct {
	// Conns are connections refused: system, transient or per-IP limits,
	// the connection rate, or a peer's own connection limit.
	Conns uint64
	// Streams are streams refused: a stream limit of the system, the
	// peer, a protocol, a protocol for that peer, or a service.
	Streams uint64
	// Memory are memory reservations refused (frames not read, stream
	// windows not grown).
	Memory uint64
}

// RefusalsOf returns what h's resource manager refused so far, for
// strangers and for known peers. A host not built by New reports zero.
func RefusalsOf(h host.Host) (strangers, known Refusals) {
	p, ok := h.Network().ResourceManager().(*pools)
	if !ok {
		return Refusals{}, Refusals{}
	}
	return p.strangerRefusals.load(), p.knownRefusals.load()
}

// refusals counts and logs the refusals of one pool. It is the pool's
// go-libp2p MetricsReporter: counting is an atomic add, and logging (at
// debug level, peer IDs shortened, never a payload) is throttled to one
// line a second per kind, each carrying the running total.
type refusals struct {
	pool                 string
	log                  *slog.Logger
	conns, streams, mem  atomic.Uint64
	lastConn, lastStream atomic.Int64
	lastMem              atomic.Int64
}

var _ rcmgr.MetricsReporter = (*refusals)(nil)

func newRefusals(pool string, log *slog.Logger) *refusals {
	return &refusals{pool: pool, log: log}
}

func (r *refusals) load() Refusals {
	if r == nil {
		return Refusals{}
	}
	return Refusals{Conns: r.conns.Load(), Streams: r.streams.Load(), Memory: r.mem.Load()}
}

// due reports whether a line of the kind whose last time is last may be
// logged now.
func due(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(time.Second) && last.CompareAndSwap(prev, now)
}

func (r *refusals) conn(dir network.Direction, err error) {
	n := r.conns.Add(1)
	if due(&r.lastConn) {
		r.log.Debug("resource manager refused a connection", "pool", r.pool, "dir", dir.String(), "reason", err.Error(), "refused_total", n)
	}
}

func (r *refusals) stream(scope string, p peer.ID, proto protocol.ID, dir network.Direction) {
	n := r.streams.Add(1)
	if due(&r.lastStream) {
		args := []any{"pool", r.pool, "limit", scope, "refused_total", n}
		if p != "" {
			args = append(args, "peer", p.ShortString())
		}
		if proto != "" {
			args = append(args, "protocol", string(proto))
		}
		if dir != network.DirUnknown {
			args = append(args, "dir", dir.String())
		}
		r.log.Debug("resource manager refused a stream", args...)
	}
}

// MetricsReporter. Connections are counted in pools.OpenConnection.

func (r *refusals) AllowConn(network.Direction, bool)      {}
func (r *refusals) BlockConn(network.Direction, bool)      {}
func (r *refusals) AllowStream(peer.ID, network.Direction) {}
func (r *refusals) AllowPeer(peer.ID)                      {}
func (r *refusals) AllowProtocol(protocol.ID)              {}
func (r *refusals) AllowService(string)                    {}
func (r *refusals) AllowMemory(int)                        {}
func (r *refusals) BlockStream(p peer.ID, dir network.Direction) {
	r.stream("stream", p, "", dir)
}
func (r *refusals) BlockPeer(p peer.ID) {
	n := r.conns.Add(1)
	if due(&r.lastConn) {
		r.log.Debug("resource manager refused a connection", "pool", r.pool, "limit", "peer", "peer", p.ShortString(), "refused_total", n)
	}
}
func (r *refusals) BlockProtocol(proto protocol.ID) {
	r.stream("protocol", "", proto, network.DirUnknown)
}
func (r *refusals) BlockProtocolPeer(proto protocol.ID, p peer.ID) {
	r.stream("protocol-peer", p, proto, network.DirUnknown)
}
func (r *refusals) BlockService(svc string) { r.stream("service "+svc, "", "", network.DirUnknown) }
func (r *refusals) BlockServicePeer(svc string, p peer.ID) {
	r.stream("service-peer "+svc, p, "", network.DirUnknown)
}
func (r *refusals) BlockMemory(size int) {
	n := r.mem.Add(1)
	if due(&r.lastMem) {
		r.log.Debug("resource manager refused memory", "pool", r.pool, "bytes", size, "refused_total", n)
	}
}
