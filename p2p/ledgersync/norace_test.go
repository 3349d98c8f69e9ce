//go:build !race

package ledgersync

const raceEnabled = false
