package consent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
)

// The tables of a restored view that grow with the history (grants,
// revocations, nonces, the hash index) stay in the store (state.go) and
// are read on demand. A lookup reads one key; a listing reads the keys it
// yields; what needs every grant (Decide's index, Grants, a new grant or
// revocation) loads the grants and revocations once. A table that cannot
// be read is rebuilt from the entries, and saved whole at the next save:
// the state is a cache.

// stateSrc is the saved state a view was restored from (or last saved
// whole to), which its lazy tables read.
type stateSrc struct {
	ss StateStore
	// grantsOnce loads grants and revocations; grantsLoaded says it did.
	grantsOnce   sync.Once
	grantsLoaded atomic.Bool
	// broken is set when a table proved unreadable: the next save writes
	// every table again.
	broken atomic.Bool
	// nonceOnce rebuilds allNonces from the entries when table "n"
	// cannot be read.
	nonceOnce sync.Once
	allNonces map[nonceKey]struct{}
}

// stateDirty is what changed since the state was loaded or last saved,
// beside the feeds (feed.saved, feed.savedAcc).
type stateDirty struct {
	grants []*GrantInfo
	revs   map[Hash]struct{}
	nonces []nonceKey
}

func newStateDirty() *stateDirty { return &stateDirty{revs: make(map[Hash]struct{})} }

// grantsLoaded reports whether v.grants, v.revokedBy and v.gx hold every
// grant and revocation.
func (v *View) grantsLoaded() bool { return v.src == nil || v.src.grantsLoaded.Load() }

// loadGrants loads the grants and revocations of a restored view, once;
// several readers may call it at once.
func (v *View) loadGrants() {
	src := v.src
	if src == nil {
		return
	}
	src.grantsOnce.Do(func() {
		gs, revs, err := v.readGrantTables()
		if err != nil {
			src.broken.Store(true)
			gs, revs = v.grantsFromEntries()
		}
		v.fillGrants(gs, revs)
		src.grantsLoaded.Store(true)
	})
}

