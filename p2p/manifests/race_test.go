//go:build race

package manifests

// raceEnabled: the race detector multiplies memory and time, so memory
// bounds are not asserted under it.
const raceEnabled = true
