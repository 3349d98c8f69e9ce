package consent

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
)

// GrantInfo is a grant accepted into a view: its ID (the entry hash), its
// author (the records' owner), when it was signed, and its body.
type GrantInfo struct {
	ID     Hash   `json:"id"`
	Author ID     `json:"author"`
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"`
	// Device is the device that signed the grant on the owner's behalf
	// (device.go); Seq is then its seq in the device's feed. Empty for a
	// grant of the owner's own feed.
	Device ID `json:"device,omitempty"`
	Grant

	parsed []Scope
}

type authorSeq struct {
	author ID
	seq    uint64
}

type grantKey struct {
	owner, grantee ID
	record         string // "" for all-records grants
}

type ownerRecord struct {
	owner  ID
	record string // "" for all-records grants
}

type ownerGrantee struct{ owner, grantee ID }

type nonceKey struct {
	requester ID
	nonce     string
}

// feed is what a view keeps of one author's accepted entries: the hash of
// each (hashes[seq-1]) and the head. The entries themselves are in the
// view's store.
type feed struct {
	author ID // the feeds map's key, shared by the index entries that name it
	hashes []Hash
	hd     Head
	access []uint64 // the seqs of its access entries, in order
	// saved and savedAcc are how many hashes and access seqs the saved
	// state holds (state.go): a save writes from there on.
	saved, savedAcc int
	// lazy is set in a feed of a restored view: hashes and access are
	// read from the state on first use (View.feedTables). Their lengths
	// are hd.Seq and savedAcc until then.
	lazy *lazyFeed
}

func (f *feed) head() Head { return f.hd }

// View is the ledger state a replica derives from the entries it holds:
// feeds, grants, revocations, request nonces and equivocating authors, with
// the indexes Decide needs. Entries may be ingested in any order; an entry
// whose predecessor is missing waits until the gap is filled. Two views
// that ingested the same set of entries give the same decisions.
//
// A view does not hold its accepted entries: they are in its Store, and
// the view reads them on demand (EntryAt, Entry, FeedFrom) through a cache
// of at most EntryCacheSize decoded entries. What it keeps in memory per
// accepted entry is derived state: the entry's hash and slot, and what the
// entry means (a grant, a revocation, a nonce...). Entries waiting for a
// predecessor stay in memory (at most MaxPendingPerAuthor per author).
//
// Who writes to the store: a view from NewView owns a MemStore and writes
// each entry it accepts through to it. A Ledger's view reads the Ledger's
// store, and the Ledger stores what the view accepted right after the
// view accepted it (Append, Ingest, IngestBatch), then tells the view
// (stored); until then the view keeps those entries in memory, so they are
// readable all along, and they are never more than one call's worth.
//
// A View is not safe for concurrent use, except that its read-only methods
// may run concurrently with each other (the cache has its own lock).
type View struct {
	feeds     map[ID]*feed
	pending   map[authorSeq][]*Entry
	nPend     int
	pendingBy map[ID]int
	seen      map[authorSeq]Hash // first validly signed entry per pending slot (accepted slots: feed.hashes)
	byHash    map[Hash]authorSeq // slot of validly signed entries, accepted or pending (a restored view: since restored); read through slotOf
	// lazyByHash indexes a restored view's feeds by hash, on demand.
	lazyByHash *lazyByHash

	store    Store                // accepted entries
	own      bool                 // the view writes accepted entries to store itself (NewView)
	unstored map[authorSeq]*Entry // accepted entries not in store yet
	cache    *entryCache
	ids      map[ID]ID // interned identities (intern)

	// A view restored from a saved state reads its grants, revocations
	// and nonces from src on demand (state_tables.go), and notes in dirty
	// what changed since, for the next save.
	src   *stateSrc
	dirty *stateDirty

	grants    map[Hash]*GrantInfo   // read through grantOf, grantMap
	gx        *grantIndex           // read through grantIndex
	revokedBy map[Hash]revokerSet   // read through revokers, revokedMap
	grantsBy  map[ID]int            // grants per owner
	grantsTo  map[ID]int            // grants per grantee
	nonces    map[nonceKey]struct{} // a restored view: those noted since; read through nonceSeen
	noncesAll bool                  // nonces holds every nonce, though src is set
	// hasRevs and hasNonces are set when the restored state held a
	// revocation, a nonce.
	hasRevs, hasNonces bool
	proofs             map[ID]*EquivocationProof
	proofLogs          map[ID][]ProofLog // accepted equivocation entries, by equivocating author
	identities         map[ID]*IdentityBody
	anchors            map[ownerRecord]*AnchorBody // latest anchor per (author, record)

	creds          map[Hash]*CredentialInfo
	credsBySubject map[ID][]*CredentialInfo // sorted by ID
	breakGlass     map[Hash]*BreakGlassInfo
	firstBG        map[requesterGrant]*BreakGlassInfo
	reviews        map[authorHash]*ReviewInfo

	// Sub-feeds and serving sets (subfeed.go), made on first use.
	links    map[ID]*LinkBody  // sub-feed -> its link
	serving  map[ID]*ServeBody // author -> its latest serve entry
	grantors map[ID][]ID       // grantee -> the owners granting it, each once

	rec *recoveryIndex // guardians and recoveries (guardian.go), made on first use
	// Devices (device.go), made on first use.
	devices    map[ID]*DeviceInfo        // device feed -> its device entry
	devicesBy  map[ID][]ID               // owner -> its devices, sorted
	deviceRevs map[ID][]deviceRevocation // device -> the device-revoke entries naming it
	ageKeys    map[ID]*AgeKeyInfo        // identity -> its newest age-key entry (agekey.go)
}

