package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/vault"
)

// publishGrant stores, for each granted record, a copy of its manifest
// encrypted to the grantee on peers (so the grantee can find and check the
// shares), then pushes the wallet's feed.
func (w *Wallet) publishGrant(ctx context.Context, grantee consent.ID, recipient *age.X25519Recipient, infos []RecordInfo) error {
	id, err := w.Identity()
	if err != nil {
		return err
	}
	c, err := w.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, info := range infos {
		m, err := w.manifest(info.ID)
		if err != nil {
			return err
		}
		env, err := m.Encrypt(id.Signing, recipient)
		if err != nil {
			return err
		}
		if _, err := c.PutManifest(ctx, info.ID, grantee, env, ManifestReplicas); err != nil {
			return err
		}
	}
	return w.Publish(ctx, c)
}

// publishFeed dials the network and pushes the wallet's feed.
func (w *Wallet) publishFeed(ctx context.Context) error {
	c, err := w.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return w.Publish(ctx, c)
}

// pull ingests into the local ledger every entry the peers hold beyond it.
// It returns how many entries joined.
func (w *Wallet) pull(ctx context.Context, c *client.Client) (int, error) {
	l, _, err := w.openLedger(true)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	have := map[consent.ID]uint64{}
	l.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			have[a] = v.Head(a).Seq
		}
	})
	entries, err := c.Pull(ctx, have)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		acc, err := l.Ingest(e)
		n += len(acc)
		if err != nil && !errors.Is(err, consent.ErrEquivocation) && !errors.Is(err, consent.ErrDuplicate) {
			return n, fmt.Errorf("an entry from the network does not verify: %w: %w", ErrVerify, err)
		}
	}
	return n, nil
}

// catchUp pulls the ledger before the wallet signs anything new, when it
// has a network: a wallet restored from a key backup must continue its
// feed where the network has it, never fork it (an equivocation).
func (w *Wallet) catchUp(ctx context.Context) error {
	if !w.HasNetwork() {
		return nil
	}
	_, err := w.PullLedger(ctx)
	return err
}

