package boltstore

import (
	"os"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleaseMemory drops the pages of the database file that this process
// has read through bbolt's memory map from its resident set (madvise
// MADV_DONTNEED on the shared, read-only map: the next read faults them
// back in from the page cache, unchanged). Reading a whole ledger touches
// every page, so a long scan calls it now and then to keep its resident
// memory bounded by what it holds, not by the size of the file. It must
// not run inside a transaction of this goroutine.
func (s *Store) ReleaseMemory() {
	_ = s.db.View(func(tx *bolt.Tx) error {
		info := s.db.Info()
		size := uintptr(tx.Size())
		page := uintptr(os.Getpagesize())
		size = (size + page - 1) &^ (page - 1)
		if info.Data == 0 || size == 0 {
			return nil
		}
		// Advisory: an error leaves the pages where they are.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, size, unix.MADV_DONTNEED)
		return nil
	})
}