// MaxPendingPerAuthor bounds the entries of one author a view holds while
// they wait for a missing predecessor, so that a single key cannot fill a
// replica's memory. Beyond it, Ingest refuses with ErrTooManyPending.
const MaxPendingPerAuthor = 4096

// ErrTooManyPending reports an entry refused because its author already
// has MaxPendingPerAuthor entries waiting for a predecessor.
var ErrTooManyPending = errors.New("too many entries waiting for a missing predecessor")

// NewView returns an empty view that keeps its entries in a MemStore of
// its own: for tests and for auditing exported files.
func NewView() *View {
	v := newView(NewMemStore())
	v.own = true
	return v
}

// newView returns an empty view whose accepted entries are in s: the view
// of a Ledger, which stores them.
func newView(s Store) *View {
	return &View{
		feeds:      make(map[ID]*feed),
		pending:    make(map[authorSeq][]*Entry),
		pendingBy:  make(map[ID]int),
		seen:       make(map[authorSeq]Hash),
		byHash:     make(map[Hash]authorSeq),
		store:      s,
		unstored:   make(map[authorSeq]*Entry),
		cache:      newEntryCache(EntryCacheSize),
		ids:        make(map[ID]ID),
		grants:     make(map[Hash]*GrantInfo),
		gx:         newGrantIndex(),
		revokedBy:  make(map[Hash]revokerSet),
		grantsBy:   make(map[ID]int),
		grantsTo:   make(map[ID]int),
		nonces:     make(map[nonceKey]struct{}),
		proofs:     make(map[ID]*EquivocationProof),
		proofLogs:  make(map[ID][]ProofLog),
		identities: make(map[ID]*IdentityBody),
		anchors:    make(map[ownerRecord]*AnchorBody),

		creds:          make(map[Hash]*CredentialInfo),
		credsBySubject: make(map[ID][]*CredentialInfo),
		breakGlass:     make(map[Hash]*BreakGlassInfo),
		firstBG:        make(map[requesterGrant]*BreakGlassInfo),
		reviews:        make(map[authorHash]*ReviewInfo),
	}
}

// Ingest verifies e and adds it to the view. It returns the entries that
// joined a feed as a result, in order: none if e waits for a missing
// predecessor or was already known, several if e filled a gap.
//
// An invalid entry (malformed, bad signature) is refused with an error and
// changes nothing. An entry that conflicts with a known entry of the same
// author and seq is evidence of equivocation: the view records the proof,
// treats the author as untrusted from then on, and returns an
// *EquivocationError carrying the proof.
//
// An entry that passed VerifyEntry or VerifyBatch lately (these very
// bytes: the memo is keyed by the entry's hash) is not verified again.
func (v *View) Ingest(e *Entry) ([]*Entry, error) {
	h := e.Hash()
	if !memoHas(h) {
		if err := e.verify(); err != nil {
			return nil, err
		}
	}
	return v.ingestVerified(e, h)
}