// PullLedger brings the local ledger up to date with the network.
func (w *Wallet) PullLedger(ctx context.Context) (int, error) {
	c, err := w.Dial(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return w.pull(ctx, c)
}

// Inbox lists the grants made to this wallet, after pulling the ledger
// from the network when there is one.
func (w *Wallet) Inbox(ctx context.Context) ([]GrantInfo, error) {
	if w.HasNetwork() {
		if _, err := w.PullLedger(ctx); err != nil {
			return nil, err
		}
	}
	all, err := w.Grants(ctx)
	if err != nil {
		return nil, err
	}
	out := []GrantInfo{}
	for _, g := range all {
		if !g.Given {
			out = append(out, g)
		}
	}
	return out, nil
}

// ImportOptions select what Import fetches.
type ImportOptions struct {
	// Grant is a grant ID or unique prefix; or From names a contact (or
	// ID) whose active grants to this wallet are all imported.
	Grant, From string
	// OutDir receives the records (created if needed).
	OutDir string
	// Progress receives plaintext byte counts.
	Progress vault.Progress
	// Emergency, instead of Grant or From, imports Patient's records under
	// their emergency policy, declaring Reason on the ledger first.
	Emergency       bool
	Patient, Reason string
}

// ImportedRecord is one record written by Import.
type ImportedRecord struct {
	Grant  consent.Hash
	Owner  consent.ID
	Record string
	File   string
	Size   int64
	Format string
	// BreakGlass is the break-glass entry of an emergency import.
	BreakGlass consent.Hash
}

// Import fetches the records of grants made to this wallet: for each
// record it finds the manifest copy encrypted to this wallet, checks the
// owner's signature and that the key matches the one wrapped in the grant,
// then fetches at least k shares through the peers' consent check,
// verifies every block and decrypts into OutDir. Files are never
// overwritten.
func (w *Wallet) Import(ctx context.Context, o ImportOptions) ([]ImportedRecord, error) {
	switch {
	case o.Emergency && (o.Grant != "" || o.From != ""):
		return nil, WithHint(fmt.Errorf("an emergency import names a patient, not a grant or a contact: %w", ErrInvalid), "pass --patient ID --reason TEXT")
	case !o.Emergency && (o.Patient != "" || o.Reason != ""):
		return nil, WithHint(fmt.Errorf("--patient and --reason go with --emergency: %w", ErrInvalid), "add --emergency, or name a grant")
	case !o.Emergency && (o.Grant == "") == (o.From == ""):
		return nil, WithHint(fmt.Errorf("name a grant or a contact: %w", ErrInvalid), "pass GRANT_ID or --from CONTACT")
	}
	c, err := w.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := w.pull(ctx, c); err != nil {
		return nil, err
	}
	// Our identity entry (age recipient and role, no name) goes to the
	// network, so that others can address grants to our ID.
	if err := w.Publish(ctx, c); err != nil {
		return nil, err
	}
	if o.Emergency {
		return w.importEmergency(ctx, c, o)
	}
	grants, err := w.importGrants(o)
	if err != nil {
		return nil, err
	}
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	if o.OutDir == "" {
		o.OutDir = "."
	}
	if err := os.MkdirAll(o.OutDir, 0o700); err != nil {
		return nil, err
	}
	var out []ImportedRecord
	for _, g := range grants {
		op := opener{recipient: w.ID(), key: id.Age}
		if g.IsRole() {
			l, _, err := w.openLedger(false)
			if err != nil {
				return out, err
			}
			l.View(func(v *consent.View) {
				if k, _ := w.heldRoleKey(v, g, id.Age); k != nil {
					op = opener{recipient: g.Grantee, key: k}
				}
			})
			l.Close()
		}
		if out, err = w.importKeys(ctx, c, op, g, o, out); err != nil {
			return out, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the grants name no record this wallet can open: %w", ErrNotFound)
	}
	return out, nil
}

// importKeys imports every record whose key grant g wraps, appending to out.
func (w *Wallet) importKeys(ctx context.Context, c *client.Client, op opener, g *consent.GrantInfo, o ImportOptions, out []ImportedRecord) ([]ImportedRecord, error) {
	for _, wk := range g.Keys {
		rec, err := w.importRecord(ctx, c, op, g, wk, o)
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("grant %s names no record: %w", g.ID.String()[:12], ErrNotFound)
	}
	return out, nil
}

// importGrants picks the active grants to this wallet that o names.
func (w *Wallet) importGrants(o ImportOptions) ([]*consent.GrantInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	now := w.Now().Unix()
	var out []*consent.GrantInfo
	var ferr error
	l.View(func(v *consent.View) {
		if o.Grant != "" {
			g, err := findGrant(v, o.Grant)
			if err != nil {
				ferr = err
				return
			}
			if !w.reaches(v, g) {
				ferr = fmt.Errorf("grant %s is not made to you: %w", g.ID.String()[:12], ErrDenied)
				return
			}
			if g.IsEmergency() {
				ferr = WithHint(fmt.Errorf("grant %s is an emergency grant: %w", g.ID.String()[:12], ErrDenied),
					"in an emergency, run 'medwallet import --emergency --patient ID --reason TEXT'")
				return
			}
			out = append(out, g)
			return
		}
		from, err := w.Resolve(o.From)
		if err != nil {
			ferr = err
			return
		}
		for _, g := range v.Grants() {
			if g.Author == from.Card.ID && w.reaches(v, g) && !g.IsEmergency() && !v.Revoked(g.ID) &&
				g.NotBefore <= now && (g.Expires == 0 || now < g.Expires) {
				out = append(out, g)
			}
		}
		if len(out) == 0 {
			ferr = fmt.Errorf("no active grant from %s to you: %w", o.From, ErrNotFound)
		}
	})
	return out, ferr
}

// opener is how this wallet opens a grant's keys and manifest copies: as
// itself, or through a role key; with a break-glass entry for an
// emergency grant.
type opener struct {
	recipient  consent.ID // the grant's grantee: this wallet, or a role ID
	key        age.Identity
	breakGlass consent.Hash
}

// reaches reports whether grant g is made to this wallet, directly or to a
// role it holds a credential for (in any state: peers judge validity).
func (w *Wallet) reaches(v *consent.View, g *consent.GrantInfo) bool {
	if g.Grantee == w.ID() {
		return true
	}
	if !g.IsRole() {
		return false
	}
	for _, c := range v.CredentialsOf(w.ID()) {
		if c.Reaches(&g.Grant) {
			return true
		}
	}
	return false
}

func (w *Wallet) importRecord(ctx context.Context, c *client.Client, op opener, g *consent.GrantInfo, wk consent.WrappedKey, o ImportOptions) (ImportedRecord, error) {
	ownerPub, err := g.Author.PublicKey()
	if err != nil {
		return ImportedRecord{}, err
	}
	key, err := unwrapKey(wk.Key, op.key)
	if err != nil {
		return ImportedRecord{}, fmt.Errorf("record %s: the wrapped key does not open: %w", wk.Record, ErrVerify)
	}
	m, err := w.grantedManifest(ctx, c, g.Author, ownerPub, wk.Record, op)
	if errors.Is(err, ErrNotFound) && w.grantRevoked(g.ID) {
		// A rotation after the revocation removed our manifest copy: the
		// peers would refuse us anyway, so say why.
		return ImportedRecord{}, fmt.Errorf("record %s: %w: revoked (and the record was re-keyed)", wk.Record, ErrDenied)
	}
	if err != nil {
		return ImportedRecord{}, err
	}
	if m.Key != key.String() {
		return ImportedRecord{}, fmt.Errorf("record %s: the manifest's key differs from the one in the grant: %w", wk.Record, ErrVerify)
	}
	access := client.Access{Owner: g.Author, Record: wk.Record, Scope: g.Scopes[0], Purpose: g.Purpose, BreakGlass: op.breakGlass}
	getter := c.Getter(access)
	name := filepath.Join(o.OutDir, wk.Record+extension(m.Metadata))
	f, err := fsutil.CreateNew(name, 0o600)
	if err == nil {
		defer f.Abort()
		err = vault.Open(ctx, m, getter, f, vault.OpenOptions{Progress: o.Progress})
		if err != nil && len(getter.Denials) > 0 {
			return ImportedRecord{}, WithHint(fmt.Errorf("record %s: %w: %s", wk.Record, ErrDenied, getter.Denials[0].Reason),
				"the grant may be revoked or expired: check 'medwallet inbox'")
		}
		if err != nil {
			return ImportedRecord{}, fmt.Errorf("record %s: %w", wk.Record, err)
		}
		err = f.Commit()
	}
	if errors.Is(err, fs.ErrExist) {
		return ImportedRecord{}, fmt.Errorf("%q: %w", name, ErrExists)
	}
	if err != nil {
		return ImportedRecord{}, err
	}
	return ImportedRecord{Grant: g.ID, Owner: g.Author, Record: wk.Record, File: name,
		Size: m.Metadata.Size, Format: m.Metadata.Format, BreakGlass: op.breakGlass}, nil
}

// grantRevoked reports whether the local ledger holds a revocation of g.
func (w *Wallet) grantRevoked(g consent.Hash) bool {
	l, _, err := w.openLedger(false)
	if err != nil {
		return false
	}
	defer l.Close()
	revoked := false
	l.View(func(v *consent.View) { revoked = v.Revoked(g) })
	return revoked
}

// grantedManifest finds and checks the copy of a record's manifest that
// its owner encrypted to this wallet.
func (w *Wallet) grantedManifest(ctx context.Context, c *client.Client, owner consent.ID, ownerPub ed25519.PublicKey, record string, op opener) (*vault.Manifest, error) {
	var role consent.ID
	if op.recipient != w.ID() {
		role = op.recipient
	}
	copies, err := c.ListManifestsFor(ctx, owner, record, role)
	if err != nil {
		return nil, err
	}
	var lastErr error = fmt.Errorf("record %s: no peer holds its manifest for you: %w", record, ErrNotFound)
	for _, cp := range copies {
		if cp.Recipient != op.recipient {
			continue
		}
		m, err := vault.DecryptManifest(cp.Envelope, ownerPub, op.key)
		if err != nil {
			lastErr = fmt.Errorf("record %s: a manifest copy does not verify: %w: %w", record, ErrVerify, err)
			continue
		}
		if m.RecordID.String() != record {
			lastErr = fmt.Errorf("record %s: a manifest copy names another record: %w", record, ErrVerify)
			continue
		}
		return m, nil
	}
	return nil, lastErr
}

func unwrapKey(wrapped []byte, me age.Identity) (*age.X25519Identity, error) {
	r, err := age.Decrypt(bytes.NewReader(wrapped), me)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return nil, err
	}
	return age.ParseX25519Identity(strings.TrimSpace(string(b)))
}

// extension picks a file name extension from a record's detected format.
func extension(md vault.Metadata) string {
	switch md.Format {
	case "fhir-r4":
		return ".json"
	case "ccda":
		return ".xml"
	case "dicom":
		return ".dcm"
	case "pdf":
		return ".pdf"
	}
	return ".bin"
}

// AccessInfo is one logged decision on a request for one of my records.
type AccessInfo struct {
	Entry         consent.Hash
	Time          time.Time
	Decider       consent.ID
	Requester     consent.ID
	RequesterName string
	Record        string
	Scope         string
	Purpose       string
	Allow         bool
	Reason        consent.Reason
	Grant         consent.Hash
	// Emergency accesses: the break-glass entry the request named, its
	// stated reason (decrypted) and, for an allow, the end of the time box.
	BreakGlass      consent.Hash
	EmergencyReason string
	Until           time.Time
}

// Emergency reports whether the access was made under an emergency
// (break-glass) declaration.
func (a AccessInfo) Emergency() bool { return !a.BreakGlass.IsZero() }

// AccessLog lists every logged decision on requests for this wallet's
// records, oldest first, from the local ledger (pull first to see the
// network's).
func (w *Wallet) AccessLog(ctx context.Context) ([]AccessInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var me age.Identity
	if id, err := w.Identity(); err == nil {
		me = id.Age
	}
	opened := map[consent.Hash]string{}
	// reasons decrypts a break-glass reason once per entry.
	reasons := func(v *consent.View, h consent.Hash) string {
		if s, ok := opened[h]; ok {
			return s
		}
		s := ""
		if b, ok := v.BreakGlass(h); ok && me != nil {
			if p, err := decryptWith(b.Reason, me, consent.MaxReasonSize); err == nil {
				s = string(p)
			}
		}
		opened[h] = s
		return s
	}
	var out []AccessInfo
	l.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			for _, e := range v.Feed(a) {
				if e.Kind != consent.KindAccess {
					continue
				}
				b, err := e.DecodedBody()
				if err != nil {
					continue
				}
				ab := b.(*consent.AccessBody)
				r, err := consent.DecodeRequest(ab.Request)
				if err != nil || r.Owner != w.ID() {
					continue
				}
				ai := AccessInfo{Entry: e.Hash(), Time: consent.TimeOf(e.Time), Decider: e.Author,
					Requester: r.Requester, RequesterName: w.NameOf(r.Requester), Record: r.Record, Scope: r.Scope,
					Purpose: r.Purpose, Allow: ab.Allow, Reason: ab.Reason, Grant: ab.Grant, BreakGlass: r.BreakGlass}
				if ab.Until != 0 {
					ai.Until = consent.TimeOf(ab.Until)
				}
				if !r.BreakGlass.IsZero() {
					ai.EmergencyReason = reasons(v, r.BreakGlass)
				}
				out = append(out, ai)
			}
		}
	})
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Entry.String() < out[j].Entry.String()
	})
	return out, nil
}

