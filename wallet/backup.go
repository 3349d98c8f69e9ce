package wallet

// Backup of local state (syncBackup): what the ledger and the manifests do
// not bring back after 'key import' or a guardian recovery. The address
// book (so grants show "Dr Bob", not an ID), the home files that record
// where records were placed and what witnesses cosigned, and the keyring
// items besides the identity (the role keys of the credentials this wallet
// issued). Records, their labels (inside the manifests), grants,
// credentials, emergency policies and reviews are on the ledger and the
// manifest store already.
//
// The backup is one JSON document, age-encrypted to the wallet's own
// recipient and signed with its identity key (age does not authenticate
// senders: a peer could otherwise slip in contacts of its choosing), kept
// on the owner's peers in the manifest store under a record ID derived
// from the owner's ID, so that a new backup replaces the old one on each
// peer (bounded per owner: one copy, at most maxBackup bytes). Sync
// restores it (merging: a contact, file or keyring item the wallet lacks
// is added; nothing it holds is replaced) when the network's copy is not
// the one this wallet last saw, then pushes the wallet's own state when it
// differs. HOME/backup.json records the hash of the last copy seen.

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/wallet/keystore"
)

const (
	backupFormat = "medwallet-backup-v1"
	backupSigCtx = "medwallet backup v1\n"
	backupFile   = "backup.json"
	// maxBackup bounds a backup, sealed.
	maxBackup = 4 << 20
)

// backedUpFiles are the home files a backup carries (contacts.json is
// merged contact by contact; the others are restored only when absent).
var backedUpFiles = []string{contactsFile, placementFile, witnessFile}

// backupJSON is the plaintext of a backup.
type backupJSON struct {
	Format string     `json:"format"`
	Owner  consent.ID `json:"owner"`
	// Files are home files by name, Keyring keyring items by key.
	Files   map[string][]byte `json:"files"`
	Keyring map[string][]byte `json:"keyring"`

	// stale is set on a backup fetched from the peers when a copy there
	// is sealed to a retired age key (agekey.go): it is sealed again.
	stale bool
}

// sealedBackup is the stored envelope.
type sealedBackup struct {
	Sealed []byte `json:"sealed"` // age ciphertext to the owner
	Sig    []byte `json:"sig"`    // by the owner over backupSigCtx || Sealed
}

// backupMarker is HOME/backup.json.
type backupMarker struct {
	Version int    `json:"version"`
	Last    string `json:"last"` // SHA-256 of the plaintext last restored or pushed
}

// BackupResult says what a sync did with the backup.
type BackupResult struct {
	// Restored is how many contacts, files and keyring items a backup
	// from the network added here.
	Restored int `json:"restored"`
	// Pushed is set when this wallet's state went to the peers.
	Pushed bool `json:"pushed"`
}

