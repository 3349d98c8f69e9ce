package shlserve

import (
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// Limits bound what the service keeps and serves.
type Limits struct {
	// MaxLinks and MaxBytes bound each owner's links held (revoked and
	// expired ones are dropped) and the bytes of their files.
	MaxLinks int
	MaxBytes int64
	// Streams bounds the upload streams in progress, per owner and in
	// total; Memory the bytes of upload frames held at once.
	Streams wire.Limit
	Memory  int64
	// Body bounds a manifest request's body.
	Body int64
	// PerIP is how many HTTPS requests a second one client address may
	// make, after a burst of Burst; a request over it is answered 429.
	PerIP float64
	Burst int
	// Locations bounds the file locations outstanding at once.
	Locations int
}

// LocationLife is how long a file location from a manifest stays valid.
const LocationLife = 5 * time.Minute

// maxFrame bounds an upload request: one file and its header.
const maxFrame = consent.MaxShlFileSize + 4096

// DefaultLimits are the limits a Service uses unless Config says otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxLinks:  32,
		MaxBytes:  256 << 20,
		Streams:   wire.Limit{PerRemote: 2, Total: 16},
		Memory:    96 << 20,
		Body:      4 << 10,
		PerIP:     2,
		Burst:     20,
		Locations: 1 << 16,
	}
}

// uploadBudget bounds each upload stream on either side: 2 minutes in all,
// and at least 16 KiB/s averaged over 10 s.
var uploadBudget = wire.Budget{Total: 2 * time.Minute, Grace: 10 * time.Second, MinRate: 16 << 10, Window: 10 * time.Second}
