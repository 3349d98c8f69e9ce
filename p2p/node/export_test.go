package node

import "time"

// SetGracePeriod sets the connection manager's grace period of the hosts
// New builds from now on, and returns a function that restores it.
func SetGracePeriod(d time.Duration) (restore func()) {
	old := gracePeriod
	gracePeriod = d
	return func() { gracePeriod = old }
}
