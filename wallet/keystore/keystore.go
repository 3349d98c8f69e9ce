// Package keystore keeps medwallet's secrets in the operating system's
// keyring, behind a three-method interface so that the rest of the wallet
// never sees which backend holds them.
//
// Backends are those of github.com/99designs/keyring: Secret Service
// (gnome-keyring, KeePassXC), macOS Keychain, Windows Credential Manager,
// KWallet, pass, the Linux kernel keyring (keyctl) and an encrypted file.
// The file backend's own key derivation is weak (8,192 PBKDF2 rounds) and it
// silently re-encrypts under a wrong passphrase; this package stretches the
// passphrase with scrypt first and checks it against a sentinel item before
// any read or write.
package keystore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/99designs/keyring"
)

// ServiceName is the keyring service (or collection, folder, prefix) medwallet uses.
const ServiceName = "medwallet"

// Keystore holds named secrets.
type Keystore interface {
	// Get returns the secret stored under key, or an error wrapping ErrNotFound.
	Get(key string) ([]byte, error)
	// Set stores secret under key, replacing any previous value.
	Set(key string, secret []byte) error
	// Remove deletes key; removing a key that is not there is not an error.
	Remove(key string) error
}

var (
	// ErrNotFound reports a key the keystore does not hold.
	ErrNotFound = errors.New("secret not found in keyring")
	// ErrBadPassphrase reports a file-backend passphrase that does not open the keyring.
	ErrBadPassphrase = errors.New("wrong keyring passphrase")
	// ErrNoPassphrase reports that the file backend needs a passphrase and none was given.
	ErrNoPassphrase = errors.New("the file keyring needs a passphrase")
	// ErrDamaged reports keyring files that are not as medwallet wrote them.
	ErrDamaged = errors.New("keyring is damaged")
	// ErrUnavailable reports a backend that cannot run on this machine.
	ErrUnavailable = errors.New("keyring backend unavailable")
)

// Backends lists the backend names accepted by Config.Backend.
var Backends = []string{"auto", "secret-service", "keychain", "wincred", "kwallet", "pass", "keyctl", "file"}

// autoOrder is tried by "auto": durable OS keyrings first, then the file.
// keyctl is left out (its keys do not survive a reboot) and so is pass (it
// needs a GPG set-up the user chooses explicitly).
var autoOrder = []keyring.BackendType{
	keyring.WinCredBackend, keyring.KeychainBackend,
	keyring.SecretServiceBackend, keyring.KWalletBackend, keyring.FileBackend,
}

// Config chooses and configures a backend.
type Config struct {
	// Backend is one of Backends; "" means "auto".
	Backend string
	// FileDir is the directory of the file backend.
	FileDir string
	// Passphrase returns the file backend's passphrase; it is called at most
	// once, and only when a secret is first read or written.
	Passphrase func(prompt string) (string, error)
	// PassDir is the password-store directory of the pass backend ("" for pass's default).
	PassDir string
	// ScryptLogN is the scrypt cost (log2 N, 10 to 22) with which a new file
	// keyring derives its key; 0 means 16. Only tests lower it. An existing
	// keyring keeps the cost recorded when it was made.
	ScryptLogN int
}

// ValidateBackend checks a backend name.
func ValidateBackend(name string) error {
	if name == "" || slices.Contains(Backends, name) {
		return nil
	}
	return fmt.Errorf("unknown keyring backend %q (want one of %s)", name, strings.Join(Backends, ", "))
}

