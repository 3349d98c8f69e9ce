// Package boltstore is a peer's disk: one bbolt file that holds the
// encrypted shares it was given (in 1 MiB chunks, so memory stays bounded at
// any share size) and the encrypted manifests it replicates. The types it
// stores are package store's; the peer's copy of the ledger is in
// consent/boltstore.
package boltstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
)

// ChunkSize is the size of the pieces a share is stored in.
const ChunkSize = 1 << 20

// chunksPerTx bounds the chunks written in one transaction (and in memory).
const chunksPerTx = 8

var (
	bucketShares   = []byte("shares")   // share ID -> shareMeta (CBOR)
	bucketChunks   = []byte("chunks")   // upload ID (8) | chunk index (8) -> bytes
	bucketUploads  = []byte("uploads")  // upload ID (8) -> "" while an upload is in flight
	bucketManifest = []byte("manifest") // owner | 0 | record | 0 | recipient -> envelope
)

// Store is a peer's bbolt-backed store.
type Store struct {
	db  *bolt.DB
	dir string
	// MaxShare bounds the bytes of one share (default 8 GiB).
	MaxShare int64
	// Now is the clock of leases and share times (time.Now if nil).
	Now func() time.Time

	mu      sync.Mutex
	limits  store.Limits
	rate    *store.RateLimiter
	usage   map[consent.ID]*use
	changes uint64 // bumped by every committed change, for snapshots

	snapMu    sync.Mutex
	written   uint64
	wroteOnce bool
}

// Open opens (creating if needed) the store at path and removes what
// interrupted uploads left behind.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, dir: filepath.Dir(path), MaxShare: 8 << 30}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketShares, bucketChunks, bucketUploads, bucketManifest} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return migrate(tx, time.Now())
	})
	if err == nil {
		err = s.cleanUploads()
	}
	if err == nil {
		err = db.View(func(tx *bolt.Tx) (err error) {
			s.usage, err = loadUsage(tx)
			return err
		})
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// DB exposes the bbolt handle so that the ledger can share the file.
func (s *Store) DB() *bolt.DB { return s.db }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) cleanUploads() error {
	var stale []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUploads).ForEach(func(k, _ []byte) error {
			stale = append(stale, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, u := range stale {
		if err := s.dropUpload(u); err != nil {
			return err
		}
	}
	return nil
}

func chunkKey(upload, i uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, upload)
	binary.BigEndian.PutUint64(k[8:], i)
	return k
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// dropUpload deletes the chunks of an upload and its in-flight mark.
func (s *Store) dropUpload(upload uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Cursor()
		prefix := u64(upload)
		for k, _ := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketUploads).Delete(prefix)
	})
}

// PutShare reads r to EOF and stores it as a share of record owned by
// owner. It computes the content address itself. A failed or cancelled put
// stores nothing. It enforces the limits (SetLimits) but for the put rate,
// which AdmitShare takes: the policy and the owner's object quota before
// reading, the owner's byte quota at every chunk and the free-space
// watermark before every write, so a put that crosses one fails there.
func (s *Store) PutShare(ctx context.Context, owner consent.ID, record string, r io.Reader) (vault.ShareID, error) {
	l := s.Limits()
	if !l.Allowed(owner) {
		return vault.ShareID{}, store.ErrNotAllowed
	}
	if err := s.checkFree(l, 0); err != nil {
		return vault.ShareID{}, err
	}
	if err := s.reserveObject(l, owner); err != nil {
		return vault.ShareID{}, err
	}
	var reserved int64
	var add store.OwnerUsage
	defer func() { s.settle(owner, reserved, 1, add) }()

	var ub [8]byte
	if _, err := rand.Read(ub[:]); err != nil {
		return vault.ShareID{}, err
	}
	upload := binary.BigEndian.Uint64(ub[:])
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUploads).Put(ub[:], nil) }); err != nil {
		return vault.ShareID{}, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = s.dropUpload(upload)
		}
	}()

	h := vault.ShareHasher()
	var size int64
	var idx uint64
	batch := make([][]byte, 0, chunksPerTx)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketChunks)
			for _, c := range batch {
				if err := b.Put(chunkKey(upload, idx), c); err != nil {
					return err
				}
				idx++
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return vault.ShareID{}, err
		}
		buf := make([]byte, ChunkSize)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			size += int64(n)
			if size > s.MaxShare {
				return vault.ShareID{}, fmt.Errorf("share: %w (limit %d bytes)", store.ErrTooLarge, s.MaxShare)
			}
			if err := s.reserveBytes(l, owner, int64(n)); err != nil {
				return vault.ShareID{}, err
			}
			reserved += int64(n)
			h.Write(buf[:n])
			batch = append(batch, buf[:n])
			if len(batch) == chunksPerTx {
				if err := s.checkFree(l, int64(len(batch))*ChunkSize); err != nil {
					return vault.ShareID{}, err
				}
				if err := flush(); err != nil {
					return vault.ShareID{}, err
				}
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return vault.ShareID{}, err
		}
	}
	if err := s.checkFree(l, int64(len(batch))*ChunkSize); err != nil {
		return vault.ShareID{}, err
	}
	if err := flush(); err != nil {
		return vault.ShareID{}, err
	}
	if err := ctx.Err(); err != nil {
		return vault.ShareID{}, err
	}
	id := h.ID()
	meta := store.ShareMeta{Owner: owner, Record: record, Size: size, Upload: upload, Created: s.clock().Unix()}
	mb, err := consent.Marshal(meta)
	if err != nil {
		return vault.ShareID{}, err
	}
	dup := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		shares := tx.Bucket(bucketShares)
		if old := shares.Get(id[:]); old != nil {
			var om store.ShareMeta
			if err := consent.Unmarshal(old, &om); err != nil {
				return fmt.Errorf("share %s: damaged metadata", id)
			}
			if om.Owner != owner || om.Record != record {
				return store.ErrOwner
			}
			dup = true
			return s.touch(tx, owner, record)
		}
		if err := shares.Put(id[:], mb); err != nil {
			return err
		}
		if err := s.touch(tx, owner, record); err != nil {
			return err
		}
		return tx.Bucket(bucketUploads).Delete(ub[:])
	})
	if err != nil {
		return vault.ShareID{}, err
	}
	committed = !dup // a duplicate's chunks are dropped by the deferred clean-up
	if committed {
		add = store.OwnerUsage{Shares: 1, ShareBytes: size}
	}
	return id, nil
}