func (v *View) ingestVerified(e *Entry, h Hash) ([]*Entry, error) {
	f := v.feeds[e.Author]
	if f == nil {
		f = &feed{author: v.intern(e.Author)}
		v.feeds[e.Author] = f
	}
	slot := authorSeq{f.author, e.Seq}
	if old, ok := v.slotHash(f, slot); ok {
		if old == h {
			return nil, nil
		}
		v.noteNonce(e)
		prev, err := v.entryBySlot(slot, old)
		if err != nil {
			return nil, err
		}
		p, err := NewEquivocationProof(prev, e)
		if err != nil {
			return nil, err
		}
		v.addProof(p)
		return nil, &EquivocationError{Proof: p}
	}
	head := f.head()
	fits := e.Seq == head.Seq+1 && e.Prev == head.Hash && e.Time >= head.Time
	if !fits && v.pendingBy[e.Author] >= MaxPendingPerAuthor {
		// Refused, not held: nothing changes, and the entry can be
		// offered again once the gap has filled.
		return nil, &EntryError{Author: e.Author, Seq: e.Seq, Err: ErrTooManyPending}
	}
	v.byHash[h] = slot
	v.noteNonce(e)
	if !fits {
		// Wait for the predecessor. An entry that can never fit stays here:
		// its slot is taken, so a conflicting entry shows as equivocation.
		v.seen[slot] = h
		v.pending[slot] = append(v.pending[slot], e)
		v.nPend++
		v.pendingBy[e.Author]++
		return nil, nil
	}
	var accepted []*Entry
	for e != nil {
		v.accept(f, e, h)
		accepted = append(accepted, e)
		e = nil
		next := authorSeq{slot.author, f.head().Seq + 1}
		for i, p := range v.pending[next] {
			hd := f.head()
			if p.Prev == hd.Hash && p.Time >= hd.Time {
				e, h = p, v.seen[next]
				delete(v.seen, next)
				v.pending[next] = append(v.pending[next][:i], v.pending[next][i+1:]...)
				if len(v.pending[next]) == 0 {
					delete(v.pending, next)
				}
				v.nPend--
				v.pendingBy[slot.author]--
				break
			}
		}
	}
	return accepted, nil
}

func (v *View) noteNonce(e *Entry) {
	if e.Kind != KindAccess {
		return
	}
	b, err := decodeBody(e.Kind, e.Body)
	if err != nil {
		return
	}
	r, err := DecodeRequest(b.(*AccessBody).Request)
	if err != nil {
		return
	}
	k := nonceKey{v.intern(r.Requester), string(r.Nonce)}
	if _, ok := v.nonces[k]; ok {
		return
	}
	v.nonces[k] = struct{}{}
	if v.dirty != nil {
		v.dirty.nonces = append(v.dirty.nonces, k)
	}
}

func (v *View) addProof(p *EquivocationProof) {
	a := p.Author()
	if old, ok := v.proofs[a]; ok {
		// Keep one proof per author, chosen independently of arrival order.
		if string(old.A)+string(old.B) <= string(p.A)+string(p.B) {
			return
		}
	}
	v.proofs[a] = p
}

