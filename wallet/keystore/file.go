package keystore

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/99designs/keyring"

	"golang.org/x/crypto/scrypt"

	"github.com/medwallet/medwallet/internal/fsutil"
)

const (
	// defaultLogN is the scrypt cost (log2 N) of a new file keyring:
	// N=2^16, r=8 takes 64 MiB and about 0.2 s here, and runs once per
	// process. Config.ScryptLogN overrides it (tests); the cost is recorded
	// beside the keyring, so a keyring keeps the cost it was made with.
	defaultLogN = 16
	kdfFile     = "medwallet-kdf.json"
	sentinelKey = "medwallet-passphrase-check"
	minLogN     = 10
	maxLogN     = 22
)

type kdfParams struct {
	Version int    `json:"version"`
	Alg     string `json:"alg"`
	LogN    int    `json:"log_n"`
	R       int    `json:"r"`
	P       int    `json:"p"`
	Salt    string `json:"salt"`
}

// fileKDF turns the user's passphrase into the file backend's password with
// scrypt, so a stolen keyring directory costs an attacker far more than the
// backend's own 8,192 PBKDF2 rounds.
type fileKDF struct {
	dir        string
	passphrase func(prompt string) (string, error)
	logN       int // cost of a new keyring

	mu      sync.Mutex
	derived string // cached: the backend may ask again for every item
}

func (k *fileKDF) password(prompt string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.derived != "" {
		return k.derived, nil
	}
	if k.passphrase == nil {
		return "", ErrNoPassphrase
	}
	params, err := k.params()
	if err != nil {
		return "", err
	}
	pass, err := k.passphrase(prompt)
	if err != nil {
		return "", sourceError{err}
	}
	if pass == "" {
		return "", fmt.Errorf("%w: it is empty", ErrNoPassphrase)
	}
	salt, err := base64.StdEncoding.DecodeString(params.Salt)
	if err != nil {
		return "", fmt.Errorf("%w: %s has a bad salt", ErrDamaged, kdfFile)
	}
	key, err := scrypt.Key([]byte(pass), salt, 1<<params.LogN, params.R, params.P, 32)
	if err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	k.derived = hex.EncodeToString(key)
	// Give scrypt's working memory back at once: a command that then
	// streams a large record should not carry it.
	debug.FreeOSMemory()
	return k.derived, nil
}

// params reads the KDF parameters, creating them for a new keyring.
func (k *fileKDF) params() (kdfParams, error) {
	path := filepath.Join(k.dir, kdfFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return k.create(path)
	}
	if err != nil {
		return kdfParams{}, fmt.Errorf("keyring: %w", err)
	}
	var p kdfParams
	if err := json.Unmarshal(b, &p); err != nil || p.Version != 1 || p.Alg != "scrypt" ||
		p.LogN < minLogN || p.LogN > maxLogN || p.R != 8 || p.P != 1 {
		return kdfParams{}, fmt.Errorf("%w: %s is not a valid scrypt parameter file", ErrDamaged, path)
	}
	return p, nil
}

func (k *fileKDF) create(path string) (kdfParams, error) {
	salt := make([]byte, 16)
	randRead(salt)
	p := kdfParams{Version: 1, Alg: "scrypt", LogN: k.logN, R: 8, P: 1, Salt: base64.StdEncoding.EncodeToString(salt)}
	b, _ := json.Marshal(p)
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return kdfParams{}, fmt.Errorf("keyring: %w", err)
	}
	// Never half-written: another process reading it sees all or nothing.
	err := fsutil.WriteFileNew(path, b, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return k.params() // another process made it first
	}
	if err != nil {
		return kdfParams{}, fmt.Errorf("keyring: %w", err)
	}
	return p, nil
}

// checkedStore verifies the file backend's passphrase against a sentinel
// item before the first read or write, because the backend itself would
// encrypt new items under a mistyped passphrase without a word.
type checkedStore struct {
	inner    *ringStore
	mu       sync.Mutex
	verified bool
}

func (c *checkedStore) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified {
		return nil
	}
	_, err := c.inner.ring.Get(sentinelKey)
	switch {
	case err == nil:
	case isNotFound(err):
		// A new keyring, or one made before the sentinel: prove the
		// passphrase on an existing item if there is one, then add it.
		keys, kerr := c.inner.ring.Keys()
		if kerr != nil {
			return mapErr(kerr)
		}
		for _, key := range keys {
			if key == kdfFile {
				continue
			}
			if _, err := c.inner.ring.Get(key); err != nil {
				return passErr(err)
			}
			break
		}
		if err := c.inner.Set(sentinelKey, []byte("medwallet")); err != nil {
			return err
		}
	default:
		return passErr(err)
	}
	c.verified = true
	return nil
}

func passErr(err error) error {
	var se sourceError
	if errors.As(err, &se) {
		return se.err
	}
	if errors.Is(err, ErrNoPassphrase) || errors.Is(err, ErrDamaged) {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return mapErr(err)
	}
	// jose reports a failed decryption with assorted messages; all of them
	// mean the derived key does not open the item.
	return ErrBadPassphrase
}

// sourceError carries an error of Config.Passphrase (an unreadable
// passphrase file, no terminal) through the keyring library, so that it is
// reported as it is and never mistaken for a wrong passphrase.
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

func isNotFound(err error) bool { return errors.Is(err, keyring.ErrKeyNotFound) }

func (c *checkedStore) Get(key string) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.inner.Get(key)
}

func (c *checkedStore) Set(key string, secret []byte) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.inner.Set(key, secret)
}

func (c *checkedStore) Remove(key string) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.inner.Remove(key)
}
