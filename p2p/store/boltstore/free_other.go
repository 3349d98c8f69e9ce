//go:build !unix

package boltstore

import "errors"

// FreeSpace is unknown on this system: the free-space watermark does not
// refuse puts here.
func FreeSpace(string) (int64, error) {
	return 0, errors.ErrUnsupported
}
