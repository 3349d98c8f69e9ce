package wallet

// Age-key rotation (consent/agekey.go). Revoking a device gives the
// patient a new age identity: the device held the old one (devices share
// it to read manifests), so from then on manifests, backups and sealed
// identities go to the new one. The signing key, the card and the first
// (identity) entry never change; the ledger carries the new recipient in
// an age-key entry (kind 24) that only the identity signs.
//
// The keyring item holds the current age identity and the retired ones,
// newest first (Identity.Retired): everything is decrypted with the
// current one first, then the retired ones, and only the current one is
// ever encrypted to. The new one is written to the keyring before the
// age-key entry is appended, so a crash in between leaves a wallet that
// still opens everything (the ledger then names a retired identity, which
// the next device revoke finds and finishes with the same new identity).

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
)

// ageKeys is an age.Identity that tries the current age identity first,
// then the retired ones, newest first.
type ageKeys []*age.X25519Identity

// Unwrap implements age.Identity.
func (ks ageKeys) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, k := range ks {
		fk, err := k.Unwrap(stanzas)
		if errors.Is(err, age.ErrIncorrectIdentity) {
			continue
		}
		return fk, err
	}
	return nil, age.ErrIncorrectIdentity
}

// Opener is what decrypts an item encrypted to the patient: the current
// age identity, then the retired ones, newest first.
func (id *Identity) Opener() age.Identity {
	ks := make(ageKeys, 0, 1+len(id.Retired))
	ks = append(ks, id.Age)
	return append(ks, id.Retired...)
}

// holds reports whether recipient is the current age identity's or a
// retired one's.
func (id *Identity) holds(recipient string) bool {
	return id.ageFor(recipient) != nil
}

// ageFor returns the age identity (current or retired) whose recipient is
// recipient, nil if none.
func (id *Identity) ageFor(recipient string) *age.X25519Identity {
	if id.Age.Recipient().String() == recipient {
		return id.Age
	}
	for _, r := range id.Retired {
		if r.Recipient().String() == recipient {
			return r
		}
	}
	return nil
}

// withCurrent returns id with a as its current age identity, the previous
// current one retired first; a retired a leaves the list.
func (id *Identity) withCurrent(a *age.X25519Identity) *Identity {
	next := *id
	next.Age = a
	next.Retired = nil
	for _, r := range append([]*age.X25519Identity{id.Age}, id.Retired...) {
		if r.Recipient().String() != a.Recipient().String() {
			next.Retired = append(next.Retired, r)
		}
	}
	return &next
}

// storeIdentity replaces the keyring item with id, then the identity held
// in memory.
func (w *Wallet) storeIdentity(id *Identity) error {
	ks, err := w.keystore()
	if err != nil {
		return err
	}
	if err := ks.Set(secretPrefix+string(w.card.ID), encodeIdentity(id)); err != nil {
		return fmt.Errorf("storing the new age key in the keyring: %w", err)
	}
	w.mu.Lock()
	w.sec = id
	w.mu.Unlock()
	return nil
}

// CurrentAgeRecipient is the patient's current age recipient as the local
// ledger holds it: the newest age-key entry's, else the card's.
func (w *Wallet) CurrentAgeRecipient() (string, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return "", err
	}
	defer l.Close()
	return w.currentRecipientIn(l.Ledger), nil
}

func (w *Wallet) currentRecipientIn(l *consent.Ledger) string {
	r := w.card.AgeRecipient
	l.View(func(v *consent.View) {
		if k, ok := v.AgeKey(w.ID()); ok {
			r = k.AgeRecipient
		}
	})
	return r
}

// recipientOf is the age recipient to encrypt to party with: the newest
// age-key entry the view holds for it, else card (the contact's card, or
// its identity entry's recipient).
func recipientOf(v *consent.View, party consent.ID, card string) string {
	if k, ok := v.AgeKey(party); ok {
		return k.AgeRecipient
	}
	return card
}

// rotateAgeKey gives the identity a new age identity after revoking
// device: the keyring first (the new one current, the old ones retired),
// then an age-key entry in the identity's feed naming the new recipient.
// It does nothing when the newest age-key entry already rotated for
// device and the keyring's current identity is its; it appends the entry
// for the keyring's current identity, without making another, when a
// rotation stopped between the two. The caller holds the ledger and
// publishes. rotated reports whether an entry was appended.
func (w *Wallet) rotateAgeKey(device consent.ID) (rotated bool, err error) {
	if err := w.primaryOnly("rotate the age key"); err != nil {
		return false, err
	}
	id, err := w.Identity()
	if err != nil {
		return false, err
	}
	l, s, err := w.openLedger(true)
	if err != nil {
		return false, err
	}
	defer l.Close()
	cur := w.card.AgeRecipient
	var last *consent.AgeKeyInfo
	l.View(func(v *consent.View) {
		if k, ok := v.AgeKey(w.ID()); ok {
			last, cur = k, k.AgeRecipient
		}
	})
	mine := id.Age.Recipient().String()
	switch {
	case mine == cur && last != nil && last.Device == device:
		return false, nil // done for this device
	case mine != cur && id.holds(cur):
		// The keyring is ahead of the ledger: a rotation stopped after
		// writing the keyring. Finish it with the same identity.
	default:
		a, err := age.GenerateX25519Identity()
		if err != nil {
			return false, err
		}
		next := id.withCurrent(a)
		if err := w.storeIdentity(next); err != nil {
			return false, err
		}
		id = next
	}
	body := &consent.AgeKeyBody{AgeRecipient: id.Age.Recipient().String(), Reason: consent.AgeKeyDeviceRevoke, Device: device}
	if _, err := l.Append(s, w.Now(), consent.KindAgeKey, body); err != nil {
		return false, fmt.Errorf("writing the age-key entry: %w", err)
	}
	return true, nil
}