func (v *View) accept(f *feed, e *Entry, h Hash) {
	v.feedTables(f)
	f.hashes = append(f.hashes, h)
	if e.Kind == KindAccess {
		f.access = append(f.access, e.Seq)
	}
	f.hd = Head{Seq: e.Seq, Hash: h, Time: e.Time}
	v.keep(f, e)
	body, err := decodeBody(e.Kind, e.Body)
	if err != nil {
		// Verified before; cannot happen.
		return
	}
	switch b := body.(type) {
	case *IdentityBody:
		v.identities[f.author] = b
	case *AnchorBody:
		v.anchors[ownerRecord{f.author, b.Record}] = b
	case *Grant:
		v.loadGrants()
		owner := v.actsFor(f.author)
		gi := &GrantInfo{ID: h, Author: owner, Seq: e.Seq, Time: e.Time, Grant: *b}
		if owner != f.author {
			gi.Device = f.author
		}
		gi.Grantee = v.intern(b.Grantee)
		for _, s := range b.Scopes {
			if sc, err := ParseScope(s); err == nil {
				gi.parsed = append(gi.parsed, sc)
			}
		}
		v.grants[h] = gi
		v.gx.add(gi, !v.revokedBy[h].has(owner))
		v.noteGrantor(owner, gi.Grantee)
		v.grantsBy[owner]++
		v.grantsTo[gi.Grantee]++
		if v.dirty != nil {
			v.dirty.grants = append(v.dirty.grants, gi)
		}
	case *RevokeBody:
		v.loadGrants()
		if v.dirty != nil {
			v.dirty.revs[b.Grant] = struct{}{}
		}
		m := v.revokedBy[b.Grant]
		by := v.actsFor(f.author) // a device revokes for its owner
		if g, ok := v.grants[b.Grant]; ok && g.Author == by && !m.has(by) {
			v.gx.revoke(g)
		}
		if !m.has(by) {
			v.revokedBy[b.Grant] = append(m, by)
		}
	case *EquivocationProof:
		v.addProof(b)
		a := b.Author()
		v.proofLogs[a] = append(v.proofLogs[a], ProofLog{Author: a, Logger: f.author, Seq: e.Seq, Entry: h, Time: e.Time})
	case *CredentialBody:
		v.acceptCredential(e, h, b)
	case *BreakGlassBody:
		v.acceptBreakGlass(e, h, b)
	case *ReviewBody:
		v.acceptReview(e, h, b)
	case *LinkBody:
		v.acceptLink(e, b)
	case *ServeBody:
		v.acceptServe(e, b)
	case *RepairGrantBody: // repair.go: the repairer reads the owner's feed
		v.noteGrantor(f.author, b.Repairer)
	case *GuardianSetBody, *RecoveryBody, *RecoveryApprovalBody:
		v.acceptGuardian(e, h, b)
	case *DeviceBody:
		v.acceptDevice(e, b)
	case *DeviceRevokeBody:
		v.acceptDeviceRevoke(e, b)
	case *AgeKeyBody:
		v.acceptAgeKey(e, b)
	}
}

// Head returns the head of author's feed as far as it is contiguous.
func (v *View) Head(author ID) Head {
	if f := v.feeds[author]; f != nil {
		return f.head()
	}
	return Head{}
}

// HashAt returns the hash of author's accepted entry seq.
func (v *View) HashAt(author ID, seq uint64) (Hash, bool) {
	f := v.feeds[author]
	if f == nil || seq == 0 || seq > f.hd.Seq {
		return Hash{}, false
	}
	return v.feedTables(f).hashes[seq-1], true
}

// AccessSeqs returns the seqs of author's accepted access entries, in
// order, without reading an entry: so that the access log can be read
// from its newest entries back. The slice is the view's own: the caller
// must not change it.
func (v *View) AccessSeqs(author ID) []uint64 {
	if f := v.feeds[author]; f != nil {
		return slices.Clip(v.feedTables(f).access)
	}
	return nil
}

// EntryAt returns author's accepted entry seq, read from the view's store
// through its cache. An entry the view has not accepted is ErrNotFound.
func (v *View) EntryAt(author ID, seq uint64) (*Entry, error) {
	f := v.feeds[author]
	if f == nil || seq == 0 || seq > f.hd.Seq {
		return nil, fmt.Errorf("entry %s#%d: %w", author.Short(), seq, ErrNotFound)
	}
	return v.acceptedAt(authorSeq{f.author, seq})
}

// acceptedAt reads the accepted entry at slot k: from the entries not
// stored yet, the cache or the store.
func (v *View) acceptedAt(k authorSeq) (*Entry, error) {
	if e, ok := v.unstored[k]; ok {
		return e, nil
	}
	if e, ok := v.cache.get(k); ok {
		return e, nil
	}
	e, err := v.store.Get(k.author, k.seq)
	if err != nil {
		return nil, fmt.Errorf("ledger view: %w", err)
	}
	v.cache.add(k, e)
	return e, nil
}

