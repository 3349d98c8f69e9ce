// Package fsutil writes files so that a crash or a concurrent writer never
// leaves a half-written file under the final name: WriteFileAtomic
// replaces a file, CreateNew makes a new one and never overwrites. Both
// write a temporary file in the destination's directory, fsync it, move it
// into place and fsync the directory.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// WriteFileAtomic writes data to path with mode perm, replacing any file
// there: readers see the old content or the new, never a mix, even after a
// crash. The mode is set exactly (the umask does not apply).
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := newTemp(path, perm)
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := writeSyncClose(f, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFileNew writes data to a new file at path with mode perm. It fails
// with an error matching fs.ErrExist, and changes nothing, when path
// exists.
func WriteFileNew(path string, data []byte, perm fs.FileMode) error {
	f, err := CreateNew(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// NewFile is a file being written by CreateNew. Its content appears under
// the final name only at Commit, complete and synced to disk. The usual
// shape is:
//
//	f, err := fsutil.CreateNew(path, 0o600)
//	if err != nil { ... }
//	defer f.Abort() // does nothing after a successful Commit
//	... write to f ...
//	return f.Commit()
type NewFile struct {
	path string
	f    *os.File
	done bool
}

// CreateNew starts a new file at path with mode perm (set exactly, the
// umask does not apply). It fails at once with an error matching
// fs.ErrExist when path exists, and Commit fails the same way, writing
// nothing, if a file appeared there meanwhile: an existing file is never
// overwritten.
func CreateNew(path string, perm fs.FileMode) (*NewFile, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	f, err := newTemp(path, perm)
	if err != nil {
		return nil, err
	}
	return &NewFile{path: path, f: f}, nil
}

// Name returns the final path of the file.
func (n *NewFile) Name() string { return n.path }

// Write writes to the pending file.
func (n *NewFile) Write(p []byte) (int, error) {
	if n.done {
		return 0, fs.ErrClosed
	}
	return n.f.Write(p)
}

// Commit syncs the file, gives it its final name unless a file already has
// that name, and syncs the directory. After a failed Commit the pending
// file is gone and nothing is left under the final name.
func (n *NewFile) Commit() error {
	if n.done {
		return fs.ErrClosed
	}
	n.done = true
	tmp := n.f.Name()
	defer os.Remove(tmp) // after the link this removes only the temporary name
	if err := writeSyncClose(n.f, nil); err != nil {
		return err
	}
	// A hard link, unlike a rename, fails when the target exists.
	if err := os.Link(tmp, n.path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(n.path))
}

// Close is Commit, so that a NewFile is an io.WriteCloser. Prefer Commit
// and a deferred Abort, which reads better.
func (n *NewFile) Close() error { return n.Commit() }

// Abort discards the pending file; nothing appears under the final name.
// It does nothing after Commit or another Abort.
func (n *NewFile) Abort() error {
	if n.done {
		return nil
	}
	n.done = true
	n.f.Close()
	return os.Remove(n.f.Name())
}

// SyncDir fsyncs a directory so that the names created, renamed or removed
// in it survive a crash. File systems that cannot sync a directory are not
// an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}

// newTemp creates a hidden temporary file next to path with mode perm.
func newTemp(path string, perm fs.FileMode) (*os.File, error) {
	base := filepath.Base(path)
	if len(base) > 40 { // stay well under NAME_MAX, cut on a rune boundary
		i := 40
		for i > 0 && !utf8.RuneStart(base[i]) {
			i--
		}
		base = base[:i]
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("setting the mode of a new file: %w", err)
	}
	return f, nil
}

// writeSyncClose writes data to f, syncs and closes it; f is closed
// whatever happens.
func writeSyncClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