// SyncResult says what Sync brought back.
type SyncResult struct {
	Entries  int `json:"entries"`
	Records  int `json:"records"`
	Restored int `json:"restored"`
	Grants   int `json:"grants"`
}

// Sync rebuilds the wallet from the network: it pulls the ledger, fetches
// the wallet's own manifests from peers (each must verify and match its
// anchor on the wallet's feed), saves the missing ones locally, and pushes
// the wallet's feed back. After 'key import' on a new machine this brings
// back every record, grant and log entry.
func (w *Wallet) Sync(ctx context.Context) (SyncResult, error) {
	var res SyncResult
	c, err := w.Dial(ctx)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if res.Entries, err = w.pull(ctx, c); err != nil {
		return res, err
	}
	id, err := w.Identity()
	if err != nil {
		return res, err
	}
	anchors := map[string]consent.Hash{}
	l, _, err := w.openLedger(false)
	if err != nil {
		return res, err
	}
	l.View(func(v *consent.View) {
		for _, e := range v.Feed(w.ID()) {
			if e.Kind != consent.KindAnchor {
				continue
			}
			if b, err := e.DecodedBody(); err == nil {
				a := b.(*consent.AnchorBody)
				anchors[a.Record] = a.Manifest
			}
		}
	})
	l.Close()
	copies, err := c.ListManifests(ctx, w.ID(), "")
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(w.recordsPath(), 0o700); err != nil {
		return res, err
	}
	pub := id.Signing.Public().(ed25519.PublicKey)
	for _, cp := range copies {
		if cp.Recipient != w.ID() {
			continue
		}
		want, anchored := anchors[cp.Record]
		if !anchored || consent.Hash(vault.ManifestHash(cp.Envelope)) != want {
			continue // stale, removed or foreign: the ledger decides what is current
		}
		m, err := vault.DecryptManifest(cp.Envelope, pub, id.Age)
		if err != nil || m.RecordID.String() != cp.Record {
			continue
		}
		res.Records++
		path := w.manifestPath(cp.Record)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := fsutil.WriteFileNew(path, cp.Envelope, 0o600); err != nil {
			return res, err
		}
		res.Restored++
	}
	if err := w.Publish(ctx, c); err != nil {
		return res, err
	}
	gs, err := w.Grants(ctx)
	if err != nil {
		return res, err
	}
	res.Grants = len(gs)
	return res, nil
}