// Delivery and escrow. After a rotation the primary stores the patient's
// age identities (the current one and the retired ones) on its peers,
// under the owner blob consent.AgeKeyRecord, one copy per recipient:
//
//   - for each device still standing, encrypted to the age recipient its
//     device entry carries (consent.DeviceBody.AgeRecipient), addressed
//     to the device's ID;
//   - for the signing key, encrypted to the escrow passphrase derived from
//     the identity's Ed25519 seed (escrowPassphrase), addressed to the
//     identity's own ID: a restore of an older key export (which holds
//     the seed and an older age identity) gets the current one on sync.
//
// Each copy is signed by the identity (age does not authenticate the
// sender). Sync picks a copy up (pickUpAgeKey) when the ledger's current
// recipient is not the wallet's current one: it checks the signature,
// opens the copy, and checks that the current identity in it is the one
// whose recipient the newest age-key entry names.

const (
	ageKeyFormat = "medwallet-age-key-v1"
	ageKeySigCtx = "medwallet age key v1\n"
	// escrowInfo is the HKDF-SHA256 info of the escrow passphrase.
	escrowInfo = "medwallet age-key escrow v1"
	// maxAgeKeyBlob bounds a copy read from a peer.
	maxAgeKeyBlob = 64 << 10
)

// ageKeyPayload is the plaintext of a copy.
type ageKeyPayload struct {
	Format  string     `json:"format"`
	Owner   consent.ID `json:"owner"`
	Current string     `json:"current"`           // AGE-SECRET-KEY-1...
	Retired []string   `json:"retired,omitempty"` // newest first
}

// sealedAgeKey is a stored copy.
type sealedAgeKey struct {
	To     consent.ID `json:"to"`     // the device, or the owner for the escrow
	Sealed []byte     `json:"sealed"` // age ciphertext of an ageKeyPayload
	Sig    []byte     `json:"sig"`    // by the owner over ageKeySigCtx || To || "\n" || Sealed
}

func ageKeySigned(to consent.ID, sealed []byte) []byte {
	return append([]byte(ageKeySigCtx+string(to)+"\n"), sealed...)
}

// escrowPassphrase is the passphrase of the escrowed copy, derived from
// an Ed25519 seed: base64url (no padding) of HKDF-SHA256(secret = seed,
// salt = none, info = escrowInfo, 32 bytes). Only the holder of the
// signing key derives it. The copy is an age scrypt (passphrase) file, so
// every step is age's own or the standard library's; its 256 bits need
// no stretching, hence the low work factor.
func escrowPassphrase(seed []byte) (string, error) {
	k, err := hkdf.Key(sha256.New, seed, nil, escrowInfo, 32)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(k), nil
}

// escrowLogN is the scrypt work factor of the escrowed copy.
const escrowLogN = 10

// escrowRecipient and escrowIdentity seal and open the escrowed copy.
func escrowRecipient(seed []byte) (age.Recipient, error) {
	pass, err := escrowPassphrase(seed)
	if err != nil {
		return nil, err
	}
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(escrowLogN)
	return r, nil
}

func escrowIdentity(seed []byte) (age.Identity, error) {
	pass, err := escrowPassphrase(seed)
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, err
	}
	id.SetMaxWorkFactor(escrowLogN)
	return id, nil
}

// sealAgeKey makes the copy of id's age identities for to, encrypted to
// rcpt and signed by the identity.
func (w *Wallet) sealAgeKey(id *Identity, to consent.ID, rcpt age.Recipient) ([]byte, error) {
	p := ageKeyPayload{Format: ageKeyFormat, Owner: w.ID(), Current: id.Age.String()}
	for _, r := range id.Retired {
		p.Retired = append(p.Retired, r.String())
	}
	plain, _ := json.Marshal(p)
	sealed, err := encryptTo(plain, rcpt)
	if err != nil {
		return nil, err
	}
	return json.Marshal(sealedAgeKey{To: to, Sealed: sealed, Sig: ed25519.Sign(id.Signing, ageKeySigned(to, sealed))})
}

// AgeKeyDelivery says where the current age identity went.
type AgeKeyDelivery struct {
	// Devices are the devices still standing it was stored for.
	Devices []consent.ID
	// Escrowed is set when the copy for the signing key was stored.
	Escrowed bool
}

