//go:build race

package ledgersync

const raceEnabled = true
