package wallet

// Records: add, list, get, verify and remove (AddRecord, ListRecords,
// Record, RecordKey, GetRecord, VerifyRecord, RemoveRecord).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/vault"
)

// Records live under the home directory as:
//
//	records/<record ID>.age   the age-encrypted, owner-signed manifest
//	shares/ab/abcd...         the local share store (vault/dirstore)
//
// Nothing else is kept: the file names are random record IDs, so the
// directory listing is the index and holds no PHI; the metadata and the
// label are inside the encrypted manifests.
const (
	recordsDir      = "records"
	sharesDir       = "shares"
	manifestExt     = ".age"
	minRecordPrefix = 4
)

// RecordInfo describes one record: what `record ls` and `record add` show.
type RecordInfo struct {
	ID           string
	Created      time.Time
	Metadata     vault.Metadata
	K, N         int
	CipherSize   int64
	ManifestHash vault.Hash // SHA-256 of the encrypted manifest file
	Shares       []vault.ShareID
}

func recordInfo(m *vault.Manifest) RecordInfo {
	info := RecordInfo{
		ID: m.RecordID.String(), Created: m.Created, Metadata: m.Metadata,
		K: m.K, N: m.N, CipherSize: m.CipherSize, ManifestHash: m.Hash(),
	}
	for _, s := range m.Shares {
		info.Shares = append(info.Shares, s.ID)
	}
	return info
}

// RecordOptions are shared by the record use cases.
type RecordOptions struct {
	// Store holds the shares; nil means the peers of the wallet's network
	// file when there is one, else the local directory store at HOME/shares.
	Store vault.ShareStore
	// Local keeps the shares in HOME/shares even when a network is configured.
	Local bool
	// Progress, if set, receives plaintext byte counts.
	Progress vault.Progress
}

// ErrEmptyRecord reports a record of 0 bytes, which AddRecord refuses. It
// is ErrInvalid.
var ErrEmptyRecord = fmt.Errorf("the record is empty (0 bytes): %w", ErrInvalid)

// AddRecordOptions configure AddRecord.
type AddRecordOptions struct {
	RecordOptions
	Label string
	// K and N are the erasure-coding parameters; both zero means the
	// defaults (any 3 of 5 shares rebuild the record).
	K, N int
	// Provenance, for a record imported from a signed source (shc.go).
	Provenance *vault.Provenance
	// Happy is the number of distinct peers the shares must land on for
	// the add to succeed on a network (0: k+1; place.go).
	Happy int
}

func (w *Wallet) recordsPath() string { return filepath.Join(w.cfg.Home, recordsDir) }

// AddRecord seals the record read from r: encrypts it to a fresh key,
// erasure-codes it into the share store, and saves the signed manifest
// encrypted to the wallet's own age key. Nothing is saved if it fails.
func (w *Wallet) AddRecord(ctx context.Context, r io.Reader, opts AddRecordOptions) (RecordInfo, error) {
	if err := w.primaryOnly("add a record"); err != nil {
		return RecordInfo{}, err
	}
	defer w.holdLedger()() // its steps share one open ledger
	k, n := opts.K, opts.N
	if k == 0 && n == 0 {
		k, n = vault.DefaultK, vault.DefaultN
	}
	if err := vault.CheckParams(k, n); err != nil {
		return RecordInfo{}, &InputError{Field: FieldShares, Problem: Rejected, Err: err}
	}
	// An empty file is refused before anything is stored: it is almost
	// always a mistake (a failed export, a truncated download).
	// A seekable record can be sealed again (see below) from where it starts.
	seeker, _ := r.(io.Seeker)
	var start int64
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); errors.Is(err, io.EOF) {
		return RecordInfo{}, ErrEmptyRecord
	} else if err != nil {
		return RecordInfo{}, fmt.Errorf("reading the record: %w", err)
	}
	src := r
	r = io.MultiReader(bytes.NewReader(first[:]), r)
	id, err := w.Identity()
	if err != nil {
		return RecordInfo{}, err
	}
	store, c, err := w.storeFor(ctx, opts.RecordOptions, nil)
	if pe := (*PeersError)(nil); errors.As(err, &pe) {
		pe.Needed, pe.K = k+1, k // an add needs more than any peer answering
	}
	if err != nil {
		return RecordInfo{}, err
	}
	happy := 0
	if c != nil {
		defer c.Close()
		store = netShareStore{store}
		if happy, err = happyWanted(opts.Happy, k, n); err != nil { // place.go
			return RecordInfo{}, err
		}
		if err := happyBefore(c, happy, k, n); err != nil {
			return RecordInfo{}, err
		}
		if n, err = adaptN(c, k, n); err != nil {
			return RecordInfo{}, err
		}
	}
	if err := os.MkdirAll(w.recordsPath(), 0o700); err != nil {
		return RecordInfo{}, err
	}
	progress := &onceProgress{p: opts.Progress}
	m, err := vault.Seal(ctx, r, store, vault.SealOptions{
		Params:     vault.Params{K: k, N: n},
		Owner:      id.Signing.Public().(ed25519.PublicKey),
		Label:      opts.Label,
		Provenance: opts.Provenance,
		Progress:   progress,
		Now:        w.cfg.now,
	})
	// Peers that refuse to store for us (policy, quota, full disk) are
	// passed over for spare peers; with none to spare, a seekable record
	// is sealed again into one share fewer, down to k+1.
	for c != nil && err != nil && n > max(k+1, happy) && seeker != nil && refusedByPeers(err) && ctx.Err() == nil {
		if _, serr := seeker.Seek(start, io.SeekStart); serr != nil {
			break
		}
		n--
		progress.restart()
		m, err = vault.Seal(ctx, src, store, vault.SealOptions{
			Params: vault.Params{K: k, N: n}, Owner: id.Signing.Public().(ed25519.PublicKey),
			Label: opts.Label, Provenance: opts.Provenance, Progress: progress, Now: w.cfg.now,
		})
	}
	if err != nil {
		return RecordInfo{}, sealErr(err)
	}
	if c != nil {
		if err := happyAfter(ctx, c, m, store, happy); err != nil {
			return RecordInfo{}, err
		}
	}
	enc, err := m.Encrypt(id.Signing, id.Age.Recipient())
	if err == nil {
		err = fsutil.WriteFileNew(w.manifestPath(m.RecordID.String()), enc, 0o600)
	}
	if err != nil {
		_ = vault.DeleteShares(context.WithoutCancel(ctx), m, store)
		return RecordInfo{}, fmt.Errorf("saving the manifest: %w", err)
	}
	if c != nil {
		if err := w.publishRecord(ctx, c, m.RecordID.String(), enc); err != nil {
			return recordInfo(m), fmt.Errorf("record %s is stored on peers but not yet published: %w", m.RecordID, err)
		}
	}
	if err := w.noteRepairCap(ctx, c, m); err != nil { // repair.go
		return recordInfo(m), fmt.Errorf("record %s is stored but its repair capability is not: %w", m.RecordID, err)
	}
	return recordInfo(m), nil
}