// deliverAgeKey stores the current age identity for each device still
// standing and in escrow for the signing key, replacing every earlier copy
// (a revoked device's included). Only the primary delivers.
func (w *Wallet) deliverAgeKey(ctx context.Context, c *client.Client) (AgeKeyDelivery, error) {
	var out AgeKeyDelivery
	if err := w.primaryOnly("deliver the age key"); err != nil {
		return out, err
	}
	id, err := w.Identity()
	if err != nil {
		return out, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return out, err
	}
	type target struct {
		to   consent.ID
		rcpt string
	}
	var targets []target
	l.View(func(v *consent.View) {
		for _, d := range v.Devices(w.ID()) {
			if _, revoked := v.DeviceCut(d.Device); !revoked {
				targets = append(targets, target{d.Device, d.AgeRecipient})
			}
		}
	})
	l.Close()
	record := consent.AgeKeyRecord(w.ID())
	if err := c.DeleteManifests(ctx, record); err != nil {
		return out, &NetworkError{Op: OpPublish, Err: err}
	}
	replicas := len(c.Reachable())
	for _, t := range targets {
		rcpt, err := age.ParseX25519Recipient(t.rcpt)
		if err != nil {
			continue // not an X25519 device: it cannot be delivered to
		}
		env, err := w.sealAgeKey(id, t.to, rcpt)
		if err != nil {
			return out, err
		}
		if _, err := c.PutManifest(ctx, record, t.to, env, replicas); err != nil {
			return out, &NetworkError{Op: OpPublish, Err: err}
		}
		out.Devices = append(out.Devices, t.to)
	}
	esc, err := escrowRecipient(id.Signing.Seed())
	if err != nil {
		return out, err
	}
	env, err := w.sealAgeKey(id, w.ID(), esc)
	if err != nil {
		return out, err
	}
	if _, err := c.PutManifest(ctx, record, w.ID(), env, replicas); err != nil {
		return out, &NetworkError{Op: OpPublish, Err: err}
	}
	out.Escrowed = true
	return out, nil
}

// pickUpAgeKey installs the current age identity from the peers when the
// ledger's newest age-key entry names a recipient the wallet's keyring
// does not hold as current: a paired device opens the copy for it with
// its own age identity, the primary (a restore of an older key export)
// the escrowed copy with the identity derived from its signing key. It
// reports whether it installed one; a copy that does not verify, or none
// at all, leaves the wallet as it is.
func (w *Wallet) pickUpAgeKey(ctx context.Context, c *client.Client) (bool, error) {
	id, err := w.Identity()
	if err != nil {
		return false, err
	}
	cur, err := w.CurrentAgeRecipient()
	if err != nil {
		return false, err
	}
	if id.holds(cur) {
		// Current already, or retired: then the keyring is ahead of the
		// ledger (a rotation cut short, which rotateAgeKey finishes).
		return false, nil
	}
	to, opener := w.ID(), age.Identity(nil)
	if w.device != "" {
		if id.DeviceAge == nil {
			return false, nil
		}
		to, opener = w.device, id.DeviceAge
	} else {
		esc, err := escrowIdentity(id.Signing.Seed())
		if err != nil {
			return false, err
		}
		opener = esc
	}
	copies, err := c.ListManifestsFor(ctx, w.ID(), consent.AgeKeyRecord(w.ID()), to)
	if err != nil {
		return false, &NetworkError{Op: OpPull, Err: err}
	}
	owner, err := w.card.ID.PublicKey()
	if err != nil {
		return false, err
	}
	for _, cp := range copies {
		next, ok := w.openAgeKey(cp.Envelope, to, owner, opener, id, cur)
		if !ok {
			continue
		}
		if err := w.storeIdentity(next); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// openAgeKey checks and opens one copy addressed to to: signed by owner,
// opened by opener, for this identity, its current age identity the one
// whose recipient is want. It returns id with that identity current and
// the copy's retired ones added.
func (w *Wallet) openAgeKey(env []byte, to consent.ID, owner ed25519.PublicKey, opener age.Identity, id *Identity, want string) (*Identity, bool) {
	var sk sealedAgeKey
	if len(env) > maxAgeKeyBlob || json.Unmarshal(env, &sk) != nil || sk.To != to ||
		!ed25519.Verify(owner, ageKeySigned(to, sk.Sealed), sk.Sig) {
		return nil, false
	}
	plain, err := decryptWith(sk.Sealed, opener, maxAgeKeyBlob)
	if err != nil {
		return nil, false
	}
	var p ageKeyPayload
	if json.Unmarshal(plain, &p) != nil || p.Format != ageKeyFormat || p.Owner != w.ID() {
		return nil, false
	}
	a, err := age.ParseX25519Identity(p.Current)
	if err != nil || a.Recipient().String() != want {
		return nil, false
	}
	next := id.withCurrent(a)
	for _, r := range p.Retired {
		ra, err := age.ParseX25519Identity(r)
		if err != nil {
			return nil, false
		}
		if !next.holds(ra.Recipient().String()) {
			next.Retired = append(next.Retired, ra)
		}
	}
	return next, true
}

// withClient dials the network and runs f with the client.
func (w *Wallet) withClient(ctx context.Context, f func(*client.Client) error) error {
	c, err := w.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}
