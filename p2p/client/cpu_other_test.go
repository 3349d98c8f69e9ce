//go:build !unix

package client

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
