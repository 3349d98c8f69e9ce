package manifests

import (
	"time"

	"github.com/medwallet/medwallet/p2p/wire"
)

// Limits bound what the streams of the protocol may hold on a peer and
// for how long.
type Limits struct {
	// Streams bounds the streams in progress, per remote identity and in
	// total; a stream over it is answered "busy" before its request is
	// read.
	Streams wire.Limit
	// Memory bounds the bytes held at once for all streams together: a
	// request frame and its decoded copy (twice the frame), a list's
	// copies and their answer frame (twice the envelopes). A request or
	// answer that does not fit is answered "busy" before it is allocated.
	// The last eighth is kept for reservations of at most 256 KiB (a
	// manifest is a few KiB), so that strangers sending large frames
	// cannot keep honest requests out.
	Memory int64
	// Request is the budget for receiving the request frame, Transfer for
	// sending the answer.
	Request, Transfer wire.Budget
}

// smallFrame is the largest reservation the last eighth of the memory
// pool takes.
const smallFrame = 256 << 10

// MinRate is the default minimum rate of a request or an answer: a remote
// sending or reading slower than this on average (over about 10 s) is
// reset.
const MinRate = 16 << 10

// DefaultLimits are the limits a Service uses unless WithLimits says
// otherwise.
func DefaultLimits() Limits {
	return Limits{
		Streams:  wire.Limit{PerRemote: 2, Total: 256},
		Memory:   64 << 20,
		Request:  clientBudget,
		Transfer: clientBudget,
	}
}

// clientBudget bounds each stream on either side: 30 s in all, and at
// least MinRate averaged over 10 s.
var clientBudget = wire.Budget{Total: timeout, Grace: 10 * time.Second, MinRate: MinRate, Window: 10 * time.Second}

// Option configures a Service.
type Option func(*Service)

// WithLimits replaces DefaultLimits.
func WithLimits(l Limits) Option { return func(s *Service) { s.lim = l } }