// FeedFrom calls fn with author's accepted entries from seq from (1 for
// the whole feed) to the head, in order, and stops at the first error fn
// returns. The entries are streamed from the store, past the cache: a
// long feed costs no more memory than one entry. fn must not change the
// view or write to its store (the store may hold a read transaction open
// while fn runs).
func (v *View) FeedFrom(author ID, from uint64, fn func(*Entry) error) error {
	f := v.feeds[author]
	if f == nil {
		return nil
	}
	last := f.hd.Seq
	next := max(from, 1)
	errStop := errors.New("stop")
	for next <= last {
		k := authorSeq{f.author, next}
		if e, ok := v.unstored[k]; ok {
			if err := fn(e); err != nil {
				return err
			}
			next++
			continue
		}
		var ferr error
		err := v.store.ScanFeed(f.author, next, func(e *Entry) error {
			if e.Seq != next || e.Seq > last {
				return errStop // past the head, or the rest is not stored yet
			}
			if _, ok := v.unstored[authorSeq{f.author, e.Seq}]; ok {
				return errStop
			}
			if ferr = fn(e); ferr != nil {
				return ferr
			}
			next++
			return nil
		})
		if ferr != nil {
			return ferr
		}
		if err != nil && !errors.Is(err, errStop) {
			return fmt.Errorf("ledger view: read feed %s: %w", author.Short(), err)
		}
		if _, ok := v.unstored[authorSeq{f.author, next}]; next <= last && !ok {
			return fmt.Errorf("ledger view: read feed %s#%d: %w", author.Short(), next, ErrNotFound)
		}
	}
	return nil
}

// entriesOf ranges over author's accepted entries (with their index,
// seq-1), streamed as FeedFrom does. A store that cannot be read ends the
// walk early, as it ends Feed's slice: a view's own MemStore never fails.
func (v *View) entriesOf(author ID) iter.Seq2[int, *Entry] {
	return func(yield func(int, *Entry) bool) {
		stop := errors.New("stop")
		_ = v.FeedFrom(author, 1, func(e *Entry) error {
			if !yield(int(e.Seq-1), e) {
				return stop
			}
			return nil
		})
	}
}

// hashOf returns the hash of e, an entry the view accepted or holds
// pending, without encoding it again.
func (v *View) hashOf(e *Entry) Hash {
	if f := v.feeds[e.Author]; f != nil {
		if h, ok := v.slotHash(f, authorSeq{e.Author, e.Seq}); ok {
			return h
		}
	}
	return Hash{}
}

// Feed returns the accepted entries of author's feed, in order. It reads
// the whole feed into memory: costly for a long feed, and meant for tests
// and small feeds; FeedFrom streams, HashAt and Head answer without
// reading entries. An entry the store cannot give ends the slice early.
func (v *View) Feed(author ID) []*Entry {
	var out []*Entry
	_ = v.FeedFrom(author, 1, func(e *Entry) error { out = append(out, e); return nil })
	return out
}