// Open opens the configured backend. It returns the keystore and the name
// of the backend actually chosen, which callers record so that later runs
// find the same keyring.
func Open(cfg Config) (Keystore, string, error) {
	if err := ValidateBackend(cfg.Backend); err != nil {
		return nil, "", err
	}
	allowed := autoOrder
	if cfg.Backend != "" && cfg.Backend != "auto" {
		allowed = []keyring.BackendType{keyring.BackendType(cfg.Backend)}
	}
	logN := cfg.ScryptLogN
	if logN == 0 {
		logN = defaultLogN
	}
	if logN < minLogN || logN > maxLogN {
		return nil, "", fmt.Errorf("keyring: scrypt cost %d outside %d to %d", logN, minLogN, maxLogN)
	}
	var kdf *fileKDF
	kcfg := keyring.Config{
		AllowedBackends:          allowed,
		ServiceName:              ServiceName,
		KeychainName:             "login",
		KeychainTrustApplication: true,
		FileDir:                  cfg.FileDir,
		KeyCtlScope:              "user",
		KWalletAppID:             ServiceName,
		KWalletFolder:            ServiceName,
		LibSecretCollectionName:  "login",
		PassDir:                  cfg.PassDir,
		PassPrefix:               ServiceName,
		WinCredPrefix:            ServiceName,
	}
	if slices.Contains(allowed, keyring.FileBackend) {
		if cfg.FileDir == "" {
			return nil, "", fmt.Errorf("%w: file backend has no directory", ErrUnavailable)
		}
		kdf = &fileKDF{dir: cfg.FileDir, passphrase: cfg.Passphrase, logN: logN}
		kcfg.FilePasswordFunc = kdf.password
	}
	ring, err := keyring.Open(kcfg)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", ErrUnavailable, backendLabel(cfg.Backend), err)
	}
	// keyring.Open does not say which backend it picked; probe by type.
	name := chosenBackend(ring, allowed)
	ks := &ringStore{ring: ring}
	if name == string(keyring.FileBackend) {
		return &checkedStore{inner: ks}, name, nil
	}
	return ks, name, nil
}

func backendLabel(b string) string {
	if b == "" {
		return "auto"
	}
	return b
}

func chosenBackend(ring keyring.Keyring, allowed []keyring.BackendType) string {
	if len(allowed) == 1 {
		return string(allowed[0])
	}
	t := fmt.Sprintf("%T", ring)
	for _, b := range []struct {
		typ  string
		name keyring.BackendType
	}{
		{"*keyring.fileKeyring", keyring.FileBackend},
		{"*keyring.secretsKeyring", keyring.SecretServiceBackend},
		{"*keyring.kwalletKeyring", keyring.KWalletBackend},
		{"*keyring.keychain", keyring.KeychainBackend},
		{"*keyring.windowsKeyring", keyring.WinCredBackend},
	} {
		if t == b.typ {
			return string(b.name)
		}
	}
	return "auto"
}

type ringStore struct {
	ring keyring.Keyring
}

func (s *ringStore) Get(key string) ([]byte, error) {
	it, err := s.ring.Get(key)
	if errors.Is(err, keyring.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	if err != nil {
		return nil, mapErr(err)
	}
	return it.Data, nil
}

func (s *ringStore) Set(key string, secret []byte) error {
	return mapErr(s.ring.Set(keyring.Item{Key: key, Data: secret, Label: "medwallet " + key}))
}

func (s *ringStore) Remove(key string) error {
	err := s.ring.Remove(key)
	if errors.Is(err, keyring.ErrKeyNotFound) || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return mapErr(err)
}

func mapErr(err error) error {
	if err == nil || errors.Is(err, ErrNoPassphrase) || errors.Is(err, ErrBadPassphrase) || errors.Is(err, ErrDamaged) {
		return err
	}
	return fmt.Errorf("keyring: %w", err)
}

// Memory is an in-memory Keystore for tests.
type Memory struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemory returns an empty in-memory keystore.
func NewMemory() *Memory { return &Memory{m: map[string][]byte{}} }

// Get implements Keystore.
func (m *Memory) Get(key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return slices.Clone(v), nil
}

// Set implements Keystore.
func (m *Memory) Set(key string, secret []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = slices.Clone(secret)
	return nil
}

// Remove implements Keystore.
func (m *Memory) Remove(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

func randRead(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
}