// localBackup gathers the wallet's backed-up state.
func (w *Wallet) localBackup() (*backupJSON, error) {
	b := &backupJSON{Format: backupFormat, Owner: w.ID(), Files: map[string][]byte{}, Keyring: map[string][]byte{}}
	for _, name := range backedUpFiles {
		data, err := os.ReadFile(filepath.Join(w.cfg.Home, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b.Files[name] = data
	}
	roles, err := w.issuedRoles()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	ks, err := w.keystore()
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for _, role := range roles {
		key := rolePrefix + string(w.ID()) + "/" + role
		v, err := ks.Get(key)
		if errors.Is(err, keystore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b.Keyring[key] = v
	}
	return b, nil
}

// issuedRoles lists the roles of the credentials this wallet issued: the
// role keys it holds in the keyring.
func (w *Wallet) issuedRoles() ([]string, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var roles []string
	l.View(func(v *consent.View) {
		for _, c := range v.Credentials() {
			if c.Issuer == w.ID() && !slices.Contains(roles, c.Role) {
				roles = append(roles, c.Role)
			}
		}
	})
	slices.Sort(roles)
	return roles, nil
}

func backupHash(b *backupJSON) (string, []byte) {
	plain, _ := json.Marshal(b) // maps encode with sorted keys: one state, one hash
	h := sha256.Sum256(plain)
	return hex.EncodeToString(h[:]), plain
}

// fetchBackup returns the newest backup of the wallet on the peers that
// verifies and opens, or nil.
func (w *Wallet) fetchBackup(ctx context.Context, c *client.Client, id *Identity) (*backupJSON, error) {
	copies, err := c.ListManifestsFor(ctx, w.ID(), consent.BackupRecord(w.ID()), w.ID())
	if err != nil {
		return nil, &NetworkError{Op: OpPull, Err: err}
	}
	pub := id.Signing.Public().(ed25519.PublicKey)
	var found []*backupJSON
	for _, cp := range copies {
		var sb sealedBackup
		if len(cp.Envelope) > maxBackup || json.Unmarshal(cp.Envelope, &sb) != nil ||
			!ed25519.Verify(pub, append([]byte(backupSigCtx), sb.Sealed...), sb.Sig) {
			continue
		}
		plain, err := decryptWith(sb.Sealed, id.Age, maxBackup)
		old := err != nil
		if old {
			if plain, err = decryptWith(sb.Sealed, id.Opener(), maxBackup); err != nil {
				continue
			}
		}
		var b backupJSON
		if json.Unmarshal(plain, &b) != nil || b.Format != backupFormat || b.Owner != w.ID() {
			continue
		}
		b.stale = old
		found = append(found, &b)
	}
	if len(found) == 0 {
		return nil, nil
	}
	// Peers that missed the last push hold an older copy: prefer the copy
	// most peers hold, the first listed on a tie.
	count := map[string]int{}
	best, bestN := found[0], 0
	stale := false
	for _, b := range found {
		h, _ := backupHash(b)
		if count[h]++; count[h] > bestN {
			best, bestN = b, count[h]
		}
		stale = stale || b.stale
	}
	best.stale = stale
	return best, nil
}

// restoreBackup merges b into the wallet and returns how many things it
// added.
func (w *Wallet) restoreBackup(b *backupJSON) (int, error) {
	n := 0
	if data, ok := b.Files[contactsFile]; ok {
		var cj contactsJSON
		if err := json.Unmarshal(data, &cj); err == nil && cj.Version == 1 {
			cs, err := w.Contacts()
			if err != nil {
				return n, err
			}
			added := false
			for _, c := range cj.Contacts {
				card, err := consent.ParseCard(c.Card)
				if err != nil || card.ID == w.ID() {
					continue
				}
				if slices.ContainsFunc(cs, func(o Contact) bool { return o.Name == c.Name || o.Card.ID == card.ID }) {
					continue
				}
				cs = append(cs, Contact{Name: c.Name, Card: card, Added: c.Added})
				added = true
				n++
			}
			if added {
				if err := w.saveContacts(cs); err != nil {
					return n, err
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.Files)) {
		if name == contactsFile || !slices.Contains(backedUpFiles, name) {
			continue
		}
		err := fsutil.WriteFileNew(filepath.Join(w.cfg.Home, name), b.Files[name], 0o600)
		if err == nil {
			n++
		} else if !errors.Is(err, os.ErrExist) {
			return n, err
		}
	}
	w.mu.Lock()
	ks, err := w.keystore()
	w.mu.Unlock()
	if err != nil {
		return n, err
	}
	prefix := rolePrefix + string(w.ID()) + "/"
	for _, key := range slices.Sorted(maps.Keys(b.Keyring)) {
		if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
			continue // only this identity's role keys
		}
		if _, err := ks.Get(key); err == nil {
			continue
		}
		if err := ks.Set(key, b.Keyring[key]); err != nil {
			return n, fmt.Errorf("storing a restored key in the keyring: %w", err)
		}
		n++
	}
	return n, nil
}

// syncBackup restores the network's backup when it is not the one this
// wallet last saw, then pushes the wallet's state when it differs from
// the network's (Sync).
func (w *Wallet) syncBackup(ctx context.Context, c *client.Client) (BackupResult, error) {
	var res BackupResult
	id, err := w.Identity()
	if err != nil {
		return res, err
	}
	var mk backupMarker
	if err := w.readHomeJSON(backupFile, &mk, func() bool { return mk.Version == 1 }); err != nil {
		return res, err
	}
	remote, err := w.fetchBackup(ctx, c, id)
	if err != nil {
		return res, err
	}
	remoteHash := ""
	if remote != nil {
		remoteHash, _ = backupHash(remote)
		if remoteHash != mk.Last {
			if res.Restored, err = w.restoreBackup(remote); err != nil {
				return res, err
			}
		}
	}
	local, err := w.localBackup()
	if err != nil {
		return res, err
	}
	h, plain := backupHash(local)
	if h != remoteHash || remote != nil && remote.stale {
		sealed, err := encryptTo(plain, id.Age.Recipient())
		if err != nil {
			return res, err
		}
		env, _ := json.Marshal(sealedBackup{Sealed: sealed, Sig: ed25519.Sign(id.Signing, append([]byte(backupSigCtx), sealed...))})
		if len(env) > maxBackup {
			return res, fmt.Errorf("the backup of the local state is over %d bytes: %w", maxBackup, ErrInvalid)
		}
		if _, err := c.PutManifest(ctx, consent.BackupRecord(w.ID()), w.ID(), env, len(c.Reachable())); err != nil {
			return res, &NetworkError{Op: OpPublish, Err: err}
		}
		res.Pushed = true
	}
	if h != mk.Last {
		if err := w.writeHomeJSON(backupFile, backupMarker{Version: 1, Last: h}); err != nil {
			return res, err
		}
	}
	return res, nil
}
