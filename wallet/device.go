package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/pairing"
	"github.com/medwallet/medwallet/vault"
)

// Devices (consent/device.go). The wallet made by init is the primary: it
// holds the identity's signing key. A paired device holds its own Ed25519
// key (it signs its own feed, on the patient's behalf) and the patient's
// age identity (it reads the records), never the primary's signing key.
// Its wallet.json names the patient's card and the device's ID; its
// keyring item holds the device key, the patient's age identity and the
// device's own age identity; device.json holds its device entry, the
// first entry of its feed.
//
// The primary adds a device (OfferDevice: a one-time code, p2p/pairing);
// the new device joins with the code (JoinDevice); the primary revokes a
// device (RevokeDevice), which gives the patient a new age identity
// (agekey.go). Records are added, and devices added and revoked,
// on the primary; grants and revocations of grants, and reading records,
// on any device.

const (
	deviceFile    = "device.json"
	devicesFile   = "devices.json"
	deviceVersion = 1
	// maxDeviceLabel bounds a label in characters.
	maxDeviceLabel = 64
)

// ErrPrimaryOnly reports a use case only the primary device may run.
var ErrPrimaryOnly = errors.New("only the primary device can do this")

// IsDevice reports whether this wallet is a paired device (not the
// primary).
func (w *Wallet) IsDevice() bool { return w.device != "" }

// FeedID is the feed this wallet signs: a paired device's own, or the
// identity's.
func (w *Wallet) FeedID() consent.ID {
	if w.device != "" {
		return w.device
	}
	return w.card.ID
}

// primaryOnly refuses what a paired device cannot do.
func (w *Wallet) primaryOnly(what string) error {
	if w.device != "" {
		return fmt.Errorf("%w: %s (this is a paired device)", ErrPrimaryOnly, what)
	}
	return nil
}

// matchesIdentity checks that the keyring's secrets belong to this wallet:
// the identity's, or on a paired device its own key and the identity's age
// key.
func (w *Wallet) matchesIdentity(id *Identity) error {
	if w.device == "" {
		return id.matches(w.card)
	}
	got, err := consent.IDFromPublicKey(id.Signing.Public().(ed25519.PublicKey))
	if err != nil || got != w.device {
		return fmt.Errorf("the signing key is not this device's: %w", ErrVerify)
	}
	if !id.holds(w.card.AgeRecipient) {
		return fmt.Errorf("the age key does not belong to this identity card: %w", ErrVerify)
	}
	return nil
}

// ownerKey is the identity's public key, which signs the manifests.
func (w *Wallet) ownerKey(id *Identity) ed25519.PublicKey {
	if w.device == "" {
		return id.Signing.Public().(ed25519.PublicKey)
	}
	pub, err := w.card.ID.PublicKey()
	if err != nil {
		panic(err) // a parsed card's ID is a key
	}
	return pub
}

