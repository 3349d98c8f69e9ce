// Package dirstore is a vault.ShareStore in a local directory.
//
// Each share is a file named by its content address (64 hex characters)
// under a two-character fan-out directory: <root>/ab/abcdef.... Files are
// 0600 in directories 0700. A share is written to <root>/tmp, fsynced and
// renamed into place, and the directory is fsynced, so a partially written
// share never appears under its address.
package dirstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/medwallet/medwallet/vault"
)

// Store is a share store rooted at a directory.
type Store struct {
	root string
}

var _ vault.ShareStore = (*Store)(nil)

// Open returns a store rooted at dir, creating it (0700) if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("dirstore: %w", err)
	}
	return &Store{root: dir}, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(id vault.ShareID) string {
	h := id.String()
	return filepath.Join(s.root, h[:2], h)
}

// Put implements vault.ShareStore.
func (s *Store) Put(ctx context.Context, r io.Reader) (id vault.ShareID, err error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "put-*")
	if err != nil {
		return id, fmt.Errorf("dirstore: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := vault.ShareHasher()
	if _, err = io.Copy(io.MultiWriter(f, h), vault.ContextReader(ctx, r)); err != nil {
		return id, err
	}
	if err = f.Sync(); err != nil {
		return id, fmt.Errorf("dirstore: %w", err)
	}
	if err = f.Close(); err != nil {
		return id, fmt.Errorf("dirstore: %w", err)
	}
	id = h.ID()
	dst := s.path(id)
	if _, serr := os.Stat(dst); serr == nil {
		os.Remove(tmp)
		return id, nil
	}
	dir := filepath.Dir(dst)
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return id, fmt.Errorf("dirstore: %w", err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return id, fmt.Errorf("dirstore: %w", err)
	}
	syncDir(dir)
	return id, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Get implements vault.ShareStore. The returned file also implements
// io.Seeker.
func (s *Store) Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dirstore: share %s: %w", id.String()[:12], vault.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dirstore: %w", err)
	}
	return f, nil
}

// Has implements vault.ShareStore.
func (s *Store) Has(ctx context.Context, id vault.ShareID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, err := os.Stat(s.path(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("dirstore: %w", err)
	}
}

// Delete implements vault.ShareStore.
func (s *Store) Delete(ctx context.Context, id vault.ShareID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := os.Remove(s.path(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dirstore: %w", err)
	}
	return nil
}

// Path returns the file holding a share (for tests and repair tools).
func (s *Store) Path(id vault.ShareID) string { return s.path(id) }
