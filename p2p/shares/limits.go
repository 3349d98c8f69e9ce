package shares

import (
	"time"

	"github.com/medwallet/medwallet/p2p/wire"
)

// Limits bound what one stream of the protocol may hold on a peer and for
// how long. Every kind of operation has its own slots, counted per remote
// identity and in total, so one identity's puts never keep another's gets
// (or anyone's has) waiting: a stream over its kind's limit is refused at
// once with code "busy".
type Limits struct {
	// Put bounds concurrent puts.
	Put wire.Limit
	// Get bounds concurrent gets.
	Get wire.Limit
	// Query bounds concurrent has and delete (one frame each way).
	Query wire.Limit
	// Request is the budget for receiving the request frame.
	Request wire.Budget
	// Transfer is the budget for everything after it: the share bytes of
	// a put or a get, and the response.
	Transfer wire.Budget
}

// MinRate is the default minimum rate of a share transfer, each way: a
// remote that sends or reads a share slower than this on average (over
// about 10 s) is reset.
const MinRate = 16 << 10

// DefaultLimits are the limits a Service uses unless WithLimits says
// otherwise.
func DefaultLimits() Limits {
	return Limits{
		Put:      wire.Limit{PerRemote: 2, Total: 32},
		Get:      wire.Limit{PerRemote: 4, Total: 128},
		Query:    wire.Limit{PerRemote: 8, Total: 256},
		Request:  wire.Budget{Total: headerTimeout, Grace: 5 * time.Second, MinRate: MinRate},
		Transfer: transferBudget,
	}
}

// transferBudget bounds a share transfer on either side: at least MinRate
// on average over a 10 s window, and one hour in all (an 8 GiB share, the
// default maximum, needs 2.3 MB/s).
var transferBudget = wire.Budget{Total: time.Hour, Grace: 10 * time.Second, MinRate: MinRate, Window: 10 * time.Second}

// WithLimits replaces DefaultLimits.
func WithLimits(l Limits) Option { return func(s *Service) { s.lim = l } }

// pools are the slots of each kind.
type pools struct {
	put, get, query *wire.Slots
}

func newPools(l Limits) pools {
	return pools{put: wire.NewSlots(l.Put), get: wire.NewSlots(l.Get), query: wire.NewSlots(l.Query)}
}

func (p pools) of(op string) *wire.Slots {
	switch op {
	case OpPut:
		return p.put
	case OpGet, OpAudit: // an audit reads blocks of a share, like a get
		return p.get
	}
	return p.query
}
