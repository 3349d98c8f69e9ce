package wallet

// Rotation: re-keying records after a revocation (Rotate).

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/vault"
)

// RotatedRecord is one record re-encrypted by Rotate.
type RotatedRecord struct {
	ID          string
	OldManifest vault.Hash
	NewManifest vault.Hash
	// OldSharesKept is set when the new shares are in place but deleting
	// the old ones failed; the error of Rotate says why.
	OldSharesKept bool
}

// ReplacedGrant pairs another party's grant that wrapped an old key with
// the grant that replaced it (same grantee, records, scopes, purpose and
// expiry, new keys).
type ReplacedGrant struct {
	Old, New GrantInfo
}

// RotateResult says what Rotate did.
type RotateResult struct {
	// Grant is the revoked grant whose records were rotated.
	Grant   GrantInfo
	Records []RotatedRecord
	// Replaced are the other grantees' grants, re-issued under the new keys.
	Replaced []ReplacedGrant
	// Stale are other active grants to the revoked grantee that cover a
	// rotated record: they are left alone and get no new key, so they open
	// nothing new (revoke them too).
	Stale []GrantInfo
}

// Rotate re-keys the records of a revoked grant, so that the key material
// the grantee saved opens nothing new: each record is streamed out of its
// shares into fresh shares under a new key (same record ID, same store),
// the new manifest replaces the old one locally and on peers and is
// anchored, then the old shares are deleted. The other grantees' active
// grants that cover a rotated record are re-issued with the new keys and
// the old ones revoked; the revoked grantee gets nothing new. What the
// grantee already imported cannot be recalled.
//
// A failure before a record's new manifest is saved deletes the new shares
// and leaves that record as it was. A failure after it (publishing,
// anchoring, deleting old shares) leaves the record readable under its new
// key and is reported; running Rotate again re-keys it once more.
func (w *Wallet) Rotate(ctx context.Context, grantRef string) (RotateResult, error) {
	defer w.holdLedger()() // its steps share one open ledger
	var res RotateResult
	defer w.holdContacts()()
	if err := w.catchUp(ctx); err != nil {
		return res, err
	}
	g, others, stale, err := w.rotationPlan(grantRef)
	if err != nil {
		return res, err
	}
	res.Grant, res.Stale = g.info, stale
	var c *client.Client
	if w.HasNetwork() {
		if c, err = w.Dial(ctx); err != nil {
			return res, err
		}
		defer c.Close()
	}
	for _, rid := range g.records {
		rr, err := w.rotateRecord(ctx, c, rid)
		if rr.ID != "" {
			res.Records = append(res.Records, rr)
		}
		if err != nil {
			return res, fmt.Errorf("rotating record %s: %w", rid, err)
		}
	}
	for _, og := range others {
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

// reissueGrant re-issues og, a grant of this wallet, under the records'
// current keys (same grantee, records still held, scopes, purpose and
// expiry) and revokes og. ok reports a grant re-issued (rg.New is set);
// rg.Old is og as revoked, or as it was if revoking it failed. A grant of
// records this wallet no longer holds is left alone (ok false, no error).
func (w *Wallet) reissueGrant(ctx context.Context, og GrantInfo) (rg ReplacedGrant, ok bool, err error) {
	opts := GrantOptions{To: string(og.Grantee), All: og.All, Scopes: og.Scopes, Purpose: og.Purpose.Code}
	if og.Role != "" {
		// A role grant is re-issued to the role (its key is the
		// issuer's current role key), with its time box.
		opts.To, opts.Role, opts.Issuer, opts.TimeBox = "", og.Role, string(og.Issuer), og.TimeBox
	}
	if !og.Expires.IsZero() {
		opts.Expires = og.Expires.UTC().Format(time.RFC3339)
	}
	if !og.All {
		for _, r := range og.Records {
			if _, err := os.Stat(w.manifestPath(r)); err == nil {
				opts.Records = append(opts.Records, r)
			}
		}
		if len(opts.Records) == 0 {
			return rg, false, nil
		}
	}
	ng, err := w.Grant(ctx, opts)
	if err != nil {
		return rg, false, fmt.Errorf("re-issuing grant %s to %s under the new keys: %w", og.ID.String()[:12], granteeLabel(og), err)
	}
	og2, err := w.Revoke(ctx, og.ID.String())
	if err != nil {
		return ReplacedGrant{Old: og, New: ng}, true, fmt.Errorf("grant %s was re-issued as %s, but revoking the old one failed: %w", og.ID.String()[:12], ng.ID.String()[:12], err)
	}
	return ReplacedGrant{Old: og2, New: ng}, true, nil
}

// holdContacts reads the contact book once and serves it from memory to
// the rest of the command: the plan and the Grant and Revoke of every
// re-issued grant would each read (and verify every card of) it again.
// The returned func ends the hold. A book that cannot be read is not
// held: each read reports it, as before.
func (w *Wallet) holdContacts() (release func()) {
	cs, err := w.Contacts()
	if err != nil {
		return func() {}
	}
	w.held.Store(&cs)
	return func() { w.held.Store(nil) }
}

func granteeLabel(g GrantInfo) string {
	if g.GranteeName != "" {
		return g.GranteeName
	}
	return g.Grantee.Short()
}

type rotation struct {
	info    GrantInfo
	records []string
}

// rotationPlan finds the revoked grant, the records whose keys it wrapped
// (those still in the wallet), the other active grants of this wallet that
// must be re-issued, and the active grants to the same grantee that are
// left as they are.
func (w *Wallet) rotationPlan(ref string) (rotation, []GrantInfo, []GrantInfo, error) {
	have, err := w.recordIDs()
	if err != nil {
		return rotation{}, nil, nil, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return rotation{}, nil, nil, err
	}
	defer l.Close()
	var rot rotation
	var others, stale []GrantInfo
	now := w.Now()
	l.View(func(v *consent.View) {
		var g *consent.GrantInfo
		if g, err = findGrant(v, ref); err != nil {
			return
		}
		if g.Author != w.ID() {
			err = fmt.Errorf("grant %s was not made by you: %w", g.ID.String()[:12], ErrDenied)
			return
		}
		if !v.Revoked(g.ID) {
			err = &InputError{Field: FieldGrant, Problem: Rejected, Value: g.ID.String()[:12],
				Reason: fmt.Sprintf("grant %s is not revoked", g.ID.String()[:12])}
			return
		}
		book := w.contactBook()
		rot.info = w.grantInfoWith(v, g, now, book)
		affected := map[string]bool{}
		for _, k := range g.Keys {
			if slices.Contains(have, k.Record) && !affected[k.Record] {
				affected[k.Record] = true
				rot.records = append(rot.records, k.Record)
			}
		}
		slices.Sort(rot.records)
		for _, o := range v.Grants() {
			if o.Author != w.ID() || o.ID == g.ID {
				continue
			}
			covers := false
			for _, k := range o.Keys {
				covers = covers || affected[k.Record]
			}
			if !covers {
				continue
			}
			oi := w.grantInfoWith(v, o, now, book)
			if oi.Status != GrantActive {
				continue
			}
			switch {
			case o.Grantee == g.Grantee:
				stale = append(stale, oi)
			default:
				others = append(others, oi)
			}
		}
	})
	if err == nil && len(rot.records) == 0 {
		err = fmt.Errorf("grant %s wrapped the key of no record this wallet still holds: %w", rot.info.ID.String()[:12], ErrNotFound)
	}
	return rot, others, stale, err
}

// rotateRecord re-encrypts one record under a fresh key, keeping its ID.
// c is the network client, or nil for the local share store.
func (w *Wallet) rotateRecord(ctx context.Context, c *client.Client, rid string) (RotatedRecord, error) {
	id, err := w.Identity()
	if err != nil {
		return RotatedRecord{}, err
	}
	old, err := w.loadManifest(rid)
	if err != nil {
		return RotatedRecord{}, err
	}
	oldEnc, err := os.ReadFile(w.manifestPath(rid))
	if err != nil {
		return RotatedRecord{}, err
	}
	var store vault.ShareStore
	k, n := old.K, old.N
	if c != nil {
		store = netShareStore{c.RecordStore(client.Access{Owner: w.ID(), Record: rid, Scope: ownerScope, Purpose: ownerPurpose})}
		if n, err = adaptN(c, k, n); err != nil {
			return RotatedRecord{}, err
		}
	} else if store, _, err = w.storeFor(ctx, RecordOptions{Local: true}, old); err != nil {
		return RotatedRecord{}, err
	}

	// Stream the plaintext out of the old shares into the new ones.
	pr, pw := io.Pipe()
	openErr := make(chan error, 1)
	go func() {
		err := vault.Open(ctx, old, store, pw, vault.OpenOptions{})
		pw.CloseWithError(err)
		openErr <- err
	}()
	created := old.Created
	m, err := vault.Seal(ctx, pr, store, vault.SealOptions{
		Params: vault.Params{K: k, N: n, StripeSize: int(old.StripeSize)},
		Owner:  id.Signing.Public().(ed25519.PublicKey),
		Label:  old.Metadata.Label,
		// A verified card stays verified: the plaintext is the same.
		Provenance: old.Metadata.Provenance,
		Now:        func() time.Time { return created },
		RecordID:   old.RecordID,
	})
	pr.CloseWithError(errors.New("rotation stopped"))
	oerr := <-openErr
	if err != nil {
		if oerr != nil {
			err = oerr
		}
		return RotatedRecord{}, sealErr(err) // Seal removed what it stored
	}
	discard := func(cause error) (RotatedRecord, error) {
		if err := vault.DeleteShares(context.WithoutCancel(ctx), m, store); err != nil {
			cause = fmt.Errorf("%w (and removing the new shares failed: %w)", cause, err)
		}
		return RotatedRecord{}, cause
	}
	if oerr != nil {
		return discard(oerr)
	}
	if m.CipherSize == 0 || m.Metadata.Size != old.Metadata.Size || m.Key == old.Key {
		return discard(fmt.Errorf("the re-encrypted record does not match the old one: %w", ErrVerify))
	}
	enc, err := m.Encrypt(id.Signing, id.Age.Recipient())
	if err != nil {
		return discard(err)
	}
	// The switch: from here on the record is the new manifest.
	if err := fsutil.WriteFileAtomic(w.manifestPath(rid), enc, 0o600); err != nil {
		return discard(fmt.Errorf("saving the new manifest: %w", err))
	}
	rr := RotatedRecord{ID: rid, OldManifest: vault.ManifestHash(oldEnc), NewManifest: vault.ManifestHash(enc)}
	keep := func(err error) (RotatedRecord, error) {
		rr.OldSharesKept = true
		return rr, fmt.Errorf("the record is on its new key but %w; the old shares are kept", err)
	}
	if c != nil {
		// Every stored copy of the old manifest goes (the revoked
		// grantee's too); other grantees get new copies with their
		// re-issued grants.
		if err := c.DeleteManifests(ctx, rid); err != nil {
			return keep(fmt.Errorf("removing the old manifest copies failed: %w", err))
		}
		if err := w.publishRecord(ctx, c, rid, enc); err != nil {
			return keep(fmt.Errorf("publishing the new manifest failed: %w", err))
		}
		// Peers that were offline drop the old shares when they learn it (retire.go).
		if err := w.retireOnPeers(ctx, c, retireBody(old, rr.OldManifest, false)); err != nil {
			return keep(fmt.Errorf("retiring the old shares failed: %w", err))
		}
	} else if _, err := w.AnchorRecord(ctx, rid); err != nil {
		return keep(fmt.Errorf("anchoring the new manifest failed: %w", err))
	}
	if err := w.noteRepairCap(ctx, c, m); err != nil { // repair.go
		return keep(fmt.Errorf("saving or publishing the repair capability failed: %w", err))
	}
	if err := vault.DeleteShares(ctx, old, store); err != nil {
		rr.OldSharesKept = true
		return rr, fmt.Errorf("the record is on its new key, but removing the old shares failed: %w", err)
	}
	return rr, nil
}