func (w *Wallet) manifestPath(id string) string {
	return filepath.Join(w.recordsPath(), id+manifestExt)
}

// recordIDs lists the IDs of the saved manifests, sorted.
func (w *Wallet) recordIDs() ([]string, error) {
	ents, err := os.ReadDir(w.recordsPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), manifestExt)
		if !ok || e.IsDir() {
			continue
		}
		if _, err := vault.ParseRecordID(name); err == nil {
			ids = append(ids, name)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// resolveRecord turns a record ID or a unique prefix of one (at least 4
// hex characters) into a full ID.
func (w *Wallet) resolveRecord(ref string) (string, error) {
	ref = strings.ToLower(strings.TrimSpace(ref))
	if len(ref) < minRecordPrefix {
		return "", &InputError{Field: FieldRecord, Problem: Malformed, Value: ref,
			Reason: fmt.Sprintf("record %q: give at least %d characters of the ID", ref, minRecordPrefix)}
	}
	if strings.Trim(ref, "0123456789abcdef") != "" || len(ref) > 32 {
		return "", &InputError{Field: FieldRecord, Problem: Malformed, Value: ref, Reason: fmt.Sprintf("record %q: not a record ID", ref)}
	}
	ids, err := w.recordIDs()
	if err != nil {
		return "", err
	}
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return "", &NotFoundError{Kind: KindRecord, Ref: ref}
	case 1:
		return match[0], nil
	default:
		return "", &AmbiguousError{Kind: KindRecord, Ref: ref, Matches: len(match)}
	}
}

// manifest loads, decrypts and verifies the manifest of a record.
func (w *Wallet) manifest(ref string) (*vault.Manifest, error) {
	rid, err := w.resolveRecord(ref)
	if err != nil {
		return nil, err
	}
	return w.loadManifest(rid)
}

func (w *Wallet) loadManifest(rid string) (*vault.Manifest, error) {
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	enc, err := os.ReadFile(w.manifestPath(rid))
	if err != nil {
		return nil, err
	}
	m, err := vault.DecryptManifest(enc, w.ownerKey(id), id.Opener())
	if err != nil {
		return nil, fmt.Errorf("record %s: manifest: %w: %w", rid, ErrVerify, err)
	}
	if m.RecordID.String() != rid {
		return nil, fmt.Errorf("record %s: manifest holds another record ID: %w", rid, ErrVerify)
	}
	return m, nil
}

