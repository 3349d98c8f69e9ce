package consent

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Devices. A patient's identity (the primary key) can enrol other devices
// that sign on its behalf without ever sharing the primary key: each
// device has an Ed25519 key and a feed of its own, so two devices that
// sign at the same moment append to two feeds and can never fork one.
//
// A device feed opens with a device entry (KindDevice, seq 1, authored by
// the device) whose body carries the owner's signature over the device's
// ID, its age recipient and its (encrypted) label: like a sub-feed's link,
// anyone holding the device feed can check that the owner enrolled it,
// whatever order the feeds arrive in. From then on the device's grants
// and revocations count as the owner's (a revocation by one device
// withdraws a grant made by another, or by the primary), and a request the
// device signs for the owner's record is the owner's own (reason owner).
//
// The owner withdraws a device with a device-revoke entry (KindDeviceRevoke)
// in its home feed naming the device and a cut: the device's last entry
// that still counts (its head as the owner's replica held it). Grants of
// the device at a seq after the cut are honoured by no peer
// (device-revoked), and no request of the device counts as the owner's
// any longer. The cut is a position in the device's chain, not a time:
// entry times are chosen by their author, and a stolen device could
// backdate; a seq it cannot change without equivocating. Several revokes
// of one device: the smallest cut counts. Revocations the device signed
// after its cut still withdraw (withdrawing consent discloses nothing,
// and counting them keeps the result independent of arrival order).
// A device that equivocated is untrusted like any author: its grants are
// honoured by no peer, and its requests are refused (equivocating-author).

// Context of the owner's signature in a device entry.
const deviceContext = "medwallet device v1\n"

// MaxDeviceLabel bounds a device entry's encrypted label.
const MaxDeviceLabel = 1024

// MaxDevices bounds the device heads one access entry names: a decider
// names the heads of at most this many of the owner's devices (those with
// the smallest IDs).
const MaxDevices = 32

// DeviceBody is the body of a device entry, the first entry of a device
// feed: the owner enrolling the device (the entry's author), the device's
// own age recipient (what the owner wraps a new age identity to when it
// rotates), an optional label encrypted to the owner's age recipient
// (opaque to peers: a device's name is nobody else's business), and the
// owner's signature over "medwallet device v1\n" || Device || "\n" ||
// AgeRecipient || "\n" || Label.
type DeviceBody struct {
	Owner        ID     `cbor:"1,keyasint" json:"owner"`
	Device       ID     `cbor:"2,keyasint" json:"device"`
	AgeRecipient string `cbor:"3,keyasint" json:"age_recipient"`
	Label        []byte `cbor:"4,keyasint,omitempty" json:"-"`
	Sig          []byte `cbor:"5,keyasint" json:"-"`
}

// DeviceMessage is what the owner signs to enrol a device.
func DeviceMessage(device ID, ageRecipient string, label []byte) []byte {
	m := []byte(deviceContext + string(device) + "\n" + ageRecipient + "\n")
	return append(m, label...)
}

// Validate checks the IDs, the recipient, the label's size and the
// owner's signature.
func (b *DeviceBody) Validate() error {
	for _, id := range []ID{b.Owner, b.Device} {
		if _, err := cachedPublicKey(id); err != nil {
			return malformed("device body: %v", err)
		}
	}
	if b.Owner == b.Device {
		return malformed("device body: a device is not its own owner")
	}
	if !strings.HasPrefix(b.AgeRecipient, "age1") || len(b.AgeRecipient) > 4096 || strings.ContainsAny(b.AgeRecipient, "\n") {
		return malformed("device body: age recipient is malformed")
	}
	if len(b.Label) > MaxDeviceLabel {
		return malformed("device body: label longer than %d bytes", MaxDeviceLabel)
	}
	if !verifySig(b.Owner, DeviceMessage(b.Device, b.AgeRecipient, b.Label), b.Sig) {
		return fmt.Errorf("device body: owner's signature: %w", ErrBadSignature)
	}
	return nil
}

