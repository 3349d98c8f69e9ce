//go:build !linux

package boltstore

// ReleaseMemory does nothing on this system (see release_linux.go).
func (s *Store) ReleaseMemory() {}