// readGrantTables reads tables "g" and "r" whole.
func (v *View) readGrantTables() ([]*GrantInfo, map[Hash]revokerSet, error) {
	var gs []*GrantInfo
	scopes := make(map[string]Scope)
	err := v.src.ss.StateScan(tableGrants, nil, nil, false, func(k, b []byte) error {
		g, err := v.decodeGrant(k, b, scopes)
		if err == nil {
			gs = append(gs, g)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	revs := make(map[Hash]revokerSet)
	err = v.src.ss.StateScan(tableRevoked, nil, nil, false, func(k, b []byte) error {
		m, err := v.decodeRevokers(k, b)
		if err == nil {
			revs[Hash(k)] = m
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return gs, revs, nil
}

// decodeGrant decodes a value of table "g" at key k (scopes caches parsed
// scopes; nil for none).
func (v *View) decodeGrant(k, b []byte, scopes map[string]Scope) (*GrantInfo, error) {
	var sg storedGrant
	if err := stateDec.Unmarshal(b, &sg); err != nil || len(k) != len(Hash{}) || !bytes.Equal(sg.ID[:], k) || sg.Author == "" {
		return nil, ErrStateCorrupt
	}
	gi := &GrantInfo{ID: sg.ID, Author: v.intern(sg.Author), Seq: sg.Seq, Time: sg.Time, Grant: sg.Body}
	if sg.Device != "" {
		gi.Device = v.intern(sg.Device)
	}
	gi.Grantee = v.intern(gi.Grantee)
	for _, s := range gi.Scopes {
		sc, ok := scopes[s]
		if !ok {
			var err error
			if sc, err = ParseScope(s); err != nil {
				continue
			}
			if scopes != nil {
				scopes[s] = sc
			}
		}
		gi.parsed = append(gi.parsed, sc)
	}
	return gi, nil
}

// decodeRevokers decodes a value of table "r".
func (v *View) decodeRevokers(k, b []byte) (revokerSet, error) {
	var as []ID
	if err := stateDec.Unmarshal(b, &as); err != nil || len(k) != len(Hash{}) || len(as) == 0 {
		return nil, ErrStateCorrupt
	}
	for i, a := range as {
		as[i] = v.intern(a)
	}
	return revokerSet(as), nil
}

// grantsFromEntries gathers the grants and revocations of the accepted
// entries from the store.
func (v *View) grantsFromEntries() ([]*GrantInfo, map[Hash]revokerSet) {
	var gs []*GrantInfo
	revs := make(map[Hash]revokerSet)
	for _, a := range v.Authors() {
		f := v.feeds[a]
		_ = v.FeedFrom(a, 1, func(e *Entry) error {
			if e.Kind != KindGrant && e.Kind != KindRevoke {
				return nil
			}
			body, err := decodeBody(e.Kind, e.Body)
			if err != nil {
				return nil
			}
			switch b := body.(type) {
			case *Grant:
				gi := &GrantInfo{ID: f.hashes[e.Seq-1], Author: v.actsFor(f.author), Seq: e.Seq, Time: e.Time, Grant: *b}
				if gi.Author != f.author {
					gi.Device = f.author
				}
				gi.Grantee = v.intern(b.Grantee)
				for _, s := range b.Scopes {
					if sc, err := ParseScope(s); err == nil {
						gi.parsed = append(gi.parsed, sc)
					}
				}
				gs = append(gs, gi)
			case *RevokeBody:
				if by := v.actsFor(f.author); !revs[b.Grant].has(by) {
					revs[b.Grant] = append(revs[b.Grant], by)
				}
			}
			return nil
		})
	}
	return gs, revs
}

// fillGrants sets the view's grants and revocations, and builds the grant
// index in ID order: a grant is live unless its author revoked it, and
// the index does not depend on the order grants came in.
func (v *View) fillGrants(gs []*GrantInfo, revs map[Hash]revokerSet) {
	slices.SortFunc(gs, cmpGrantID)
	v.grants = make(map[Hash]*GrantInfo, len(gs))
	for _, g := range gs {
		v.grants[g.ID] = g
	}
	v.revokedBy = revs
	v.gx = newGrantIndex()
	for _, g := range gs {
		v.gx.add(g, !revs[g.ID].has(g.Author))
	}
}

// grantMap returns every grant, loading them if need be. The map is the
// view's own.
func (v *View) grantMap() map[Hash]*GrantInfo {
	v.loadGrants()
	return v.grants
}

// revokedMap returns every revocation, loading them if need be.
func (v *View) revokedMap() map[Hash]revokerSet {
	v.loadGrants()
	return v.revokedBy
}

// grantOf returns an accepted grant by ID: from memory, or one key of
// table "g".
func (v *View) grantOf(id Hash) (*GrantInfo, bool) {
	if !v.grantsLoaded() {
		var g *GrantInfo
		err := v.src.ss.StateGet(tableGrants, id[:], func(b []byte) error {
			if b == nil {
				return nil
			}
			var err error
			g, err = v.decodeGrantShared(id[:], b)
			return err
		})
		if err == nil {
			return g, g != nil
		}
		v.src.broken.Store(true)
	}
	g, ok := v.grantMap()[id]
	return g, ok
}

// decodeGrantShared is decodeGrant for readers that may run at once:
// it does not intern (intern writes the view's table of IDs).
func (v *View) decodeGrantShared(k, b []byte) (*GrantInfo, error) {
	var sg storedGrant
	if err := stateDec.Unmarshal(b, &sg); err != nil || !bytes.Equal(sg.ID[:], k) || sg.Author == "" {
		return nil, ErrStateCorrupt
	}
	gi := &GrantInfo{ID: sg.ID, Author: sg.Author, Seq: sg.Seq, Time: sg.Time, Grant: sg.Body, Device: sg.Device}
	for _, s := range gi.Scopes {
		if sc, err := ParseScope(s); err == nil {
			gi.parsed = append(gi.parsed, sc)
		}
	}
	return gi, nil
}

// revokerSet is the authors who revoked an entry, each once: a slice,
// since there is rarely more than one (a map per revoked entry cost
// hundreds of bytes each).
type revokerSet []ID

func (s revokerSet) has(id ID) bool { return slices.Contains(s, id) }

// revokers returns the authors who revoked entry h (a grant or a
// credential): from memory, or one key of table "r". The set must not be
// changed.
func (v *View) revokers(h Hash) revokerSet {
	if !v.grantsLoaded() {
		var m revokerSet
		err := v.src.ss.StateGet(tableRevoked, h[:], func(b []byte) error {
			if b == nil {
				return nil
			}
			var as []ID
			if err := stateDec.Unmarshal(b, &as); err != nil || len(as) == 0 {
				return ErrStateCorrupt
			}
			m = as
			return nil
		})
		if err == nil {
			return m
		}
		v.src.broken.Store(true)
	}
	return v.revokedMap()[h]
}

// nonceSeen reports whether a logged request of requester carried nonce:
// from memory, or one key of table "n".
func (v *View) nonceSeen(k nonceKey) bool {
	if _, ok := v.nonces[k]; ok {
		return true
	}
	src := v.src
	if src == nil || v.noncesAll {
		return false
	}
	var found bool
	err := src.ss.StateGet(tableNonces, nonceTableKey(k.requester, []byte(k.nonce)), func(b []byte) error {
		found = b != nil
		return nil
	})
	if err == nil {
		return found
	}
	src.broken.Store(true)
	src.nonceOnce.Do(func() { src.allNonces = v.rebuildNonces() })
	_, ok := src.allNonces[k]
	return ok
}

// allNonces returns every nonce the view holds: a restored view reads
// table "n" whole (or the entries, when it cannot).
func (v *View) allNonces() map[nonceKey]struct{} {
	src := v.src
	if src == nil || v.noncesAll {
		return v.nonces
	}
	m := make(map[nonceKey]struct{}, len(v.nonces))
	err := src.ss.StateScan(tableNonces, nil, nil, false, func(k, _ []byte) error {
		i := bytes.IndexByte(k, 0)
		if i <= 0 {
			return ErrStateCorrupt
		}
		m[nonceKey{ID(k[:i]), string(k[i+1:])}] = struct{}{}
		return nil
	})
	if err != nil {
		src.broken.Store(true)
		m = v.rebuildNonces()
	}
	for k := range v.nonces {
		m[k] = struct{}{}
	}
	return m
}

// rebuildNonces gathers the nonces of the accepted entries and of the
// proofs' entries from the store. A store that cannot be read leaves the
// nonces it holds out: the view then answers as one that never saw them.
func (v *View) rebuildNonces() map[nonceKey]struct{} {
	m := make(map[nonceKey]struct{})
	note := func(e *Entry) {
		if e.Kind != KindAccess {
			return
		}
		if b, err := decodeBody(e.Kind, e.Body); err == nil {
			if r, err := DecodeRequest(b.(*AccessBody).Request); err == nil {
				m[nonceKey{r.Requester, string(r.Nonce)}] = struct{}{}
			}
		}
	}
	for _, a := range v.Authors() {
		_ = v.FeedFrom(a, 1, func(e *Entry) error { note(e); return nil })
	}
	for _, p := range v.proofs {
		note(p.a)
		note(p.b)
	}
	for k := range v.nonces {
		m[k] = struct{}{}
	}
	return m
}

// lazyByHash indexes the hashes of a restored view's feeds, built on the
// first lookup by hash that the view's own index (what it ingested since
// it was restored) does not answer.
type lazyByHash struct {
	once sync.Once
	m    map[Hash]authorSeq
}

// slotOf returns the slot of the entry with hash h, accepted or pending.
// Read-only methods may call it concurrently (once builds).
func (v *View) slotOf(h Hash) (authorSeq, bool) {
	if k, ok := v.byHash[h]; ok {
		return k, true
	}
	lb := v.lazyByHash
	if lb == nil {
		return authorSeq{}, false
	}
	lb.once.Do(func() {
		n := 0
		for _, f := range v.feeds {
			n += int(f.hd.Seq)
		}
		m := make(map[Hash]authorSeq, n)
		for _, f := range v.feeds {
			for j, h := range v.feedTables(f).hashes {
				m[h] = authorSeq{f.author, uint64(j + 1)}
			}
		}
		lb.m = m
	})
	k, ok := lb.m[h]
	return k, ok
}

// GrantsBy ranges over owner's grants (those it authored), newest first:
// by time, then by ID, both descending (Grants' order reversed). A view
// restored from a saved state reads only the grants it yields, so a page
// of the newest grants costs what the page holds, not the history.
// GrantCountBy says how many there are.
func (v *View) GrantsBy(owner ID) iter.Seq[*GrantInfo] {
	return v.newestGrants(tableByOwner, owner, func(g *GrantInfo) bool { return g.Author == owner })
}

// GrantsTo ranges over the grants whose grantee is grantee (an identity,
// or the role ID of role grants), newest first, as GrantsBy does.
// GrantCountTo says how many there are.
func (v *View) GrantsTo(grantee ID) iter.Seq[*GrantInfo] {
	return v.newestGrants(tableByGrantee, grantee, func(g *GrantInfo) bool { return g.Grantee == grantee })
}

// GrantCountBy is the number of grants owner authored, without reading
// any.
func (v *View) GrantCountBy(owner ID) int { return v.grantsBy[owner] }

// GrantCountTo is the number of grants to grantee, without reading any.
func (v *View) GrantCountTo(grantee ID) int { return v.grantsTo[grantee] }

// grantsPage is how many grant IDs newestGrants reads from an index
// table at once.
const grantsPage = 64

func (v *View) newestGrants(table string, id ID, match func(*GrantInfo) bool) iter.Seq[*GrantInfo] {
	return func(yield func(*GrantInfo) bool) {
		var last *GrantInfo
		if !v.grantsLoaded() {
			var done bool
			if done, last = v.newestFromTables(table, id, yield); done {
				return
			}
		}
		var gs []*GrantInfo
		for _, g := range v.grantMap() {
			if match(g) && (last == nil || cmpGrantTime(g, last) < 0) {
				gs = append(gs, g)
			}
		}
		slices.SortFunc(gs, func(a, b *GrantInfo) int { return -cmpGrantTime(a, b) })
		for _, g := range gs {
			if !yield(g) {
				return
			}
		}
	}
}

func cmpGrantTime(a, b *GrantInfo) int {
	if a.Time != b.Time {
		if a.Time < b.Time {
			return -1
		}
		return 1
	}
	return cmpGrantID(a, b)
}

// newestFromTables yields id's grants from an index table, a page at a
// time (the store is not called while a scan holds it). done is false
// when the tables could not be read to the end: the caller then goes on
// from the grants in memory, past last, the last grant yielded.
func (v *View) newestFromTables(table string, id ID, yield func(*GrantInfo) bool) (done bool, last *GrantInfo) {
	prefix := idPrefix(id)
	errPage := errors.New("page")
	var after []byte
	for {
		var ids []Hash
		err := v.src.ss.StateScan(table, prefix, after, true, func(k, _ []byte) error {
			if len(k) != len(prefix)+8+len(Hash{}) {
				return ErrStateCorrupt
			}
			ids = append(ids, Hash(k[len(k)-len(Hash{}):]))
			if len(ids) == grantsPage {
				after = bytes.Clone(k)
				return errPage
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPage) {
			v.src.broken.Store(true)
			return false, last
		}
		for _, gid := range ids {
			g, ok := v.grantOf(gid)
			if !ok {
				v.src.broken.Store(true)
				return false, last
			}
			if !yield(g) {
				return true, g
			}
			last = g
		}
		if err == nil {
			return true, last
		}
	}
}

// lazyFeed is what a restored feed needs to read its tables once.
type lazyFeed struct {
	once   sync.Once
	loaded atomic.Bool
}

// loaded reports whether f's hashes and access seqs are in memory.
func (f *feed) loaded() bool { return f.lazy == nil || f.lazy.loaded.Load() }

// nAccess is the number of f's access entries, read or not.
func (f *feed) nAccess() int {
	if !f.loaded() {
		return f.savedAcc
	}
	return len(f.access)
}

// feedTables returns f with its hashes and access seqs in memory: a
// restored feed reads them from tables "h" and "a" on first use (copied,
// not decoded; one key per hashChunk), or from the entries when the
// tables cannot be read. Read-only methods may call it concurrently.
func (v *View) feedTables(f *feed) *feed {
	lf := f.lazy
	if lf == nil {
		return f
	}
	lf.once.Do(func() {
		if err := v.readFeedTables(f); err != nil {
			v.src.broken.Store(true)
			v.feedFromEntries(f)
		}
		lf.loaded.Store(true)
	})
	return f
}

func (v *View) readFeedTables(f *feed) error {
	const hl = len(Hash{})
	n := f.hd.Seq
	hs := make([]Hash, 0, n)
	ss := v.src.ss
	err := ss.StateScan(tableHashes, idPrefix(f.author), nil, false, func(k, b []byte) error {
		if binary.BigEndian.Uint64(k[len(k)-8:]) != uint64(len(hs))/hashChunk ||
			len(b) == 0 || len(b)%hl != 0 || uint64(len(hs)+len(b)/hl) > n || len(hs)%hashChunk != 0 {
			return ErrStateCorrupt
		}
		for j := 0; j < len(b); j += hl {
			hs = append(hs, Hash(b[j:j+hl]))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if uint64(len(hs)) != n || hs[n-1] != f.hd.Hash {
		return ErrStateCorrupt
	}
	acc := make([]uint64, 0, f.savedAcc)
	err = ss.StateScan(tableAccess, idPrefix(f.author), nil, false, func(k, b []byte) error {
		if binary.BigEndian.Uint64(k[len(k)-8:]) != uint64(len(acc))/hashChunk ||
			len(b) == 0 || len(b)%8 != 0 || len(acc)%hashChunk != 0 {
			return ErrStateCorrupt
		}
		for j := 0; j < len(b); j += 8 {
			seq := binary.BigEndian.Uint64(b[j:])
			if seq == 0 || seq > n || len(acc) > 0 && acc[len(acc)-1] >= seq {
				return ErrStateCorrupt
			}
			acc = append(acc, seq)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(acc) != f.savedAcc {
		return ErrStateCorrupt
	}
	f.hashes, f.access = hs, acc
	return nil
}

// feedFromEntries fills f's hashes and access seqs from its entries. A
// store that cannot be read leaves zero hashes for what it did not give.
func (v *View) feedFromEntries(f *feed) {
	n := f.hd.Seq
	hs := make([]Hash, 0, n)
	var acc []uint64
	_ = v.FeedFrom(f.author, 1, func(e *Entry) error {
		hs = append(hs, e.Hash())
		if e.Kind == KindAccess {
			acc = append(acc, e.Seq)
		}
		return nil
	})
	for uint64(len(hs)) < n {
		hs = append(hs, Hash{})
	}
	f.hashes, f.access = hs, acc
}
