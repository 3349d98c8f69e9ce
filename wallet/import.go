package wallet

// Import: fetching and decrypting the records of grants made to this
// wallet (Import).

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
	"strings"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/vault"
)

// ImportOptions select what Import fetches.
type ImportOptions struct {
	// Grant is a grant ID or unique prefix; or From names a contact (or
	// ID) whose active grants to this wallet are all imported.
	Grant, From string
	// OutDir receives the records (created if needed, and removed again
	// if the import writes nothing). Each record is written as
	// LABEL-ID.EXT (importName), never over an existing file.
	OutDir string
	// Progress, if set, follows each record as it is fetched and
	// decrypted: one step per record, named by its file name.
	Progress Progress
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
	defer w.holdLedger()() // its steps share one open ledger
	switch {
	case o.Emergency && (o.Grant != "" || o.From != ""):
		return nil, &InputError{Field: FieldGrant, Problem: Conflict, With: FieldEmergency,
			Reason: "an emergency import names a patient, not a grant or a contact"}
	case !o.Emergency && (o.Patient != "" || o.Reason != ""):
		return nil, &InputError{Field: FieldPatient, Problem: Conflict, With: FieldEmergency,
			Reason: "a patient and a reason go with an emergency import"}
	case !o.Emergency && (o.Grant == "") == (o.From == ""):
		return nil, &InputError{Field: FieldGrant, Problem: Missing, Reason: "name a grant or a contact"}
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
	// network, so that others can address grants to our ID. Peers keep it
	// once a patient they serve names us (need to know): a refusal is no
	// reason to stop.
	if err := w.Publish(ctx, c); err != nil && !errors.Is(err, ledgersync.ErrNotAuthorised) {
		return nil, err
	}
	if o.Emergency {
		return w.importEmergency(ctx, c, o)
	}
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	grants, err := w.importGrants(o, id.Opener())
	if err != nil {
		return nil, err
	}
	out, err := w.importInto(ctx, c, grants, o)
	if err == nil && len(out) == 0 {
		return nil, fmt.Errorf("the grants name no record this wallet can open: %w", ErrNotFound)
	}
	return out, err
}

// importGrant is a grant to import from, with what the import needs to
// know about it from the local ledger, read once before anything is
// fetched.
type importGrant struct {
	g  *consent.GrantInfo
	op opener
	// revoked: the local ledger holds a revocation of the grant.
	revoked bool
}

// importInto imports the records of grants into o.OutDir. The
// directories it creates are removed again when it writes no record (a
// denied import leaves nothing behind).
func (w *Wallet) importInto(ctx context.Context, c *client.Client, grants []importGrant, o ImportOptions) (out []ImportedRecord, err error) {
	if o.OutDir == "" {
		o.OutDir = "."
	}
	created, err := mkdirAllNew(o.OutDir)
	defer func() {
		if len(out) == 0 {
			for _, d := range created {
				os.Remove(d) // only if empty: never a file someone else put there
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	for _, ig := range grants {
		if out, err = w.importKeys(ctx, c, ig, o, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// mkdirAllNew is os.MkdirAll(dir, 0o700) that also returns the directories
// it created, deepest first.
func mkdirAllNew(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	err := os.MkdirAll(dir, 0o700)
	var created []string
	for _, d := range missing {
		if _, serr := os.Lstat(d); serr == nil {
			created = append(created, d)
		}
	}
	return created, err
}

// importKeys imports every record whose key grant ig wraps, appending to out.
func (w *Wallet) importKeys(ctx context.Context, c *client.Client, ig importGrant, o ImportOptions, out []ImportedRecord) ([]ImportedRecord, error) {
	keys, err := w.grantKeys(ig.g)
	if err != nil {
		return out, err
	}
	for _, wk := range keys {
		rec, err := w.importRecord(ctx, c, ig, wk, o)
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("grant %s names no record: %w", ig.g.ID.String()[:12], ErrNotFound)
	}
	return out, nil
}

// grantKeys reads the record keys grant g wraps from the grant's entry in
// the local ledger: import is the one use case that needs the wrapped
// keys themselves, so the ledger's view of a grant need not hold them.
func (w *Wallet) grantKeys(g *consent.GrantInfo) ([]consent.WrappedKey, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var e *consent.Entry
	l.View(func(v *consent.View) { e, err = v.EntryAt(g.Feed(), g.Seq) })
	if err != nil {
		return nil, fmt.Errorf("reading grant %s: %w", g.ID.String()[:12], err)
	}
	body, err := e.DecodedBody()
	if err != nil {
		return nil, fmt.Errorf("reading grant %s: %w", g.ID.String()[:12], err)
	}
	gb, ok := body.(*consent.Grant)
	if !ok || e.Hash() != g.ID {
		return nil, fmt.Errorf("reading grant %s: the ledger holds another entry in its place: %w", g.ID.String()[:12], ErrBadLedger)
	}
	return gb.Keys, nil
}

// importGrants picks the active grants to this wallet that o names, and
// how to open each (me, or a role key held for it), in one read of the
// local ledger.
func (w *Wallet) importGrants(o ImportOptions, me age.Identity) ([]importGrant, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	now := w.Now().Unix()
	var out []importGrant
	var ferr error
	plan := func(v *consent.View, g *consent.GrantInfo) importGrant {
		ig := importGrant{g: g, op: opener{recipient: w.ID(), key: me}, revoked: v.Revoked(g.ID)}
		if g.IsRole() {
			if k, _ := w.heldRoleKey(v, g, me); k != nil {
				ig.op = opener{recipient: g.Grantee, key: k}
			}
		}
		return ig
	}
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
				ferr = &DeniedError{Reason: DenyEmergencyGrant, Grant: g.ID.String()[:12]}
				return
			}
			out = append(out, plan(v, g))
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
				out = append(out, plan(v, g))
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

// importRecord imports one record of grant ig into o.OutDir.
func (w *Wallet) importRecord(ctx context.Context, c *client.Client, ig importGrant, wk consent.WrappedKey, o ImportOptions) (ImportedRecord, error) {
	g, op := ig.g, ig.op
	ownerPub, err := g.Author.PublicKey()
	if err != nil {
		return ImportedRecord{}, err
	}
	key, err := unwrapKey(wk.Key, op.key)
	if err != nil {
		return ImportedRecord{}, fmt.Errorf("record %s: the wrapped key does not open: %w", wk.Record, ErrVerify)
	}
	m, err := w.grantedManifest(ctx, c, g.Author, ownerPub, wk.Record, op)
	if errors.Is(err, ErrNotFound) && ig.revoked {
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
	name := filepath.Join(o.OutDir, importName(m.Metadata.Label, wk.Record, extension(m.Metadata)))
	f, err := fsutil.CreateNew(name, 0o600)
	if err == nil {
		defer f.Abort()
		if o.Progress != nil {
			o.Progress.Start(filepath.Base(name), m.Metadata.Size)
			defer o.Progress.Done()
		}
		err = vault.Open(ctx, m, getter, f, vault.OpenOptions{Progress: o.Progress})
		if err != nil && len(getter.Denials) > 0 {
			return ImportedRecord{}, &DeniedError{Record: wk.Record, Reason: string(getter.Denials[0].Reason)}
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
	copies = w.deviceCopies(ctx, c, owner, record, role, copies)
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

// maxNameLabel bounds, in bytes, the label part of an imported record's
// file name: with the ID and the extension the name stays far below the
// 255 bytes that common file systems allow.
const maxNameLabel = 80

// importName is the file name of an imported record: its label made safe
// for a file name on every common OS, a dash, its ID and ext
// ("2026-check-up-3fa1c0de....json"); only the ID and ext without a label.
// Letters (of any script), digits, combining marks, '.' and '_' are kept;
// any run of other characters (separators, spaces, punctuation, control
// and format characters) becomes one '-'; the label never starts with '.'
// or '-' (no hidden file, no flag) and is cut to maxNameLabel bytes. With
// the ID after it, no name is reserved on Windows.
func importName(label, record, ext string) string {
	var b strings.Builder
	dash := false
	for _, r := range label {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '.' || r == '_':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	s := strings.TrimLeft(b.String(), ".-")
	if len(s) > maxNameLabel {
		i := maxNameLabel
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	s = strings.TrimRight(s, ".-")
	if s == "" {
		return record + ext
	}
	return s + "-" + record + ext
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
