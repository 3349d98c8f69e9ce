package wallet

// Repair: the owner's side (repair capabilities written beside the
// manifests and published to the repairers it authorised: GrantRepair,
// RevokeRepair, AuditRecords) and the repairer's (Repair: audit every
// holder of every record it may repair, and rebuild and place the shares
// that are lost). A repairer never holds a record key: it works from the
// repair capability (vault.RepairCap), ciphertext hashes only.

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

// repairCapExt is the extension of a record's repair capability beside
// its manifest: records/<record ID>.cap.
const repairCapExt = ".cap"

// DefaultAuditBlocks is how many random blocks an audit asks each holder
// for.
const DefaultAuditBlocks = 2

func (w *Wallet) repairCapPath(rid string) string {
	return filepath.Join(w.recordsPath(), rid+repairCapExt)
}

// CapAddress is the recipient under which a record's repair capability
// is stored on peers for repairer (manifests protocol): the Ed25519 peer
// ID whose seed is SHA-256("medwallet repair capability v1\n" ||
// repairer). It is pseudonymous, and differs from the repairer's own ID,
// so a repairer that is also a grantee keeps both its copies.
func CapAddress(repairer consent.ID) consent.ID {
	seed := sha256.Sum256([]byte("medwallet repair capability v1\n" + string(repairer)))
	s, err := consent.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		panic(err) // a fresh in-memory key
	}
	return s.ID()
}

// saveRepairCap writes the repair capability of m beside its manifest and
// returns it signed. holders, if not nil, names each share's peer.
func (w *Wallet) saveRepairCap(m *vault.Manifest, holders []string) ([]byte, error) {
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	c, err := vault.NewRepairCap(m, holders)
	if err != nil {
		return nil, err
	}
	env, err := c.Sign(id.Signing)
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(w.repairCapPath(m.RecordID.String()), env, 0o600); err != nil {
		return nil, fmt.Errorf("saving the repair capability: %w", err)
	}
	return env, nil
}

// repairCap returns the signed repair capability of record rid, writing
// it from the manifest first if the record was added before capabilities
// existed (or the file is gone).
func (w *Wallet) repairCap(rid string) ([]byte, error) {
	if env, err := os.ReadFile(w.repairCapPath(rid)); err == nil {
		id, err := w.Identity()
		if err != nil {
			return nil, err
		}
		if _, err := vault.ParseRepairCap(env, id.Signing.Public().(ed25519.PublicKey)); err == nil {
			return env, nil
		}
	}
	m, err := w.loadManifest(rid)
	if err != nil {
		return nil, err
	}
	return w.saveRepairCap(m, nil)
}

// noteRepairCap writes the capability of a record just added or rotated
// and, with a network, publishes it to the repairers whose unrevoked
// repair grants cover the record. It is best effort after the record is
// stored: a failure is returned for the caller to report, and `repair
// grant` publishes again.
func (w *Wallet) noteRepairCap(ctx context.Context, c *client.Client, m *vault.Manifest) error {
	var holders []string
	if c != nil {
		holders = make([]string, len(m.Shares))
		for i, s := range m.Shares {
			if p, ok := c.PlacedOn(s.ID); ok {
				holders[i] = p.String()
			}
		}
	}
	env, err := w.saveRepairCap(m, holders)
	if err != nil || c == nil {
		return err
	}
	rid := m.RecordID.String()
	var to []consent.ID
	l, _, err := w.openLedger(false)
	if err != nil {
		return err
	}
	l.View(func(v *consent.View) {
		for _, g := range v.RepairGrants(w.ID()) {
			if !g.Revoked && g.Covers(rid) && !slices.Contains(to, g.Repairer) {
				to = append(to, g.Repairer)
			}
		}
	})
	l.Close()
	for _, r := range to {
		if _, err := c.PutManifest(ctx, rid, CapAddress(r), env, len(c.Reachable())); err != nil {
			return fmt.Errorf("publishing the repair capability of record %s: %w", rid, err)
		}
	}
	return nil
}

