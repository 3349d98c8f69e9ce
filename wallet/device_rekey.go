package wallet

// Re-keying after a device revocation (RevokeDevice): every record of the
// identity goes to a new record key and the grants that still stand are
// re-issued under the new keys (rotate.go does the work, record by
// record and grant by grant).

import (
	"context"
	"fmt"
	"slices"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
)

// DeviceRekey says what re-keying after a device revocation did.
type DeviceRekey struct {
	// Records are the records moved to a new key.
	Records []RotatedRecord
	// Replaced are the grants that stood, re-issued under the new keys.
	Replaced []ReplacedGrant
	// AgeKeyRotated is set when this run gave the patient a new age
	// identity (agekey.go); AgeRecipient is the current one after it.
	AgeKeyRotated bool
	AgeRecipient  string
	// Delivery says where the current age identity was stored.
	Delivery AgeKeyDelivery
}

// rekeyAfterDevice moves every record this wallet holds to a new record
// key (new shares, old shares deleted, new manifest saved, anchored and
// published; rotateRecord) and re-issues every grant of the identity
// that still stands and wraps a record key (reissueGrant), so that the
// record keys a revoked device saw open nothing any more. Grants the
// revoked device signed after its cut are not the identity's and are not
// re-issued. The caller holds the ledger; c is its connection to the
// network (nil: none, or dial one).
func (w *Wallet) rekeyAfterDevice(ctx context.Context, c *client.Client) (DeviceRekey, error) {
	var res DeviceRekey
	defer w.holdContacts()()
	have, err := w.recordIDs()
	if err != nil {
		return res, err
	}
	if c == nil && w.HasNetwork() {
		if c, err = w.Dial(ctx); err != nil {
			return res, err
		}
		defer c.Close()
	}
	for _, rid := range have {
		rr, err := w.rotateRecord(ctx, c, rid)
		if rr.ID != "" {
			res.Records = append(res.Records, rr)
		}
		if err != nil {
			return res, fmt.Errorf("re-keying record %s: %w", rid, err)
		}
	}
	standing, err := w.standingGrants(have)
	if err != nil {
		return res, err
	}
	for _, og := range standing {
		rg, ok, err := w.reissueGrant(ctx, og)
		if ok {
			res.Replaced = append(res.Replaced, rg)
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// standingGrants are the identity's active grants (its own and those its
// devices signed before any cut) that wrap the key of one of records.
func (w *Wallet) standingGrants(records []string) ([]GrantInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []GrantInfo
	now := w.Now()
	l.View(func(v *consent.View) {
		book := w.contactBook()
		for _, g := range v.Grants() {
			if g.Author != w.ID() {
				continue
			}
			if g.Device != "" {
				if cut, revoked := v.DeviceCut(g.Device); revoked && g.Seq > cut {
					continue // signed by a revoked device after its cut: refused everywhere
				}
			}
			if !slices.ContainsFunc(g.Keys, func(k consent.WrappedKey) bool { return slices.Contains(records, k.Record) }) {
				continue
			}
			if gi := w.grantInfoWith(v, g, now, book); gi.Status == GrantActive {
				out = append(out, gi)
			}
		}
	})
	return out, nil
}
