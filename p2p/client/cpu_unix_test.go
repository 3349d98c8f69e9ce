//go:build unix

package client

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) this process used so far: the
// benchmarks report it, which other work on a shared machine disturbs
// less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