// RepairGrantInfo describes a repair grant.
type RepairGrantInfo struct {
	ID       consent.Hash `json:"id"`
	Repairer consent.ID   `json:"repairer"`
	Name     string       `json:"name,omitempty"`
	Records  []string     `json:"records,omitempty"`
	All      bool         `json:"all,omitempty"`
	Revoked  bool         `json:"revoked"`
	// Published is how many capability copies were stored on peers.
	Published int `json:"published"`
}

// RepairGrantOptions configure GrantRepair.
type RepairGrantOptions struct {
	Repairer string   // a contact's name, or an ID
	Records  []string // record IDs or prefixes; none means every record
}

// resolveParty finds a contact by name or ID, or takes ref as an ID.
func (w *Wallet) resolveParty(ref string) (consent.ID, string, error) {
	if c, err := w.Resolve(ref); err == nil {
		return c.Card.ID, c.Name, nil
	}
	id, err := consent.ParseID(ref)
	if err != nil {
		return "", "", &NotFoundError{Kind: KindContact, Ref: ref}
	}
	return id, w.NameOf(id), nil
}

// GrantRepair authorises a repairer (any identity: an always-on peer of
// the patient's, a clinic's) to audit and repair the named records, or
// every record: it signs a repair grant (no scope, no key) and, with a
// network, stores each record's repair capability on every reachable
// peer for the repairer (so that any of them holds the patient's
// manifests, serves the patient, and can decide a rebuilt share's put),
// then publishes the feed and the serve entry naming those peers.
func (w *Wallet) GrantRepair(ctx context.Context, opts RepairGrantOptions) (RepairGrantInfo, error) {
	defer w.holdLedger()()
	repairer, name, err := w.resolveParty(opts.Repairer)
	if err != nil {
		return RepairGrantInfo{}, err
	}
	if repairer == w.ID() {
		return RepairGrantInfo{}, &InputError{Field: FieldGrantee, Problem: Rejected, Value: opts.Repairer,
			Reason: "the owner repairs its own records without a repair grant"}
	}
	body := consent.RepairGrantBody{Repairer: repairer}
	var rids []string
	if len(opts.Records) == 0 {
		body.All = true
		if rids, err = w.recordIDs(); err != nil {
			return RepairGrantInfo{}, err
		}
	} else {
		for _, ref := range opts.Records {
			rid, err := w.resolveRecord(ref)
			if err != nil {
				return RepairGrantInfo{}, err
			}
			rids = append(rids, rid)
		}
		slices.Sort(rids)
		rids = slices.Compact(rids)
		body.Records = rids
	}
	if err := body.Validate(); err != nil {
		return RepairGrantInfo{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	info := RepairGrantInfo{Repairer: repairer, Name: name, Records: body.Records, All: body.All}
	var c *client.Client
	if w.HasNetwork() {
		if c, err = w.Dial(ctx); err != nil {
			return info, err
		}
		defer c.Close()
		if _, err := w.pull(ctx, c); err != nil {
			return info, err
		}
	}
	l, signer, err := w.openLedger(true)
	if err != nil {
		return info, err
	}
	e, err := l.Append(signer, w.Now(), consent.KindRepairGrant, &body)
	l.Close()
	if err != nil {
		return info, err
	}
	info.ID = e.Hash()
	if c == nil {
		return info, nil
	}
	n, err := w.publishRepairCaps(ctx, c, repairer, rids)
	info.Published = n
	if err != nil {
		return info, fmt.Errorf("repair grant %s is signed but not yet on the network: %w", info.ID.String()[:12], err)
	}
	if err := w.Publish(ctx, c); err != nil {
		return info, fmt.Errorf("repair grant %s is signed but not yet on the network: %w", info.ID.String()[:12], err)
	}
	return info, nil
}

// publishRepairCaps stores the repair capabilities of rids on every
// reachable peer for repairer and returns how many copies were stored.
func (w *Wallet) publishRepairCaps(ctx context.Context, c *client.Client, repairer consent.ID, rids []string) (int, error) {
	total := 0
	addr := CapAddress(repairer)
	for _, rid := range rids {
		env, err := w.repairCap(rid)
		if err != nil {
			return total, err
		}
		n, err := c.PutManifest(ctx, rid, addr, env, len(c.Reachable()))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// RepairGrants lists the wallet's repair grants, revoked ones included.
func (w *Wallet) RepairGrants() ([]RepairGrantInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []RepairGrantInfo
	book := w.contactBook()
	l.View(func(v *consent.View) {
		for _, g := range v.RepairGrants(w.ID()) {
			out = append(out, RepairGrantInfo{ID: g.ID, Repairer: g.Repairer, Name: book.nameOf(g.Repairer),
				Records: g.Records, All: g.All, Revoked: g.Revoked})
		}
	})
	return out, nil
}

// RevokeRepair withdraws one of the wallet's repair grants (its ID or a
// unique prefix of at least 4 hex characters) and publishes the feed.
// The capability copies stay on the peers: they hold no key and nothing
// a holder does not see, and no peer lets the repairer in any more.
func (w *Wallet) RevokeRepair(ctx context.Context, ref string) (RepairGrantInfo, error) {
	defer w.holdLedger()()
	if err := w.catchUp(ctx); err != nil {
		return RepairGrantInfo{}, err
	}
	grants, err := w.RepairGrants()
	if err != nil {
		return RepairGrantInfo{}, err
	}
	var match []RepairGrantInfo
	for _, g := range grants {
		if len(ref) >= 4 && len(ref) <= 64 && g.ID.String()[:len(ref)] == ref {
			match = append(match, g)
		}
	}
	switch {
	case len(match) == 0:
		return RepairGrantInfo{}, &NotFoundError{Kind: KindGrant, Ref: ref}
	case len(match) > 1:
		return RepairGrantInfo{}, &AmbiguousError{Kind: KindGrant, Ref: ref, Matches: len(match)}
	case match[0].Revoked:
		return match[0], nil
	}
	g := match[0]
	l, signer, err := w.openLedger(true)
	if err != nil {
		return g, err
	}
	_, err = l.Append(signer, w.Now(), consent.KindRepairRevoke, &consent.RepairRevokeBody{Grant: g.ID})
	l.Close()
	if err != nil {
		return g, err
	}
	g.Revoked = true
	if w.HasNetwork() {
		if err := w.publishFeed(ctx); err != nil {
			return g, fmt.Errorf("repair grant %s is revoked here but not yet on the network: %w", g.ID.String()[:12], err)
		}
	}
	return g, nil
}

// Share states of a repair report.
const (
	ShareHealthy     = "healthy"     // a holder passed the audit
	ShareMissing     = "missing"     // no reachable peer says it holds it
	ShareFailedAudit = "failed"      // every holder failed the audit
	ShareUnchecked   = "unavailable" // holders exist but could not be audited
)

// HolderAudit is one holder's answer to an audit.
type HolderAudit struct {
	Peer   string `json:"peer"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// ShareAudit is the state of one share of a record.
type ShareAudit struct {
	Index   int           `json:"index"`
	ID      string        `json:"id"`
	State   string        `json:"state"`
	Holders []HolderAudit `json:"holders,omitempty"`
	// Placed is the peer a rebuilt share was put on (Repair only); State
	// is what the audit found before.
	Placed string `json:"placed,omitempty"`
}

// RecordRepair is what one repair cycle did to one record.
type RecordRepair struct {
	Owner         consent.ID   `json:"owner"`
	Record        string       `json:"record"`
	K             int          `json:"k"`
	N             int          `json:"n"`
	HealthyBefore int          `json:"healthy_before"`
	Rebuilt       int          `json:"rebuilt"`
	HealthyAfter  int          `json:"healthy_after"`
	BytesFetched  int64        `json:"bytes_fetched"`
	BytesWritten  int64        `json:"bytes_written"`
	Shares        []ShareAudit `json:"shares"`
	Error         string       `json:"error,omitempty"`
}

// RepairOptions configure Repair.
type RepairOptions struct {
	// Threshold: a record is repaired when its healthy shares are at most
	// this many; 0 means n-1 (repair as soon as one share is lost).
	Threshold int
	// AuditBlocks is how many random blocks each audit asks for (0: the
	// default).
	AuditBlocks int
}

// RepairReport is the result of one repair cycle.
type RepairReport struct {
	Repairer consent.ID     `json:"repairer"`
	Records  []RecordRepair `json:"records"`
}

// ErrRepairIncomplete reports a repair cycle that left a record it may
// repair below its threshold (or unreadable). It is ErrVerify.
var ErrRepairIncomplete = fmt.Errorf("%w: a record could not be repaired", ErrVerify)

// Repair runs one repair cycle as a repairer: it pulls the ledger, finds
// the owners whose unrevoked repair grants name this wallet, fetches the
// repair capabilities they published for it, audits every holder of every
// share of those records, and for each record whose healthy shares are
// at most the threshold (and at least k) fetches k healthy shares,
// rebuilds the lost ones from ciphertext, checks them against the
// capability and puts each on a reachable peer that holds no share of the
// record (the owner's serving peers first). Owners find the rebuilt
// shares as they find any: every reachable peer is asked who holds a share.
func (w *Wallet) Repair(ctx context.Context, opts RepairOptions) (RepairReport, error) {
	rep := RepairReport{Repairer: w.ID(), Records: []RecordRepair{}}
	c, err := w.Dial(ctx)
	if err != nil {
		return rep, err
	}
	defer c.Close()
	if _, err := w.pull(ctx, c); err != nil {
		return rep, err
	}
	type work struct {
		owner   consent.ID
		serving []consent.ID
		covers  func(string) bool
	}
	var owners []work
	l, _, err := w.openLedger(false)
	if err != nil {
		return rep, err
	}
	l.View(func(v *consent.View) {
		for _, o := range v.RepairOwners(w.ID()) {
			var gs []*consent.RepairGrantInfo
			for _, g := range v.RepairGrants(o) {
				if g.Repairer == w.ID() && !g.Revoked {
					gs = append(gs, g)
				}
			}
			if len(gs) == 0 || v.Equivocating(o) {
				continue
			}
			owners = append(owners, work{owner: o, serving: v.ServingPeers(o), covers: func(rid string) bool {
				return slices.ContainsFunc(gs, func(g *consent.RepairGrantInfo) bool { return g.Covers(rid) })
			}})
		}
	})
	l.Close()
	sort.Slice(owners, func(i, j int) bool { return owners[i].owner < owners[j].owner })
	failed := false
	for _, o := range owners {
		pub, err := o.owner.PublicKey()
		if err != nil {
			continue
		}
		copies, err := c.ListManifestsFor(ctx, o.owner, "", CapAddress(w.ID()))
		if err != nil && len(copies) == 0 {
			rep.Records = append(rep.Records, RecordRepair{Owner: o.owner, Error: "listing repair capabilities: " + err.Error()})
			failed = true
			continue
		}
		seen := map[string]bool{}
		for _, cp := range copies {
			if seen[cp.Record] || !o.covers(cp.Record) {
				continue
			}
			rc, err := vault.ParseRepairCap(cp.Envelope, pub)
			if err != nil || rc.RecordID.String() != cp.Record {
				continue // another copy may be good
			}
			seen[cp.Record] = true
			rr := w.repairRecord(ctx, c, o.owner, o.serving, rc, opts)
			if rr.Error != "" || rr.HealthyAfter < rc.K || (rr.HealthyAfter <= threshold(opts, rc) && rr.HealthyAfter < rc.N) {
				failed = true
			}
			rep.Records = append(rep.Records, rr)
		}
	}
	if failed {
		return rep, ErrRepairIncomplete
	}
	return rep, nil
}

func threshold(opts RepairOptions, c *vault.RepairCap) int {
	if opts.Threshold > 0 {
		return opts.Threshold
	}
	return c.N - 1
}

// auditRecord finds and audits every holder of every share of c. ar signs
// a repair request for each audit (nil: the host is the owner).
func auditRecord(ctx context.Context, c *client.Client, rc *vault.RepairCap, ar func() (*consent.Request, error), blocks int) []ShareAudit {
	out := make([]ShareAudit, rc.N)
	var wg sync.WaitGroup
	for i := range rc.N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sa := ShareAudit{Index: i, ID: rc.Shares[i].ID.String(), State: ShareMissing}
			holders := c.Holders(ctx, rc.Shares[i].ID)
			failedAudit, unchecked := false, false
			for _, p := range holders {
				var req *consent.Request
				var err error
				if ar != nil {
					if req, err = ar(); err != nil {
						sa.Holders = append(sa.Holders, HolderAudit{Peer: p.String(), Detail: err.Error()})
						unchecked = true
						continue
					}
				}
				err = shares.Audit(ctx, c.Host(), p, rc, i, req, blocks)
				h := HolderAudit{Peer: p.String(), OK: err == nil}
				switch {
				case err == nil:
					sa.State = ShareHealthy
				case errors.Is(err, shares.ErrAuditFailed), errors.Is(err, shares.ErrNotFound):
					failedAudit = true
					h.Detail = err.Error()
				default:
					unchecked = true
					h.Detail = err.Error()
				}
				sa.Holders = append(sa.Holders, h)
			}
			if sa.State != ShareHealthy {
				switch {
				case failedAudit:
					sa.State = ShareFailedAudit
				case unchecked:
					sa.State = ShareUnchecked
				}
			}
			out[i] = sa
		}()
	}
	wg.Wait()
	return out
}

func healthy(sas []ShareAudit) int {
	n := 0
	for _, s := range sas {
		if s.State == ShareHealthy {
			n++
		}
	}
	return n
}

// repairRecord audits one record and repairs it if it must.
func (w *Wallet) repairRecord(ctx context.Context, c *client.Client, owner consent.ID, serving []consent.ID, rc *vault.RepairCap, opts RepairOptions) RecordRepair {
	rid := rc.RecordID.String()
	rr := RecordRepair{Owner: owner, Record: rid, K: rc.K, N: rc.N}
	access := client.Access{Owner: owner, Record: rid, Scope: consent.RepairScope, Purpose: consent.PurposeRepair}
	sign := func() (*consent.Request, error) { return c.SignRequest(access) }
	blocks := opts.AuditBlocks
	if blocks <= 0 {
		blocks = DefaultAuditBlocks
	}
	rr.Shares = auditRecord(ctx, c, rc, sign, blocks)
	rr.HealthyBefore = healthy(rr.Shares)
	rr.HealthyAfter = rr.HealthyBefore
	if rr.HealthyBefore > threshold(opts, rc) || rr.HealthyBefore == rc.N {
		return rr
	}
	if rr.HealthyBefore < rc.K {
		rr.Error = fmt.Sprintf("only %d of %d shares are healthy, %d needed: the record cannot be rebuilt", rr.HealthyBefore, rc.N, rc.K)
		return rr
	}
	// Sources: the healthy shares, read through holders that passed.
	var from, missing []int
	passed := map[int][]peer.ID{}
	used := map[peer.ID]bool{} // peers holding a healthy share of the record, or that failed an audit of it
	for _, sa := range rr.Shares {
		for _, h := range sa.Holders {
			p, err := peer.Decode(h.Peer)
			if err != nil {
				continue
			}
			used[p] = true
			if h.OK {
				passed[sa.Index] = append(passed[sa.Index], p)
			}
		}
		if sa.State == ShareHealthy {
			from = append(from, sa.Index)
		} else {
			missing = append(missing, sa.Index)
		}
	}
	src := &repairSource{c: c, rc: rc, holders: passed, sign: sign}
	targets := placementOrder(c.Reachable(), serving, used)
	var tmu sync.Mutex
	placed := map[int]peer.ID{}
	put := func(i int, r io.Reader) (vault.ShareID, error) {
		// Each rebuilt share goes to the next free peer; one that refuses
		// before taking a byte is passed over.
		var errs []error
		for {
			tmu.Lock()
			if len(targets) == 0 {
				tmu.Unlock()
				errs = append(errs, errors.New("no other reachable peer holds no share of the record"))
				return vault.ShareID{}, errors.Join(errs...)
			}
			p := targets[0]
			targets = targets[1:]
			tmu.Unlock()
			req, err := sign()
			if err != nil {
				return vault.ShareID{}, err
			}
			cr := &countingReader{r: r}
			id, err := shares.PutRepair(ctx, c.Host(), p, rid, req, cr)
			if err == nil {
				tmu.Lock()
				placed[i] = p
				tmu.Unlock()
				return id, nil
			}
			errs = append(errs, err)
			if cr.n.Load() > 0 || ctx.Err() != nil {
				return vault.ShareID{}, errors.Join(errs...)
			}
		}
	}
	res, err := vault.Rebuild(ctx, rc, src, missing, put, vault.RebuildOptions{From: from})
	rr.BytesFetched = src.n.Load()
	rr.BytesWritten = res.Bytes
	if err != nil {
		rr.Error = "rebuilding: " + err.Error()
		return rr
	}
	rr.Rebuilt = len(res.Written)
	for i, p := range placed {
		rr.Shares[i].Placed = p.String()
	}
	rr.HealthyAfter = rr.HealthyBefore + rr.Rebuilt
	return rr
}

// placementOrder is the reachable peers not in used: the owner's serving
// peers first (they hold the owner's feed and can decide a repair put at
// once), then the others, each group in ID order.
func placementOrder(reachable []peer.ID, serving []consent.ID, used map[peer.ID]bool) []peer.ID {
	var first, rest []peer.ID
	for _, p := range reachable {
		switch {
		case used[p]:
		case slices.Contains(serving, consent.ID(p.String())):
			first = append(first, p)
		default:
			rest = append(rest, p)
		}
	}
	return append(first, rest...)
}

// repairSource reads a record's shares for a rebuild through the holders
// that passed their audit, with a fresh repair request per get, and counts
// the bytes read.
type repairSource struct {
	c       *client.Client
	rc      *vault.RepairCap
	holders map[int][]peer.ID
	sign    func() (*consent.Request, error)
	n       atomic.Int64
}

func (s *repairSource) Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error) {
	i := s.rc.ShareIndex(id)
	var errs []error
	for _, p := range s.holders[i] {
		req, err := s.sign()
		if err != nil {
			return nil, err
		}
		rc, err := shares.Get(ctx, s.c.Host(), p, id, req)
		if err == nil {
			return &countingReadCloser{ReadCloser: rc, n: &s.n}, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("share %d: %w on a holder that passed its audit", i, vault.ErrNotFound)
	}
	return nil, errors.Join(errs...)
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingReadCloser struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// RecordAudit is the owner's audit of one record's holders.
type RecordAudit struct {
	Record  string       `json:"record"`
	K       int          `json:"k"`
	N       int          `json:"n"`
	Healthy int          `json:"healthy"`
	Shares  []ShareAudit `json:"shares"`
}

// AuditRecords audits the holders of the named records (every record if
// none is named) as their owner: every reachable peer is asked who holds
// each share, and each holder is challenged for random blocks, checked
// against the record's repair capability. It reads a few blocks per
// holder, not the shares (VerifyRecord reads them whole). It returns an
// error wrapping ErrRecordLost when a record has fewer than k healthy
// shares.
func (w *Wallet) AuditRecords(ctx context.Context, refs []string, blocks int) ([]RecordAudit, error) {
	var rids []string
	if len(refs) == 0 {
		var err error
		if rids, err = w.recordIDs(); err != nil {
			return nil, err
		}
	}
	for _, ref := range refs {
		rid, err := w.resolveRecord(ref)
		if err != nil {
			return nil, err
		}
		rids = append(rids, rid)
	}
	c, err := w.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if blocks <= 0 {
		blocks = DefaultAuditBlocks
	}
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	out := []RecordAudit{}
	var lost []string
	for _, rid := range rids {
		env, err := w.repairCap(rid)
		if err != nil {
			return out, err
		}
		rc, err := vault.ParseRepairCap(env, id.Signing.Public().(ed25519.PublicKey))
		if err != nil {
			return out, fmt.Errorf("record %s: %w: %w", rid, ErrVerify, err)
		}
		ra := RecordAudit{Record: rid, K: rc.K, N: rc.N, Shares: auditRecord(ctx, c, rc, nil, blocks)}
		ra.Healthy = healthy(ra.Shares)
		if ra.Healthy < rc.K {
			lost = append(lost, rid)
		}
		out = append(out, ra)
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	if len(lost) > 0 {
		return out, fmt.Errorf("records %v: %w: %w", lost, ErrRecordLost, ErrVerify)
	}
	return out, nil
}