// Authors returns the authors with at least one accepted entry, sorted.
func (v *View) Authors() []ID {
	out := make([]ID, 0, len(v.feeds))
	for a, f := range v.feeds {
		if f.hd.Seq > 0 {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Entry returns an accepted or pending entry by hash. An accepted entry is
// read from the store, through the cache.
func (v *View) Entry(h Hash) (*Entry, bool) {
	k, ok := v.slotOf(h)
	if !ok {
		return nil, false
	}
	e, err := v.entryBySlot(k, h)
	return e, err == nil
}

// Has reports whether the view holds the entry with hash h, accepted or
// pending, without reading it.
func (v *View) Has(h Hash) bool {
	_, ok := v.slotOf(h)
	return ok
}

// slotHash is the hash of the entry that holds slot k of feed f, accepted
// or pending.
func (v *View) slotHash(f *feed, k authorSeq) (Hash, bool) {
	if k.seq >= 1 && k.seq <= f.hd.Seq {
		return v.feedTables(f).hashes[k.seq-1], true
	}
	h, ok := v.seen[k]
	return h, ok
}

// entryBySlot returns the entry with hash h at slot k, accepted or pending.
func (v *View) entryBySlot(k authorSeq, h Hash) (*Entry, error) {
	if f := v.feeds[k.author]; f != nil && k.seq >= 1 && k.seq <= f.hd.Seq && v.feedTables(f).hashes[k.seq-1] == h {
		return v.acceptedAt(authorSeq{f.author, k.seq})
	}
	for _, e := range v.pending[k] {
		if len(v.pending[k]) == 1 || e.Hash() == h {
			return e, nil
		}
	}
	return nil, fmt.Errorf("entry %s#%d: %w", k.author.Short(), k.seq, ErrNotFound)
}

// keep makes accepted entry e readable: written to the view's own store,
// or held until the Ledger has stored it.
func (v *View) keep(f *feed, e *Entry) {
	k := authorSeq{f.author, e.Seq}
	if v.own {
		if err := v.store.Put(e); err == nil {
			return
		}
		// A MemStore refuses only when closed, which a view's own never is.
	}
	v.unstored[k] = e
}

// intern returns id as the view first met it, so that the many entries
// naming one identity hold one copy of its string.
func (v *View) intern(id ID) ID {
	if x, ok := v.ids[id]; ok {
		return x
	}
	v.ids[id] = id
	return id
}

// stored tells the view that its store now holds es (accepted entries):
// it stops holding them in memory.
func (v *View) stored(es []*Entry) {
	for _, e := range es {
		delete(v.unstored, authorSeq{e.Author, e.Seq})
	}
}

// Pending is the number of entries waiting for a missing predecessor.
func (v *View) Pending() int { return v.nPend }

// Grant returns an accepted grant by ID.
func (v *View) Grant(id Hash) (*GrantInfo, bool) { return v.grantOf(id) }

// Grants returns every accepted grant, oldest first (by time, then ID).
func (v *View) Grants() []*GrantInfo {
	gs := v.grantMap()
	out := make([]*GrantInfo, 0, len(gs))
	for _, g := range gs {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Time != b.Time {
			return a.Time < b.Time
		}
		return string(a.ID[:]) < string(b.ID[:])
	})
	return out
}

// Revoked reports whether grant id has been revoked by its author.
func (v *View) Revoked(id Hash) bool {
	g, ok := v.grantOf(id)
	return ok && v.revokers(id).has(g.Author)
}

// Equivocating reports whether author is known to have equivocated: the
// view was handed two entries of author with one seq, or holds an accepted
// equivocation entry (by any author) proving it. The second survives a
// restart, since it is an entry of the ledger.
func (v *View) Equivocating(author ID) bool {
	_, ok := v.proofs[author]
	return ok
}

// Proof returns the equivocation proof the view holds against author: one
// it found itself or one logged in an equivocation entry. Which of several
// proofs is kept does not depend on the order they arrived in.
func (v *View) Proof(author ID) (*EquivocationProof, bool) {
	p, ok := v.proofs[author]
	return p, ok
}

// ProofLog is an accepted equivocation entry: Logger logged, in its
// entry Seq (hash Entry, dated Time), a proof that Author equivocated.
type ProofLog struct {
	Author ID     `json:"author"`
	Logger ID     `json:"logger"`
	Seq    uint64 `json:"seq"`
	Entry  Hash   `json:"entry"`
	Time   int64  `json:"time"`
}

// ProofLogs returns the accepted equivocation entries against author, by
// logger then seq. Empty while the view knows of the equivocation only
// from two entries it was handed (the proof then lives in memory only,
// until someone logs it).
func (v *View) ProofLogs(author ID) []ProofLog {
	out := slices.Clone(v.proofLogs[author])
	slices.SortFunc(out, func(a, b ProofLog) int {
		if c := cmp.Compare(a.Logger, b.Logger); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return out
}

// Proofs returns one equivocation proof per equivocating author, by author.
func (v *View) Proofs() []*EquivocationProof {
	out := make([]*EquivocationProof, 0, len(v.proofs))
	for _, p := range v.proofs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Author() < out[j].Author() })
	return out
}

// Identity returns the identity body announced in author's feed, if any.
func (v *View) Identity(author ID) (*IdentityBody, bool) {
	b, ok := v.identities[author]
	return b, ok
}

// Anchor returns the latest anchor of record in owner's feed.
func (v *View) Anchor(owner ID, record string) (*AnchorBody, bool) {
	b, ok := v.anchors[ownerRecord{owner, record}]
	return b, ok
}

// NonceSeen reports whether an access entry already carried a request by
// requester with this nonce.
func (v *View) NonceSeen(requester ID, nonce []byte) bool {
	return v.nonceSeen(nonceKey{requester, string(nonce)})
}

// IngestAll ingests entries in order and returns the first error that is
// not an equivocation (equivocations are recorded in the view).
func (v *View) IngestAll(entries []*Entry) error {
	for _, e := range entries {
		if _, err := v.Ingest(e); err != nil && !errors.Is(err, ErrEquivocation) {
			return err
		}
	}
	return nil
}