// sealManifest encrypts m's signed envelope to recipient: signed afresh
// on the primary; on a paired device, which cannot sign as the owner, the
// owner's signed envelope of the local copy is encrypted again.
func (w *Wallet) sealManifest(m *vault.Manifest, id *Identity, recipient age.Recipient) ([]byte, error) {
	if w.device == "" {
		return m.Encrypt(id.Signing, recipient)
	}
	enc, err := os.ReadFile(w.manifestPath(m.RecordID.String()))
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(bytes.NewReader(enc), id.Opener())
	if err != nil {
		return nil, fmt.Errorf("record %s: manifest: %w: %w", m.RecordID, ErrVerify, err)
	}
	env, err := io.ReadAll(io.LimitReader(r, vault.MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	aw, err := age.Encrypt(&buf, recipient)
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(env); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// manifestOwners are the IDs under which peers may hold copies of owner's
// manifests for a grantee: the owner's, and those of its devices that
// granted (a device puts copies as itself).
func manifestOwners(v *consent.View, owner consent.ID) []consent.ID {
	out := []consent.ID{owner}
	for _, d := range v.Devices(owner) {
		out = append(out, d.Device)
	}
	return out
}

// deviceState is device.json on a paired device.
type deviceState struct {
	Version int    `json:"version"`
	Label   string `json:"label"`
	Added   int64  `json:"added"`
	// Entry is the device entry's body (canonical CBOR), signed by the
	// owner: the first entry of this device's feed.
	Entry []byte `json:"entry"`
}

// appendDeviceEntry appends the device entry that opens this device's feed.
func (w *Wallet) appendDeviceEntry(l *consent.Ledger, s consent.Signer) error {
	var st deviceState
	if err := w.readHomeJSON(deviceFile, &st, func() bool { return st.Version == deviceVersion }); err != nil {
		return err
	}
	var b consent.DeviceBody
	if err := consent.Unmarshal(st.Entry, &b); err != nil || b.Validate() != nil || b.Device != w.device {
		return fmt.Errorf("%s is damaged: %w", deviceFile, ErrInvalid)
	}
	if _, err := l.Append(s, time.Unix(st.Added, 0), consent.KindDevice, &b); err != nil {
		return fmt.Errorf("writing the device entry: %w", err)
	}
	return nil
}

// DeviceInfo describes one of the identity's devices.
type DeviceInfo struct {
	ID    consent.ID `json:"id"`
	Label string     `json:"label"`
	Added time.Time  `json:"added"`
	// Revoked is set once the primary revoked the device; Cut is then
	// its last entry that still counts.
	Revoked bool   `json:"revoked"`
	Cut     uint64 `json:"cut,omitempty"`
	// This is the device this wallet runs on.
	This bool `json:"this"`
	// OnLedger is false for a device added here whose feed the local
	// ledger does not hold yet (it publishes it when it joins; sync).
	OnLedger bool `json:"on_ledger"`
}

// knownDevices is devices.json on the primary: the devices it added.
type knownDevices struct {
	Version int          `json:"version"`
	Devices []DeviceInfo `json:"devices"`
}

func (w *Wallet) readKnownDevices() (knownDevices, error) {
	k := knownDevices{Version: deviceVersion}
	err := w.readHomeJSON(devicesFile, &k, func() bool { return k.Version == deviceVersion })
	return k, err
}

// Devices lists the identity's devices: those the ledger holds (labels
// decrypted with the identity's age key) and those added here that it does
// not hold yet, by label then ID. The primary itself is not listed.
func (w *Wallet) Devices(ctx context.Context) ([]DeviceInfo, error) {
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	known, err := w.readKnownDevices()
	if err != nil {
		return nil, err
	}
	// A paired device's ledger holds its own device entry from its first
	// use: opening it for writing writes it.
	l, _, err := w.openLedger(w.device != "")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []DeviceInfo
	l.View(func(v *consent.View) {
		for _, d := range v.Devices(w.ID()) {
			di := DeviceInfo{ID: d.Device, Label: openLabel(d.Label, id.Opener()), Added: time.Unix(d.Time, 0).UTC(),
				This: d.Device == w.device, OnLedger: true}
			di.Cut, di.Revoked = v.DeviceCut(d.Device)
			out = append(out, di)
		}
	})
	for _, k := range known.Devices {
		if !slices.ContainsFunc(out, func(d DeviceInfo) bool { return d.ID == k.ID }) {
			k.OnLedger, k.This = false, false
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b DeviceInfo) int {
		if c := strings.Compare(a.Label, b.Label); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	return out, nil
}

// openLabel decrypts a device entry's label; "" if it cannot.
func openLabel(ct []byte, id age.Identity) string {
	if len(ct) == 0 {
		return ""
	}
	r, err := age.Decrypt(bytes.NewReader(ct), id)
	if err != nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r, consent.MaxDeviceLabel))
	if err != nil {
		return ""
	}
	return string(b)
}

// checkLabel checks a device label: 1 to 64 printable characters.
func checkLabel(label string) error {
	if label == "" || len([]rune(label)) > maxDeviceLabel || strings.ContainsFunc(label, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return &InputError{Field: FieldDeviceLabel, Problem: Malformed, Value: label, Reason: "a device label is 1 to 64 printable characters"}
	}
	return nil
}

// pairPayload is what the primary sends a new device, encrypted to the
// device's own age recipient.
type pairPayload struct {
	Version     int    `json:"version"`
	Card        string `json:"card"`
	AgeIdentity string `json:"age_identity"`
	// RetiredAge are the patient's retired age identities, newest first
	// (agekey.go): a device paired after a rotation reads older items too.
	RetiredAge []string         `json:"retired_age,omitempty"`
	Label      string           `json:"label"`
	Added      int64            `json:"added"`
	Entry      []byte           `json:"entry"` // the device entry's body, canonical CBOR
	Network    *netfile.Network `json:"network,omitempty"`
}

// DeviceOffer is a pairing code the primary serves until a device joins
// with it, it expires, or the offer is closed.
type DeviceOffer struct {
	w     *Wallet
	h     host.Host
	o     *pairing.Offer
	code  pairing.Code
	label string
}

// OfferOptions tune OfferDevice.
type OfferOptions struct {
	// Label names the new device ("" picks "device N").
	Label string
	// Listen are the multiaddrs the pairing host listens on (nil: every
	// interface, TCP and QUIC, ports chosen by the system).
	Listen []string
	// TTL is how long the code stays valid (0: pairing.DefaultTTL).
	TTL time.Duration
}

// OfferDevice starts pairing a new device: it listens with a throw-away
// libp2p key and returns the offer, whose Code the user types or scans on
// the new device. Only the primary adds devices.
func (w *Wallet) OfferDevice(ctx context.Context, o OfferOptions) (*DeviceOffer, error) {
	if err := w.primaryOnly("add a device"); err != nil {
		return nil, err
	}
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	known, err := w.readKnownDevices()
	if err != nil {
		return nil, err
	}
	label := o.Label
	if label == "" {
		label = fmt.Sprintf("device %d", len(known.Devices)+1)
	}
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	for _, d := range known.Devices {
		if d.Label == label {
			return nil, &ExistsError{Kind: KindDevice, Ref: label}
		}
	}
	var net *netfile.Network
	if n, err := netfile.Read(w.NetworkPath()); err == nil {
		net = &n
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	listen := o.Listen
	if len(listen) == 0 {
		listen = node.DefaultListen
	}
	h, err := node.New(priv, node.Options{Listen: listen})
	if err != nil {
		return nil, &NetworkError{Op: OpPair, Err: err}
	}
	signer, err := consent.NewKeySigner(id.Signing)
	if err != nil {
		h.Close()
		return nil, err
	}
	seal := func(j pairing.Joiner) ([]byte, error) {
		dev := consent.ID(j.Device.String())
		rcpt, err := age.ParseX25519Recipient(j.Recipient)
		if err != nil {
			return nil, fmt.Errorf("the new device's age recipient: %w", err)
		}
		var lb bytes.Buffer
		lw, err := age.Encrypt(&lb, id.Age.Recipient())
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(lw, label); err != nil {
			return nil, err
		}
		if err := lw.Close(); err != nil {
			return nil, err
		}
		body, err := consent.NewDeviceBody(signer, dev, j.Recipient, lb.Bytes())
		if err != nil {
			return nil, err
		}
		entry, err := consent.Marshal(body)
		if err != nil {
			return nil, err
		}
		pp := pairPayload{Version: deviceVersion, Card: w.card.String(), AgeIdentity: id.Age.String(),
			Label: label, Added: w.Now().Unix(), Entry: entry, Network: net}
		for _, r := range id.Retired {
			pp.RetiredAge = append(pp.RetiredAge, r.String())
		}
		p, err := json.Marshal(pp)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		aw, err := age.Encrypt(&out, rcpt)
		if err != nil {
			return nil, err
		}
		if _, err := aw.Write(p); err != nil {
			return nil, err
		}
		if err := aw.Close(); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	off, code, err := pairing.NewOffer(h, o.TTL, w.cfg.Now, seal)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &DeviceOffer{w: w, h: h, o: off, code: code, label: label}, nil
}

// Code is the offer's one-time code.
func (d *DeviceOffer) Code() pairing.Code { return d.code }

// Label is the label the new device gets.
func (d *DeviceOffer) Label() string { return d.label }

// Expires is when the code expires.
func (d *DeviceOffer) Expires() time.Time { return d.o.Expires() }

// Close ends the offer: the code is dead.
func (d *DeviceOffer) Close() {
	d.o.Close()
	d.h.Close()
}

// Wait waits for a device to join with the code, records it in
// devices.json, and returns it. It fails when the code expires, too many
// wrong codes are tried, or the device does not finish; nothing is
// recorded then.
func (d *DeviceOffer) Wait(ctx context.Context) (DeviceInfo, error) {
	j, err := d.o.Wait(ctx)
	if err != nil {
		return DeviceInfo{}, fmt.Errorf("%w: %w", ErrPairing, err)
	}
	di := DeviceInfo{ID: consent.ID(j.Device.String()), Label: d.label, Added: d.w.Now().UTC().Truncate(time.Second)}
	known, err := d.w.readKnownDevices()
	if err != nil {
		return di, err
	}
	known.Devices = append(known.Devices, di)
	if err := d.w.writeHomeJSON(devicesFile, known); err != nil {
		return di, err
	}
	return di, nil
}

// ErrPairing reports a pairing that did not happen; it wraps the reason
// (pairing.ErrDenied, ErrExpired, ErrUsed, ErrOfferEnded ...).
var ErrPairing = errors.New("pairing failed")

// JoinDevice makes a wallet in cfg.Home for a new device of the identity
// whose primary shows code: it creates the device's keys, pairs (the
// primary proves the code and sends the identity's card and age key), and
// stores the keys in the keyring and the public state in cfg.Home. It
// refuses to replace a wallet. Any failure leaves no wallet, no keyring
// item and no device entry. It then publishes the device's feed and
// pulls the identity's ledger, when the primary sent its network file.
func JoinDevice(ctx context.Context, cfg Config, codeText string) (*Wallet, error) {
	code, err := pairing.ParseCode(codeText)
	if err != nil {
		return nil, &InputError{Field: FieldCode, Problem: Malformed, Err: err}
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, stateFile)); err == nil {
		return nil, &ExistsError{Kind: KindWallet, Ref: cfg.Home}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	devAge, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	devID, err := consent.IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	h, err := node.New(priv, node.Options{})
	if err != nil {
		return nil, &NetworkError{Op: OpPair, Err: err}
	}
	defer h.Close()
	var w *Wallet
	var undo func()
	err = pairing.Join(ctx, h, code, devAge.Recipient().String(), func(payload []byte) error {
		w, undo, err = createDevice(cfg, payload, priv, devID, devAge)
		return err
	})
	if err != nil {
		if undo != nil {
			undo()
		}
		if errors.Is(err, pairing.ErrUnreachable) {
			return nil, &NetworkError{Op: OpPair, Err: err}
		}
		return nil, fmt.Errorf("%w: %w", ErrPairing, err)
	}
	return w, nil
}

// createDevice opens the payload and writes the device's wallet; undo
// removes what it wrote.
func createDevice(cfg Config, payload []byte, priv ed25519.PrivateKey, devID consent.ID, devAge *age.X25519Identity) (*Wallet, func(), error) {
	r, err := age.Decrypt(bytes.NewReader(payload), devAge)
	if err != nil {
		return nil, nil, fmt.Errorf("opening what the primary sent: %w: %w", ErrVerify, err)
	}
	b, err := io.ReadAll(io.LimitReader(r, pairing.MaxPayload))
	if err != nil {
		return nil, nil, err
	}
	var p pairPayload
	if err := json.Unmarshal(b, &p); err != nil || p.Version != deviceVersion {
		return nil, nil, fmt.Errorf("what the primary sent: %w", ErrInvalid)
	}
	card, err := consent.ParseCard(p.Card)
	if err != nil {
		return nil, nil, fmt.Errorf("the identity card the primary sent: %w", err)
	}
	ageID, err := age.ParseX25519Identity(p.AgeIdentity)
	if err != nil {
		return nil, nil, fmt.Errorf("the age key the primary sent is not the card's: %w", ErrVerify)
	}
	id := &Identity{Signing: priv, Age: ageID, DeviceAge: devAge}
	for _, r := range p.RetiredAge {
		a, err := age.ParseX25519Identity(r)
		if err != nil {
			return nil, nil, fmt.Errorf("the age keys the primary sent: %w", ErrVerify)
		}
		id.Retired = append(id.Retired, a)
	}
	if !id.holds(card.AgeRecipient) {
		return nil, nil, fmt.Errorf("the age key the primary sent is not the card's: %w", ErrVerify)
	}
	var body consent.DeviceBody
	if err := consent.Unmarshal(p.Entry, &body); err != nil || body.Validate() != nil ||
		body.Owner != card.ID || body.Device != devID || body.AgeRecipient != devAge.Recipient().String() {
		return nil, nil, fmt.Errorf("the device entry the primary sent is not for this device: %w", ErrVerify)
	}
	w, err := create(cfg, card, id)
	if err != nil {
		return nil, nil, err
	}
	w.device = devID
	undo := func() {
		if ks, err := w.keystore(); err == nil {
			_ = ks.Remove(secretPrefix + string(card.ID))
		}
		for _, f := range []string{deviceFile, stateFile, netfile.Name} {
			_ = os.Remove(filepath.Join(cfg.Home, f))
		}
	}
	// create wrote wallet.json without the device: write it again.
	st, _ := json.MarshalIndent(state{Version: stateVersion, Card: card.String(), KeyringBackend: w.backend, Device: devID}, "", "  ")
	if err := fsutil.WriteFileAtomic(filepath.Join(cfg.Home, stateFile), append(st, '\n'), 0o600); err != nil {
		undo()
		return nil, nil, err
	}
	if err := w.writeHomeJSON(deviceFile, deviceState{Version: deviceVersion, Label: p.Label, Added: p.Added, Entry: p.Entry}); err != nil {
		undo()
		return nil, nil, err
	}
	if p.Network != nil && cfg.Network == "" {
		if err := netfile.Write(filepath.Join(cfg.Home, netfile.Name), *p.Network); err != nil && !errors.Is(err, fs.ErrExist) {
			undo()
			return nil, nil, err
		}
	}
	return w, undo, nil
}

// RevokeDevice withdraws one of the identity's devices, named by its ID
// (or a prefix of at least 8 characters) or its label: after catching up
// with the network, it appends a device-revoke entry whose cut is the
// device's head as the ledger holds it, gives the patient a new age
// identity (the keyring first, then an age-key entry naming its
// recipient; agekey.go), and publishes both. Every peer then refuses the
// device's later grants and its requests. Then it re-keys
// (device_rekey.go): every record moves to a new record key and the
// grants that still stand are re-issued under the new keys, so the record
// keys the device saw open nothing any more. Only the primary revokes,
// and not itself.
//
// A device already revoked is not revoked again: RevokeDevice re-keys
// once more, which is how a re-keying cut short is finished. On an error
// after the revoke entry, the returned DeviceInfo is revoked and the
// DeviceRekey says what was re-keyed.
func (w *Wallet) RevokeDevice(ctx context.Context, ref string) (DeviceInfo, DeviceRekey, error) {
	var rk DeviceRekey
	if err := w.primaryOnly("revoke a device"); err != nil {
		return DeviceInfo{}, rk, err
	}
	defer w.holdLedger()()
	// One connection to the network for every step.
	var c *client.Client
	if w.HasNetwork() {
		var err error
		if c, err = w.Dial(ctx); err != nil {
			return DeviceInfo{}, rk, err
		}
		defer c.Close()
		if _, err := w.pull(ctx, c); err != nil { // catch up
			return DeviceInfo{}, rk, err
		}
		// A restore of an older key export takes the current age key
		// before it rotates to a new one (agekey.go).
		if _, err := w.pickUpAgeKey(ctx, c); err != nil {
			return DeviceInfo{}, rk, err
		}
	}
	ds, err := w.Devices(ctx)
	if err != nil {
		return DeviceInfo{}, rk, err
	}
	var match []DeviceInfo
	for _, d := range ds {
		if d.Label == ref || string(d.ID) == ref || len(ref) >= 8 && strings.HasPrefix(string(d.ID), ref) {
			match = append(match, d)
		}
	}
	switch {
	case len(match) == 0:
		return DeviceInfo{}, rk, &NotFoundError{Kind: KindDevice, Ref: ref}
	case len(match) > 1:
		return DeviceInfo{}, rk, &AmbiguousError{Kind: KindDevice, Ref: ref, Matches: len(match)}
	}
	d := match[0]
	if !d.Revoked {
		l, s, err := w.openLedger(true)
		if err != nil {
			return DeviceInfo{}, rk, err
		}
		// A device whose feed never reached us gets cut 0: nothing it
		// signs counts.
		var cut uint64
		l.View(func(v *consent.View) { cut = v.Head(d.ID).Seq })
		_, err = l.Append(s, w.Now(), consent.KindDeviceRevoke, &consent.DeviceRevokeBody{Device: d.ID, Cut: cut})
		l.Close()
		if err != nil {
			return DeviceInfo{}, rk, err
		}
		d.Revoked, d.Cut = true, cut
	}
	// The device held the patient's age identity: a new one, before
	// anything is sealed again (agekey.go).
	rotated, err := w.rotateAgeKey(d.ID)
	if err != nil {
		return d, rk, fmt.Errorf("the device is revoked, but rotating the age key stopped (run device revoke again to finish it): %w", err)
	}
	rk.AgeKeyRotated = rotated
	if rk.AgeRecipient, err = w.CurrentAgeRecipient(); err != nil {
		return d, rk, err
	}
	if c != nil {
		// The new age identity goes to the devices still standing and in
		// escrow before the age-key entry is on the network; the
		// revocation is published even if that failed (it matters more).
		var derr error
		rk.Delivery, derr = w.deliverAgeKey(ctx, c)
		if err := w.Publish(ctx, c); err != nil {
			return d, rk, fmt.Errorf("the device is revoked here but not yet on the network: %w", err)
		}
		if derr != nil {
			return d, rk, fmt.Errorf("the device is revoked, but delivering the new age key to your other devices stopped (run device revoke again to finish it): %w", derr)
		}
	}
	ak := rk
	rk, err = w.rekeyAfterDevice(ctx, c)
	rk.AgeKeyRotated, rk.AgeRecipient, rk.Delivery = ak.AgeKeyRotated, ak.AgeRecipient, ak.Delivery
	if err != nil {
		return d, rk, fmt.Errorf("the device is revoked, but re-keying stopped (run device revoke again to finish it): %w", err)
	}
	if c != nil {
		// The backup of local state, sealed to the new age key.
		if _, err := w.syncBackup(ctx, c); err != nil {
			return d, rk, fmt.Errorf("the device is revoked and the records re-keyed, but sealing the backup to the new age key stopped (run device revoke again to finish it): %w", err)
		}
	}
	return d, rk, nil
}

// PublishDevice publishes this paired device's feed (its device entry
// first) and pulls the identity's ledger: what a device does right after
// it joined.
func (w *Wallet) PublishDevice(ctx context.Context) error {
	if !w.HasNetwork() {
		return nil
	}
	if err := w.publishFeed(ctx); err != nil {
		return err
	}
	_, err := w.PullLedger(ctx)
	return err
}

// The device use cases' names for errors.go's types.
const (
	KindDevice       Kind  = "device"
	FieldDevice      Field = "device"       // a device's ID, ID prefix or label
	FieldDeviceLabel Field = "device label" // the label of a new device
	FieldCode        Field = "pairing code" // the code shown by device add
	OpPair                 = "pairing with the other device"
)

// deviceCopies adds to copies those the owner's devices put for a grantee
// (a device stores its copies under its own ID): only when the owner's
// own copies hold none.
func (w *Wallet) deviceCopies(ctx context.Context, c *client.Client, owner consent.ID, record string, role consent.ID, copies []manifests.Copy) []manifests.Copy {
	if len(copies) > 0 {
		return copies
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return copies
	}
	var owners []consent.ID
	l.View(func(v *consent.View) { owners = manifestOwners(v, owner)[1:] })
	l.Close()
	for _, o := range owners {
		if cs, err := c.ListManifestsFor(ctx, o, record, role); err == nil {
			copies = append(copies, cs...)
		}
	}
	return copies
}

// ownCopiesRecipient is what a manifest list names as recipient to get
// the identity's own copies: nothing on the primary (the owner gets every
// copy), the identity on a paired device.
func (w *Wallet) ownCopiesRecipient() consent.ID {
	if w.device != "" {
		return w.card.ID
	}
	return ""
}