// NewDeviceBody is the body of the device entry that opens device's feed:
// owner signs the enrolment.
func NewDeviceBody(owner Signer, device ID, ageRecipient string, label []byte) (*DeviceBody, error) {
	sig, err := owner.Sign(DeviceMessage(device, ageRecipient, label))
	if err != nil {
		return nil, fmt.Errorf("sign device enrolment: %w", err)
	}
	b := &DeviceBody{Owner: owner.ID(), Device: device, AgeRecipient: ageRecipient, Label: label, Sig: sig}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// DeviceRevokeBody is the body of a device-revoke entry, in the owner's
// home feed: the device withdrawn and the cut, the seq of the device's
// last entry that still counts.
type DeviceRevokeBody struct {
	Device ID     `cbor:"1,keyasint" json:"device"`
	Cut    uint64 `cbor:"2,keyasint" json:"cut"`
}

// Validate checks the device's ID.
func (b *DeviceRevokeBody) Validate() error {
	if _, err := cachedPublicKey(b.Device); err != nil {
		return malformed("device-revoke body: %v", err)
	}
	return nil
}

// DeviceHead is the head of one of the owner's device feeds that a
// decider held: an access entry names them (AccessBody.DeviceHeads) so that
// an auditor re-runs the decision on the same device grants.
type DeviceHead struct {
	Device ID   `cbor:"1,keyasint" json:"device"`
	Head   Head `cbor:"2,keyasint" json:"head"`
}

// checkDeviceHeads checks an access body's device heads: valid IDs,
// sorted by device without duplicates, at most MaxDevices.
func checkDeviceHeads(hs []DeviceHead) error {
	if len(hs) > MaxDevices {
		return malformed("access body: more than %d device heads", MaxDevices)
	}
	for i, h := range hs {
		if _, err := cachedPublicKey(h.Device); err != nil {
			return malformed("access body: device head: %v", err)
		}
		if i > 0 && hs[i-1].Device >= h.Device {
			return malformed("access body: device heads not sorted or repeated")
		}
		if h.Head.Seq == 0 {
			return malformed("access body: an empty device head")
		}
	}
	return nil
}

// DeviceInfo is a device a view holds the device entry of.
type DeviceInfo struct {
	DeviceBody
	Time int64 `json:"time"` // the device entry's time
}

// deviceRevocation is one device-revoke entry: its author, its seq in the
// author's feed, and its cut.
type deviceRevocation struct {
	author ID
	seq    uint64
	cut    uint64
}

// acceptDevice records a device entry that opens its own feed.
func (v *View) acceptDevice(e *Entry, b *DeviceBody) {
	if e.Seq != 1 || b.Device != e.Author {
		return
	}
	v.addDevice(&DeviceInfo{DeviceBody: *b, Time: e.Time})
}

// addDevice records a device and indexes it by owner.
func (v *View) addDevice(d *DeviceInfo) {
	if v.devices == nil {
		v.devices = make(map[ID]*DeviceInfo)
		v.devicesBy = make(map[ID][]ID)
	}
	dev, owner := v.intern(d.Device), v.intern(d.Owner)
	if _, ok := v.devices[dev]; !ok {
		i, _ := slices.BinarySearch(v.devicesBy[owner], dev)
		v.devicesBy[owner] = slices.Insert(v.devicesBy[owner], i, dev)
	}
	v.devices[dev] = d
}

// acceptDeviceRevoke records a device-revoke entry; whether it counts
// (its author owns the device) is asked when it is used, since the
// device's feed may come later.
func (v *View) acceptDeviceRevoke(e *Entry, b *DeviceRevokeBody) {
	if v.deviceRevs == nil {
		v.deviceRevs = make(map[ID][]deviceRevocation)
	}
	v.deviceRevs[b.Device] = append(v.deviceRevs[b.Device], deviceRevocation{author: v.intern(e.Author), seq: e.Seq, cut: b.Cut})
}

// actsFor is the identity author's grants and revocations count for: the
// owner of a device feed, or author itself.
func (v *View) actsFor(author ID) ID {
	if d, ok := v.devices[author]; ok {
		return v.intern(d.Owner)
	}
	return author
}

// Device returns the device entry of device's feed, if the view holds it.
func (v *View) Device(device ID) (*DeviceInfo, bool) {
	d, ok := v.devices[device]
	return d, ok
}

// DeviceOwner reports the owner that enrolled device (ok false for any
// author that is not a device).
func (v *View) DeviceOwner(device ID) (ID, bool) {
	if d, ok := v.devices[device]; ok {
		return d.Owner, true
	}
	return "", false
}

// Devices returns the devices owner enrolled that the view holds, by ID.
func (v *View) Devices(owner ID) []*DeviceInfo {
	var out []*DeviceInfo
	for _, d := range v.devicesBy[owner] {
		out = append(out, v.devices[d])
	}
	return out
}

// DeviceCut reports whether device's owner revoked it and, if so, the cut:
// the seq of its last entry that still counts (the smallest cut of the
// owner's revocations of it).
func (v *View) DeviceCut(device ID) (uint64, bool) {
	d, ok := v.devices[device]
	if !ok {
		return 0, false
	}
	return cutOf(v.deviceRevs[device], d.Owner, func(deviceRevocation) bool { return true })
}

// cutOf is the smallest cut among revs by owner that visible admits.
func cutOf(revs []deviceRevocation, owner ID, visible func(deviceRevocation) bool) (uint64, bool) {
	var cut uint64
	found := false
	for _, r := range revs {
		if r.author != owner || !visible(r) {
			continue
		}
		if !found || r.cut < cut {
			cut, found = r.cut, true
		}
	}
	return cut, found
}

// DeviceHeads returns the heads of owner's device feeds the view holds,
// sorted by device, at most MaxDevices: what a decider names in an access
// entry (nil when owner has no device).
func DeviceHeads(v *View, owner ID) []DeviceHead {
	var out []DeviceHead
	for _, d := range v.Devices(owner) {
		if len(out) == MaxDevices {
			break
		}
		out = append(out, DeviceHead{Device: d.Device, Head: v.Head(d.Device)})
	}
	return out
}

// deviceOwner and deviceCut answer the policy for the live view.
func (v *View) deviceOwner(device ID) (ID, bool)   { return v.DeviceOwner(device) }
func (v *View) deviceCut(device ID) (uint64, bool) { return v.DeviceCut(device) }

// deviceGrantCounts reports whether a grant signed by a device still
// counts: the device has not equivocated and the grant lies within the
// device's cut. Grants of the primary always pass. reason is why not.
func deviceGrantCounts(v facts, g *GrantInfo) (ok bool, reason Reason) {
	if g.Device == "" {
		return true, ""
	}
	if v.Equivocating(g.Device) {
		return false, ReasonEquivocating
	}
	if cut, revoked := v.deviceCut(g.Device); revoked && g.Seq > cut {
		return false, ReasonDeviceRevoked
	}
	return true, ""
}

// decodeDeviceBody decodes and checks the body of a device or
// device-revoke entry.
func decodeDeviceBody(k Kind, b []byte) (any, error) {
	if k == KindDevice {
		var v DeviceBody
		if err := Unmarshal(b, &v); err != nil {
			return nil, malformed("device body: %v", err)
		}
		if err := v.Validate(); err != nil {
			return nil, err
		}
		return &v, nil
	}
	var v DeviceRevokeBody
	if err := Unmarshal(b, &v); err != nil {
		return nil, malformed("device-revoke body: %v", err)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

// stateDevice and stateDeviceRev are the devices and device revocations
// of a saved view state (state.go).
type stateDevice struct {
	_    struct{} `cbor:",toarray"`
	Time int64
	Body DeviceBody
}

type stateDeviceRev struct {
	_      struct{} `cbor:",toarray"`
	Device ID
	Author ID
	Seq    uint64
	Cut    uint64
}

// deviceState lists the view's devices by ID and its device revocations
// by device, author and seq.
func (v *View) deviceState() ([]stateDevice, []stateDeviceRev) {
	var ds []stateDevice
	for _, d := range v.devices {
		ds = append(ds, stateDevice{Time: d.Time, Body: d.DeviceBody})
	}
	slices.SortFunc(ds, func(a, b stateDevice) int { return cmp.Compare(a.Body.Device, b.Body.Device) })
	var rs []stateDeviceRev
	for dev, revs := range v.deviceRevs {
		for _, r := range revs {
			rs = append(rs, stateDeviceRev{Device: dev, Author: r.author, Seq: r.seq, Cut: r.cut})
		}
	}
	slices.SortFunc(rs, func(a, b stateDeviceRev) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Author, b.Author), cmp.Compare(a.Seq, b.Seq))
	})
	return ds, rs
}

// restoreDevices fills the view's devices from a saved state.
func (v *View) restoreDevices(ds []stateDevice, rs []stateDeviceRev) {
	for i := range ds {
		d := &ds[i]
		v.addDevice(&DeviceInfo{DeviceBody: d.Body, Time: d.Time})
	}
	for _, r := range rs {
		if v.deviceRevs == nil {
			v.deviceRevs = make(map[ID][]deviceRevocation)
		}
		dev := v.intern(r.Device)
		v.deviceRevs[dev] = append(v.deviceRevs[dev], deviceRevocation{author: v.intern(r.Author), seq: r.Seq, cut: r.Cut})
	}
}

// Feed is the feed that holds the grant's entry: the device's that signed
// it, or the owner's.
func (g *GrantInfo) Feed() ID {
	if g.Device != "" {
		return g.Device
	}
	return g.Author
}