// ListRecords decrypts every manifest and returns the records, oldest
// first. A manifest that fails to decrypt or verify is an error: the
// wallet never lists what it cannot vouch for.
func (w *Wallet) ListRecords(ctx context.Context) ([]RecordInfo, error) {
	ids, err := w.recordIDs()
	if err != nil {
		return nil, err
	}
	out := make([]RecordInfo, 0, len(ids))
	for _, rid := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := w.loadManifest(rid)
		if err != nil {
			return nil, err
		}
		out = append(out, recordInfo(m))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Record returns the description of one record.
func (w *Wallet) Record(ctx context.Context, ref string) (RecordInfo, error) {
	m, err := w.manifest(ref)
	if err != nil {
		return RecordInfo{}, err
	}
	return recordInfo(m), nil
}

// RecordKey returns the per-record age key, e.g. to wrap it for a grantee.
func (w *Wallet) RecordKey(ctx context.Context, id string) (*age.X25519Identity, error) {
	m, err := w.manifest(id)
	if err != nil {
		return nil, err
	}
	return m.Identity()
}

// GetRecord rebuilds a record from its shares and writes the plaintext to
// out. Every block is checked before use; missing or damaged shares are
// skipped as long as K good ones remain. On error, out may hold a correct
// but incomplete prefix: callers writing a file should write to a
// temporary file and rename it on success.
func (w *Wallet) GetRecord(ctx context.Context, ref string, out io.Writer, opts RecordOptions) (RecordInfo, error) {
	m, err := w.manifest(ref)
	if err != nil {
		return RecordInfo{}, err
	}
	store, c, err := w.storeFor(ctx, opts, m)
	if err != nil {
		return RecordInfo{}, err
	}
	if c != nil {
		defer c.Close()
	}
	if err := vault.Open(ctx, m, store, out, vault.OpenOptions{Progress: opts.Progress}); err != nil {
		if errors.Is(err, vault.ErrNotEnoughShares) {
			return RecordInfo{}, &RecordError{Record: m.RecordID.String(), Err: err}
		}
		return RecordInfo{}, fmt.Errorf("record %s: %w", m.RecordID, err)
	}
	return recordInfo(m), nil
}

// Record health summaries.
const (
	HealthOK       = "ok"       // every share is healthy
	HealthDegraded = "degraded" // some shares are damaged, at least K are fine
	HealthLost     = "lost"     // fewer than K shares are fine
)

// RecordHealth is the result of VerifyRecord.
type RecordHealth struct {
	Record  RecordInfo
	Status  string
	Healthy int
	Shares  []vault.ShareHealth
}

// ErrRecordLost reports a record with fewer than K healthy shares.
var ErrRecordLost = errors.New("record cannot be rebuilt")

// VerifyRecord reads every share of a record in full and checks it against
// the manifest. It returns an error wrapping ErrVerify (and ErrRecordLost)
// only when fewer than K shares are healthy; damaged but recoverable
// records report HealthDegraded with a nil error.
func (w *Wallet) VerifyRecord(ctx context.Context, ref string, opts RecordOptions) (RecordHealth, error) {
	m, err := w.manifest(ref)
	if err != nil {
		return RecordHealth{}, err
	}
	store, c, err := w.storeFor(ctx, opts, m)
	if err != nil {
		return RecordHealth{}, err
	}
	if c != nil {
		defer c.Close()
	}
	h := RecordHealth{Record: recordInfo(m), Shares: vault.Verify(ctx, m, store)}
	if c != nil {
		w.renewLeases(ctx, c, []string{m.RecordID.String()}) // renew.go
	}
	if err := ctx.Err(); err != nil {
		return h, err
	}
	for _, s := range h.Shares {
		if s.Status == vault.StatusOK {
			h.Healthy++
		}
	}
	switch {
	case h.Healthy == m.N:
		h.Status = HealthOK
	case h.Healthy >= m.K:
		h.Status = HealthDegraded
	default:
		h.Status = HealthLost
		return h, fmt.Errorf("record %s: %w: %d of %d shares healthy, %d needed: %w", m.RecordID, ErrRecordLost, h.Healthy, m.N, m.K, ErrVerify)
	}
	return h, nil
}

// RemoveRecord deletes a record's shares from the store, then its manifest.
func (w *Wallet) RemoveRecord(ctx context.Context, ref string, opts RecordOptions) (string, error) {
	defer w.holdLedger()() // its steps share one open ledger
	m, err := w.manifest(ref)
	if err != nil {
		return "", err
	}
	store, c, err := w.storeFor(ctx, opts, m)
	if err != nil {
		return "", err
	}
	if c != nil {
		defer c.Close()
	}
	if err := vault.DeleteShares(ctx, m, store); err != nil {
		return "", err
	}
	rid := m.RecordID.String()
	if c != nil {
		if err := c.DeleteManifests(ctx, rid); err != nil {
			return "", err
		}
	}
	var retired *consent.RetireBody // retire.go
	if c != nil {
		enc, err := os.ReadFile(w.manifestPath(rid))
		if err != nil {
			return "", err
		}
		retired = retireBody(m, vault.ManifestHash(enc), true)
	}
	if err := os.Remove(w.manifestPath(rid)); err != nil {
		return "", err
	}
	_ = os.Remove(w.repairCapPath(rid)) // repair.go: rewritten from the manifest if ever needed
	fsutil.SyncDir(w.recordsPath())
	if err := w.unplace(ctx, c, rid); err != nil {
		return rid, fmt.Errorf("record %s is removed but its peers were not updated: %w", rid, err)
	}
	if retired != nil {
		if err := w.retireOnPeers(ctx, c, retired); err != nil {
			return rid, fmt.Errorf("record %s is removed but peers that were offline are not told yet: %w", rid, err)
		}
	}
	return rid, nil
}
