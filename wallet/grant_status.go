package wallet

import (
	"time"

	"github.com/medwallet/medwallet/consent"
)

// GrantVoid is the status of a grant that no peer honours although its
// author never revoked it: a device of the owner signed it after the
// owner revoked the device (after its cut), or the device equivocated
// (consent: device-revoked, equivocating-author). GrantInfo.VoidReason
// says which. A void grant is never active.
const GrantVoid = "void"

// Why a grant is void (GrantInfo.VoidReason): the peers' denial reasons.
const (
	VoidDeviceRevoked = string(consent.ReasonDeviceRevoked)
	VoidEquivocating  = string(consent.ReasonEquivocating)
)

// grantStatus is g's status at now, as every peer that holds the view's
// ledger sees it, and why it is void ("" unless void). Void comes first:
// such a grant counts for no peer, whatever its author said of it since.
func grantStatus(v *consent.View, g *consent.GrantInfo, now time.Time) (st, void string) {
	if why := voidReason(v, g); why != "" {
		return GrantVoid, why
	}
	return status(v.Revoked(g.ID), g.NotBefore, g.Expires, now), ""
}

// voidReason reports why a grant a device signed counts for no peer
// (consent.Decide: the device equivocated, or signed it after its cut),
// or "".
func voidReason(v *consent.View, g *consent.GrantInfo) string {
	if g.Device == "" {
		return ""
	}
	if v.Equivocating(g.Device) {
		return VoidEquivocating
	}
	if cut, revoked := v.DeviceCut(g.Device); revoked && g.Seq > cut {
		return VoidDeviceRevoked
	}
	return ""
}
