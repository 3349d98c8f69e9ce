// Package wallet is the user's side of medwallet: the identity held in the
// OS keyring, the address book, the local state under the home directory,
// and the use cases the CLI and the TUI share (add a record, grant, revoke,
// import, audit, restore). Commands stay thin; the logic lives here.
//
// Only public state is written under the home directory (the signed
// identity card, contacts, encrypted manifests, the ledger); secrets live in
// the keyring and in memory.
package wallet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/wallet/keystore"
)

const (
	stateFile    = "wallet.json"
	stateVersion = 1
	secretPrefix = "identity/"
)

// Config says where a wallet lives and how to reach its keyring.
type Config struct {
	// Home is the wallet's directory.
	Home string
	// Keyring configures the OS keyring. An empty Backend means the backend
	// recorded when the wallet was made (or "auto" for a new wallet); an
	// empty FileDir means Home/keyring.
	Keyring keystore.Config
	// Keystore, when set, is used instead of opening Keyring (tests).
	Keystore keystore.Keystore
	// Network is the network file listing the peers to use; "" means
	// Home/network.json. Without one, records stay in the local store.
	Network string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// ExportWorkFactor is the scrypt work factor (log2 N) of key exports;
	// 0 means 18. Only tests lower it.
	ExportWorkFactor int
	// Witnesses is how many witnesses cosign each checkpoint of the
	// wallet's feed after a publish: 0 means DefaultWitnesses, a negative
	// number none (wallet/witness.go).
	Witnesses int
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// state is the public wallet.json.
type state struct {
	Version        int    `json:"version"`
	Card           string `json:"card"`
	KeyringBackend string `json:"keyring_backend"`
	// Device is set on a paired device (device.go): its own ID, whose key
	// signs for the identity of Card.
	Device consent.ID `json:"device,omitempty"`
}

// Identity is the secret half of a wallet.
type Identity struct {
	Signing ed25519.PrivateKey
	// Age is the patient's current age identity: what the wallet decrypts
	// with first and seals its own items to. Retired are the older ones,
	// newest first, kept to decrypt what was encrypted to them and never
	// encrypted to (agekey.go); the card's is the last of them once the
	// identity rotated.
	Age     *age.X25519Identity
	Retired []*age.X25519Identity
	// DeviceAge is a paired device's own age identity (device.go); nil on
	// the primary.
	DeviceAge *age.X25519Identity
}

// Wallet is an opened wallet. Secrets are read from the keyring only when a
// use case first needs them.
//
// Its methods are the use cases, one file each:
//
//   - the wallet itself (wallet.go): Home, Card, ID, KeyringBackend, Now,
//     Identity; its key backup (export.go): ExportKey
//   - contacts (contacts.go): Contacts, AddContact, RemoveContact, Resolve,
//     NameOf
//   - records (record.go): AddRecord, ListRecords, Record, RecordKey,
//     GetRecord, VerifyRecord, RemoveRecord
//   - consent given (grant.go): Grant, Grants, GrantShow, GrantFHIR, Revoke;
//     re-keying after a revocation (rotate.go): Rotate
//   - consent received (inbox.go, import.go): Inbox, Import
//   - credentials (credential.go): IssueCredential, Credentials,
//     RevokeCredential
//   - emergency access (emergency.go): EnableEmergency, EmergencyAccesses,
//     Review; the break-glass import is Import with Emergency set
//   - the access log (accesslog.go): AccessLog
//   - audit (audit.go): AuditLedger, Disclosures, DisclosuresFHIR,
//     NewRequest, DecideAccess
//   - the network (network.go, publish.go, sync.go): NetworkPath, HasNetwork,
//     Dial, Publish, PullLedger, Sync
//   - the local ledger (ledger.go): AnchorRecord, LedgerEntries,
//     ExportLedger, ImportLedger
type Wallet struct {
	cfg     Config
	card    consent.Card
	backend string
	device  consent.ID // a paired device's own ID (device.go)

	mu  sync.Mutex
	ks  keystore.Keystore
	sec *Identity

	held atomic.Pointer[[]Contact] // the contact book, held by a command that reads it often (rotate.go)
	lh   ledgerHold                // the local ledger, open for the use cases that hold it (ledger.go)
}

// ErrNoWallet reports a home directory without a wallet.
var ErrNoWallet = fmt.Errorf("no wallet here: %w", ErrNotFound)

// Init creates a new identity in cfg.Home: it refuses to replace an existing
// wallet, stores the secrets in the keyring and writes only public state.
func Init(cfg Config, name, role string) (*Wallet, error) {
	if err := consent.ValidateName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := consent.ValidateRole(role); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ageID, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	card, err := consent.NewCard(priv, ageID.Recipient().String(), name, role, cfg.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return create(cfg, card, &Identity{Signing: priv, Age: ageID})
}

// create stores id in the keyring and writes wallet.json for card.
func create(cfg Config, card consent.Card, id *Identity) (*Wallet, error) {
	path := filepath.Join(cfg.Home, stateFile)
	if _, err := os.Stat(path); err == nil {
		return nil, &ExistsError{Kind: KindWallet, Ref: cfg.Home}
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("creating the wallet directory: %w", err)
	}
	if err := os.Chmod(cfg.Home, 0o700); err != nil {
		return nil, err
	}
	w := &Wallet{cfg: cfg, card: card}
	ks, err := w.keystore()
	if err != nil {
		return nil, err
	}
	key := secretPrefix + string(card.ID)
	if err := ks.Set(key, encodeIdentity(id)); err != nil {
		return nil, fmt.Errorf("storing the identity in the keyring: %w", err)
	}
	st, _ := json.MarshalIndent(state{Version: stateVersion, Card: card.String(), KeyringBackend: w.backend}, "", "  ")
	if err := fsutil.WriteFileNew(path, append(st, '\n'), 0o600); err != nil {
		_ = ks.Remove(key)
		if errors.Is(err, fs.ErrExist) {
			return nil, &ExistsError{Kind: KindWallet, Ref: cfg.Home}
		}
		return nil, err
	}
	w.sec = id
	return w, nil
}

// Open opens the wallet in cfg.Home without touching the keyring.
func Open(cfg Config) (*Wallet, error) {
	b, err := os.ReadFile(filepath.Join(cfg.Home, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &NotFoundError{Kind: KindWallet, Ref: cfg.Home}
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", stateFile, ErrInvalid)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%s has unknown version %d: %w", stateFile, st.Version, ErrInvalid)
	}
	card, err := consent.ParseCard(st.Card)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	return &Wallet{cfg: cfg, card: card, backend: st.KeyringBackend, device: st.Device}, nil
}

// Home is the wallet's directory.
func (w *Wallet) Home() string { return w.cfg.Home }

// Card is the wallet's signed identity card.
func (w *Wallet) Card() consent.Card { return w.card }

// ID is the wallet's actor ID.
func (w *Wallet) ID() consent.ID { return w.card.ID }

// KeyringBackend names the keyring backend that holds the secrets.
func (w *Wallet) KeyringBackend() string {
	if w.backend == "" {
		return "custom"
	}
	return w.backend
}

// Now is the wallet's clock.
func (w *Wallet) Now() time.Time { return w.cfg.now() }

func (w *Wallet) keystore() (keystore.Keystore, error) {
	if w.ks != nil {
		return w.ks, nil
	}
	if w.cfg.Keystore != nil {
		w.ks = w.cfg.Keystore
		return w.ks, nil
	}
	kc := w.cfg.Keyring
	if kc.Backend == "" || kc.Backend == "auto" {
		if w.backend != "" {
			kc.Backend = w.backend
		}
	}
	if kc.FileDir == "" {
		kc.FileDir = filepath.Join(w.cfg.Home, "keyring")
	}
	ks, name, err := keystore.Open(kc)
	if err != nil {
		return nil, err
	}
	w.ks, w.backend = ks, name
	return ks, nil
}

// Identity returns the wallet's secrets, reading them from the keyring the
// first time.
func (w *Wallet) Identity() (*Identity, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sec != nil {
		return w.sec, nil
	}
	ks, err := w.keystore()
	if err != nil {
		return nil, err
	}
	b, err := ks.Get(secretPrefix + string(w.card.ID))
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, &NotFoundError{Kind: KindKey, Owner: w.KeyringBackend()}
	}
	if err != nil {
		return nil, err
	}
	id, err := decodeIdentity(b)
	if err != nil {
		return nil, err
	}
	if err := w.matchesIdentity(id); err != nil {
		return nil, err
	}
	w.sec = id
	return id, nil
}

// secretJSON is the keyring item (and, inside age, the key export).
type secretJSON struct {
	Version     int    `json:"version"`
	Ed25519Seed string `json:"ed25519_seed"`
	AgeIdentity string `json:"age_identity"`
	DeviceAge   string `json:"device_age,omitempty"`
	// RetiredAge are the retired age identities, newest first
	// (agekey.go).
	RetiredAge []string `json:"retired_age,omitempty"`
}

func encodeIdentity(id *Identity) []byte {
	s := secretJSON{
		Version:     1,
		Ed25519Seed: base64.StdEncoding.EncodeToString(id.Signing.Seed()),
		AgeIdentity: id.Age.String(),
	}
	if id.DeviceAge != nil {
		s.DeviceAge = id.DeviceAge.String()
	}
	for _, r := range id.Retired {
		s.RetiredAge = append(s.RetiredAge, r.String())
	}
	b, _ := json.Marshal(s)
	return b
}

func decodeIdentity(b []byte) (*Identity, error) {
	var s secretJSON
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return nil, fmt.Errorf("the keyring item for this wallet is damaged: %w", ErrInvalid)
	}
	seed, err := base64.StdEncoding.DecodeString(s.Ed25519Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("the keyring item for this wallet is damaged: %w", ErrInvalid)
	}
	a, err := age.ParseX25519Identity(s.AgeIdentity)
	if err != nil {
		return nil, fmt.Errorf("the keyring item for this wallet is damaged: %w", ErrInvalid)
	}
	id := &Identity{Signing: ed25519.NewKeyFromSeed(seed), Age: a}
	if s.DeviceAge != "" {
		if id.DeviceAge, err = age.ParseX25519Identity(s.DeviceAge); err != nil {
			return nil, fmt.Errorf("the keyring item for this wallet is damaged: %w", ErrInvalid)
		}
	}
	for _, r := range s.RetiredAge {
		a, err := age.ParseX25519Identity(r)
		if err != nil {
			return nil, fmt.Errorf("the keyring item for this wallet is damaged: %w", ErrInvalid)
		}
		id.Retired = append(id.Retired, a)
	}
	return id, nil
}

// matches checks that the secrets belong to card.
func (id *Identity) matches(card consent.Card) error {
	got, err := consent.IDFromPublicKey(id.Signing.Public().(ed25519.PublicKey))
	if err != nil || got != card.ID {
		return fmt.Errorf("the signing key does not belong to this identity card: %w", ErrVerify)
	}
	if !id.holds(card.AgeRecipient) {
		return fmt.Errorf("the age key does not belong to this identity card: %w", ErrVerify)
	}
	return nil
}
