//go:build !unix

package ledgersync

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