// Meta returns what the store knows of a share.
func (s *Store) Meta(id vault.ShareID) (store.ShareMeta, error) {
	var m store.ShareMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketShares).Get(id[:])
		if b == nil {
			return fmt.Errorf("share %s: %w", id, store.ErrNotFound)
		}
		return consent.Unmarshal(b, &m)
	})
	return m, err
}

// Has reports whether the share is stored.
func (s *Store) Has(_ context.Context, id vault.ShareID) (bool, error) {
	_, err := s.Meta(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Get streams a stored share. Chunks are read one transaction at a time,
// so a reader never holds the database for long.
func (s *Store) Get(_ context.Context, id vault.ShareID) (io.ReadCloser, error) {
	m, err := s.Meta(id)
	if err != nil {
		return nil, err
	}
	return &chunkReader{s: s, upload: m.Upload, left: m.Size}, nil
}

type chunkReader struct {
	s      *Store
	upload uint64
	next   uint64
	buf    []byte
	left   int64
	closed bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.closed {
		return 0, errors.New("read after close")
	}
	if len(c.buf) == 0 {
		if c.left <= 0 {
			return 0, io.EOF
		}
		err := c.s.db.View(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketChunks).Get(chunkKey(c.upload, c.next))
			if v == nil {
				return fmt.Errorf("share chunk %d is missing: %w", c.next, io.ErrUnexpectedEOF)
			}
			c.buf = append(c.buf[:0], v...)
			return nil
		})
		if err != nil {
			return 0, err
		}
		c.next++
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	c.left -= int64(n)
	return n, nil
}

func (c *chunkReader) Close() error { c.closed = true; return nil }

// Delete removes a share; deleting an absent share is not an error.
func (s *Store) Delete(_ context.Context, id vault.ShareID) error {
	m, err := s.Meta(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	gone := false
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketShares).Get(id[:]) == nil {
			gone = true // a concurrent delete was first
			return nil
		}
		// Mark the chunks for clean-up first, so a crash cannot orphan them.
		if err := tx.Bucket(bucketUploads).Put(u64(m.Upload), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketShares).Delete(id[:])
	}); err != nil {
		return err
	}
	if gone {
		return nil
	}
	s.settle(m.Owner, 0, 0, store.OwnerUsage{Shares: -1, ShareBytes: -m.Size})
	return s.dropUpload(m.Upload)
}

// Shares calls fn for every stored share.
func (s *Store) Shares(fn func(id vault.ShareID, m store.ShareMeta) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
			var m store.ShareMeta
			if err := consent.Unmarshal(v, &m); err != nil {
				return err
			}
			var id vault.ShareID
			copy(id[:], k)
			return fn(id, m)
		})
	})
}

// OwnerStore adapts the store to vault.ShareStore for one owner and record.
func (s *Store) OwnerStore(owner consent.ID, record string) vault.ShareStore {
	return ownerStore{s, owner, record}
}

type ownerStore struct {
	s      *Store
	owner  consent.ID
	record string
}

func (o ownerStore) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	return o.s.PutShare(ctx, o.owner, o.record, r)
}
func (o ownerStore) Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error) {
	return o.s.Get(ctx, id)
}
func (o ownerStore) Has(ctx context.Context, id vault.ShareID) (bool, error) { return o.s.Has(ctx, id) }
func (o ownerStore) Delete(ctx context.Context, id vault.ShareID) error      { return o.s.Delete(ctx, id) }
