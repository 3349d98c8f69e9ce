package consent

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/medwallet/medwallet/internal/canon"
)

// The view state: what a View derives from its entries (feeds' hashes and
// heads, grants, revocations, nonces, proofs, identities, anchors,
// credentials, break-glass entries, reviews, links, serving sets and
// grantors), encoded so that a Ledger can save it beside its entries and
// load it at open instead of reading every entry again. It is a cache,
// not part of the wire format: nothing else reads it, a state that does
// not decode or is of another version is simply rebuilt from the entries,
// and its encoding may change with any release (bump StateVersion).
//
// Encoding: deterministic CBOR (RFC 8949 4.2.1), an array
// [StateVersion, SHA-256(payload), payload], the payload being the CBOR of
// viewState. Every table is sorted, so that two views that hold the same
// state encode to the same bytes.

// StateVersion is the version of the view state encoding. A state of
// another version is ignored (and rebuilt).
const StateVersion = 2

// Errors of reading a state back. A Ledger treats any of them as "no
// state", and rebuilds the view from the entries.
var (
	ErrStateVersion = errors.New("view state of another version")
	ErrStateCorrupt = errors.New("view state is corrupt")
	// ErrStatePending reports a view that holds entries waiting for a
	// predecessor: its state cannot be saved (they are in no store).
	ErrStatePending = errors.New("view holds pending entries")
)

// StateStore is implemented by stores that can keep a view state beside
// their entries (boltstore.Store). A Ledger over such a store loads the
// state at open when it describes the store's current generation, and
// saves a fresh one when it closes (SaveState). MemStore does not
// implement it.
type StateStore interface {
	// Generation is the number of entries the store holds: every Put or
	// PutBatch that adds entries raises it by as many, in the same
	// transaction.
	Generation() (uint64, error)
	// ReadState calls fn with the saved state if there is one and it
	// describes the store as it is (its generation is the store's), and
	// returns fn's error. b may be the store's own memory: fn must not
	// keep it, nor anything that aliases it.
	ReadState(fn func(b []byte) error) error
	// SaveState replaces the saved state with b, which describes
	// generation gen.
	SaveState(gen uint64, b []byte) error
}

// stateEnvelope is the shape of a state: EncodeState and decodeState
// write and read it by hand (so as not to copy the payload), and the
// tests check that it is this type's canonical CBOR.
type stateEnvelope struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Sum     []byte
	Payload []byte
}

// viewState is the payload of a state. Every slice is sorted by its first
// field (then its second where the first repeats).
type viewState struct {
	_ struct{} `cbor:",toarray"`
	// IDs are the IDs the tables below name by stateRef, sorted: the feeds'
	// authors, grants' authors, grantees and issuers, revokers, requesters
	// and grantors, each written once however many entries name it.
	IDs         []ID
	Feeds       []stateFeed
	Grants      []stateGrant
	Revocations []stateRevocation
	Nonces      stateNonceTable
	Proofs      []stateProof
	ProofLogs   []stateProofLog
	Identities  []stateIdentity
	Anchors     []stateAnchor
	Credentials []stateCredential
	BreakGlass  []stateBreakGlass
	Reviews     []stateReview
	Links       []stateLink
	Serving     []stateServe
	Grantors    []stateGrantors
}

// stateFeed is a feed: the hashes of its entries, seq 1 first, end to end
// (32 bytes each), the time of its head entry and the seqs of its access
// entries, in order.
type stateFeed struct {
	_        struct{} `cbor:",toarray"`
	Author   stateRef
	Hashes   []byte
	HeadTime int64
	Access   []uint64
}

// stateGrant is a grant; its body's Grantee and Issuer are empty, named
// by reference beside it.
type stateGrant struct {
	_       struct{} `cbor:",toarray"`
	ID      Hash
	Author  stateRef
	Seq     uint64
	Time    int64
	Grantee stateRef
	Issuer  stateRef
	Body    Grant
}

// stateRevocation is an entry hash and the authors who revoked it.
type stateRevocation struct {
	_       struct{} `cbor:",toarray"`
	Target  Hash
	Authors []stateRef
}

// stateNonceTable is the nonce table of a state, encoded as
// []stateNonces. Decoding a state keeps the table's encoding only (a
// copy, list nil): the view decodes it when a nonce is first asked
// (View.nonceSet), since most commands never ask.
type stateNonceTable struct {
	list []stateNonces
	raw  []byte
}

// MarshalCBOR implements cbor.Marshaler: the list, or the encoding a
// decoded table kept.
func (t stateNonceTable) MarshalCBOR() ([]byte, error) {
	if t.raw != nil {
		return t.raw, nil
	}
	return canon.Marshal(t.list)
}

// UnmarshalCBOR implements cbor.Unmarshaler: b is copied, not decoded.
func (t *stateNonceTable) UnmarshalCBOR(b []byte) error {
	if major, _, _, ok := stateHead(b); !ok || major != 4 && !(len(b) == 1 && b[0] == 0xf6) {
		return fmt.Errorf("%w: nonce table", ErrStateCorrupt)
	}
	t.raw = bytes.Clone(b)
	return nil
}

// decodeNonces decodes a nonce table kept by UnmarshalCBOR, its
// requesters named in ids.
func decodeNonces(raw []byte, ids []ID) (map[nonceKey]struct{}, error) {
	var ns []stateNonces
	if err := stateDec.Unmarshal(raw, &ns); err != nil {
		return nil, fmt.Errorf("%w: nonce table: %v", ErrStateCorrupt, err)
	}
	n := 0
	for i := range ns {
		n += len(ns[i].Nonces)
	}
	m := make(map[nonceKey]struct{}, n)
	for i := range ns {
		r, err := lookup(ids, ns[i].Requester)
		if err != nil {
			return nil, err
		}
		for _, x := range ns[i].Nonces {
			m[nonceKey{r, string(x)}] = struct{}{}
		}
	}
	return m, nil
}

// stateNonces are the nonces of one requester's logged requests.
type stateNonces struct {
	_         struct{} `cbor:",toarray"`
	Requester stateRef
	Nonces    [][]byte
}

type stateProof struct {
	_      struct{} `cbor:",toarray"`
	Author ID
	A, B   []byte
}

type stateProofLog struct {
	_      struct{} `cbor:",toarray"`
	Author ID
	Logger ID
	Seq    uint64
	Entry  Hash
	Time   int64
}

type stateIdentity struct {
	_      struct{} `cbor:",toarray"`
	Author ID
	Body   IdentityBody
}

type stateAnchor struct {
	_     struct{} `cbor:",toarray"`
	Owner ID
	Body  AnchorBody
}

type stateCredential struct {
	_      struct{} `cbor:",toarray"`
	ID     Hash
	Issuer ID
	Seq    uint64
	Time   int64
	Body   CredentialBody
}

type stateBreakGlass struct {
	_      struct{} `cbor:",toarray"`
	ID     Hash
	Author ID
	Seq    uint64
	Time   int64
	Body   BreakGlassBody
}

type stateReview struct {
	_       struct{} `cbor:",toarray"`
	Author  ID
	Access  Hash
	ID      Hash
	Time    int64
	Outcome string
	Note    []byte
}

type stateLink struct {
	_    struct{} `cbor:",toarray"`
	Feed ID
	Body LinkBody
}

type stateServe struct {
	_      struct{} `cbor:",toarray"`
	Author ID
	Body   ServeBody
}

// stateGrantors lists the owners granting a grantee, sorted (the order a
// view rebuilt from a store has them in).
type stateGrantors struct {
	_       struct{} `cbor:",toarray"`
	Grantee stateRef
	Owners  []stateRef
}

// stateRef names an ID of viewState.IDs: i+1 for IDs[i], 0 for none.
type stateRef uint64

// idTable assigns references to the IDs of a state.
type idTable struct {
	ids  []ID
	refs map[ID]stateRef
}

func (t *idTable) note(id ID) {
	if id == "" {
		return
	}
	if _, ok := t.refs[id]; !ok {
		t.refs[id] = 0
		t.ids = append(t.ids, id)
	}
}

// number sorts the IDs noted and numbers them.
func (t *idTable) number() {
	slices.Sort(t.ids)
	for i, id := range t.ids {
		t.refs[id] = stateRef(i + 1)
	}
}

func (t *idTable) ref(id ID) stateRef { return t.refs[id] }

// lookup resolves a reference of a decoded state.
func lookup(ids []ID, r stateRef) (ID, error) {
	if r == 0 {
		return "", nil
	}
	if r > stateRef(len(ids)) {
		return "", fmt.Errorf("%w: ID reference %d of %d", ErrStateCorrupt, r, len(ids))
	}
	return ids[r-1], nil
}

// stateDec decodes states. The payload is checked against its SHA-256
// before it is decoded, so the limits only need to admit large ledgers.
var stateDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  32,
		MaxArrayElements: math.MaxInt32,
		MaxMapPairs:      math.MaxInt32,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("consent: state decoder: %v", err))
	}
	return dm
}()

func cmpHash(a, b Hash) int { return bytes.Compare(a[:], b[:]) }

// EncodeState encodes the view's state. A view holding pending entries
// has no state (ErrStatePending).
func EncodeState(v *View) ([]byte, error) {
	if v.Pending() > 0 {
		return nil, ErrStatePending
	}
	st := v.state()
	payload, err := canon.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode view state: %w", err)
	}
	// The envelope, by hand: the payload is not copied twice.
	sum := sha256.Sum256(payload)
	b := make([]byte, 0, 32+len(sum)+len(payload))
	b = append(b, 0x83)
	b = appendStateHead(b, 0, StateVersion)
	b = appendStateHead(b, 2, uint64(len(sum)))
	b = append(b, sum[:]...)
	b = appendStateHead(b, 2, uint64(len(payload)))
	return append(b, payload...), nil
}

// state gathers the view's tables, sorted.
func (v *View) state() *viewState {
	st := &viewState{}
	t := &idTable{refs: make(map[ID]stateRef)}
	for a, f := range v.feeds {
		if len(f.hashes) > 0 {
			t.note(a)
		}
	}
	for _, g := range v.grants {
		t.note(g.Author)
		t.note(g.Grantee)
		t.note(g.Issuer)
	}
	for _, m := range v.revokedBy {
		for a := range m {
			t.note(a)
		}
	}
	byReq := make(map[ID][][]byte)
	for k := range v.nonceSet() {
		t.note(k.requester)
		byReq[k.requester] = append(byReq[k.requester], []byte(k.nonce))
	}
	for g, os := range v.grantors {
		t.note(g)
		for _, o := range os {
			t.note(o)
		}
	}
	t.number()
	st.IDs = t.ids

	for a, f := range v.feeds {
		if len(f.hashes) == 0 {
			continue
		}
		hs := make([]byte, 0, len(f.hashes)*len(Hash{}))
		for _, h := range f.hashes {
			hs = append(hs, h[:]...)
		}
		st.Feeds = append(st.Feeds, stateFeed{Author: t.ref(a), Hashes: hs, HeadTime: f.head().Time, Access: f.access})
	}
	slices.SortFunc(st.Feeds, func(a, b stateFeed) int { return cmp.Compare(a.Author, b.Author) })

	gs := make([]*GrantInfo, 0, len(v.grants))
	for _, g := range v.grants {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *GrantInfo) int { return cmpHash(a.ID, b.ID) })
	st.Grants = make([]stateGrant, len(gs))
	for i, g := range gs {
		sg := &st.Grants[i]
		*sg = stateGrant{ID: g.ID, Author: t.ref(g.Author), Seq: g.Seq, Time: g.Time,
			Grantee: t.ref(g.Grantee), Issuer: t.ref(g.Issuer), Body: g.Grant}
		sg.Body.Grantee, sg.Body.Issuer = "", ""
	}

	st.Revocations = make([]stateRevocation, 0, len(v.revokedBy))
	for h, m := range v.revokedBy {
		r := stateRevocation{Target: h}
		for a, ok := range m {
			if ok {
				r.Authors = append(r.Authors, t.ref(a))
			}
		}
		slices.Sort(r.Authors)
		st.Revocations = append(st.Revocations, r)
	}
	slices.SortFunc(st.Revocations, func(a, b stateRevocation) int { return cmpHash(a.Target, b.Target) })

	for r, ns := range byReq {
		slices.SortFunc(ns, bytes.Compare)
		st.Nonces.list = append(st.Nonces.list, stateNonces{Requester: t.ref(r), Nonces: ns})
	}
	slices.SortFunc(st.Nonces.list, func(a, b stateNonces) int { return cmp.Compare(a.Requester, b.Requester) })

	for a, p := range v.proofs {
		st.Proofs = append(st.Proofs, stateProof{Author: a, A: p.A, B: p.B})
	}
	slices.SortFunc(st.Proofs, func(a, b stateProof) int { return strings.Compare(string(a.Author), string(b.Author)) })
	for a, ls := range v.proofLogs {
		for _, l := range ls {
			st.ProofLogs = append(st.ProofLogs, stateProofLog{Author: a, Logger: l.Logger, Seq: l.Seq, Entry: l.Entry, Time: l.Time})
		}
	}
	slices.SortFunc(st.ProofLogs, func(a, b stateProofLog) int {
		if c := strings.Compare(string(a.Author), string(b.Author)); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Logger), string(b.Logger)); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})

	for a, b := range v.identities {
		st.Identities = append(st.Identities, stateIdentity{Author: a, Body: *b})
	}
	slices.SortFunc(st.Identities, func(a, b stateIdentity) int { return strings.Compare(string(a.Author), string(b.Author)) })
	for k, b := range v.anchors {
		st.Anchors = append(st.Anchors, stateAnchor{Owner: k.owner, Body: *b})
	}
	slices.SortFunc(st.Anchors, func(a, b stateAnchor) int {
		if c := strings.Compare(string(a.Owner), string(b.Owner)); c != 0 {
			return c
		}
		return strings.Compare(a.Body.Record, b.Body.Record)
	})

	for _, c := range v.creds {
		st.Credentials = append(st.Credentials, stateCredential{ID: c.ID, Issuer: c.Issuer, Seq: c.Seq, Time: c.Time, Body: c.CredentialBody})
	}
	slices.SortFunc(st.Credentials, func(a, b stateCredential) int { return cmpHash(a.ID, b.ID) })
	for _, b := range v.breakGlass {
		st.BreakGlass = append(st.BreakGlass, stateBreakGlass{ID: b.ID, Author: b.Author, Seq: b.Seq, Time: b.Time, Body: b.BreakGlassBody})
	}
	slices.SortFunc(st.BreakGlass, func(a, b stateBreakGlass) int { return cmpHash(a.ID, b.ID) })
	for k, r := range v.reviews {
		st.Reviews = append(st.Reviews, stateReview{Author: k.author, Access: k.h, ID: r.ID, Time: r.Time, Outcome: r.Outcome, Note: r.Note})
	}
	slices.SortFunc(st.Reviews, func(a, b stateReview) int {
		if c := strings.Compare(string(a.Author), string(b.Author)); c != 0 {
			return c
		}
		return cmpHash(a.Access, b.Access)
	})

	for f, b := range v.links {
		st.Links = append(st.Links, stateLink{Feed: f, Body: *b})
	}
	slices.SortFunc(st.Links, func(a, b stateLink) int { return strings.Compare(string(a.Feed), string(b.Feed)) })
	for a, b := range v.serving {
		st.Serving = append(st.Serving, stateServe{Author: a, Body: *b})
	}
	slices.SortFunc(st.Serving, func(a, b stateServe) int { return strings.Compare(string(a.Author), string(b.Author)) })
	for g, os := range v.grantors {
		refs := make([]stateRef, len(os))
		for i, o := range os {
			refs[i] = t.ref(o)
		}
		slices.Sort(refs)
		st.Grantors = append(st.Grantors, stateGrantors{Grantee: t.ref(g), Owners: refs})
	}
	slices.SortFunc(st.Grantors, func(a, b stateGrantors) int { return cmp.Compare(a.Grantee, b.Grantee) })
	return st
}

// decodeState checks and decodes the payload of a state.
func decodeState(b []byte) (*viewState, error) {
	// The envelope is read by hand, so that the payload is not copied:
	// [version, sum, payload], each head in its shortest form.
	corrupt := func(why string) error { return fmt.Errorf("%w: %s", ErrStateCorrupt, why) }
	major, n, rest, ok := stateHead(b)
	if !ok || major != 4 || n == 0 {
		return nil, corrupt("not an array")
	}
	major, ver, rest, ok := stateHead(rest)
	if !ok || major != 0 {
		return nil, corrupt("no version")
	}
	if ver != StateVersion {
		return nil, fmt.Errorf("%w: %d", ErrStateVersion, ver)
	}
	if n != 3 {
		return nil, corrupt("envelope")
	}
	major, sl, rest, ok := stateHead(rest)
	if !ok || major != 2 || sl != sha256.Size || uint64(len(rest)) < sl {
		return nil, corrupt("no checksum")
	}
	sum, rest := rest[:sl], rest[sl:]
	major, pl, rest, ok := stateHead(rest)
	if !ok || major != 2 || uint64(len(rest)) != pl {
		return nil, corrupt("payload")
	}
	if got := sha256.Sum256(rest); !bytes.Equal(got[:], sum) {
		return nil, corrupt("checksum")
	}
	st := &viewState{}
	if err := stateDec.Unmarshal(rest, st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStateCorrupt, err)
	}
	return st, nil
}

// appendStateHead appends the head of a CBOR data item of major type
// major, in its shortest form.
func appendStateHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= 0xff:
		return append(b, m|24, byte(arg))
	case arg <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(arg))
	case arg <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), arg)
}

// stateHead reads the head of a CBOR data item in its shortest form: its
// major type and argument, and what follows it.
func stateHead(b []byte) (major byte, arg uint64, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, 0, nil, false
	}
	major, info := b[0]>>5, b[0]&0x1f
	b = b[1:]
	var size int
	switch {
	case info < 24:
		return major, uint64(info), b, true
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		return 0, 0, nil, false
	}
	if len(b) < size {
		return 0, 0, nil, false
	}
	for _, c := range b[:size] {
		arg = arg<<8 | uint64(c)
	}
	least := uint64(24)
	if size > 1 {
		least = 1 << (8 * (size / 2))
	}
	if arg < least {
		return 0, 0, nil, false // not the shortest form
	}
	return major, arg, b[size:], true
}

// restoreDerived fills v's derived tables (everything but the feeds) from
// st, and rebuilds the indexes they imply: the grant index, credentials by
// subject, and each requester's first break-glass entry per grant.
func (v *View) restoreDerived(st *viewState) error {
	ids := st.IDs
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			return fmt.Errorf("%w: ID table", ErrStateCorrupt)
		}
	}
	for _, x := range ids { // interned: the view's later entries share them
		v.ids[x] = x
	}
	var bad error
	id := func(r stateRef) ID {
		x, err := lookup(ids, r)
		if err != nil {
			bad = err
		}
		return x
	}
	// Sized once: growing them entry by entry costs more than filling them.
	v.grants = make(map[Hash]*GrantInfo, len(st.Grants))
	v.revokedBy = make(map[Hash]map[ID]bool, len(st.Revocations))
	// The nonce table stays encoded until a nonce is asked.
	v.nonces, v.lazyNonces = nil, &lazyNonces{raw: st.Nonces.raw, ids: ids}
	v.creds = make(map[Hash]*CredentialInfo, len(st.Credentials))
	v.breakGlass = make(map[Hash]*BreakGlassInfo, len(st.BreakGlass))
	scopes := make(map[string]Scope)
	for i := range st.Grants {
		sg := &st.Grants[i]
		gi := &GrantInfo{ID: sg.ID, Author: id(sg.Author), Seq: sg.Seq, Time: sg.Time, Grant: sg.Body}
		gi.Grantee, gi.Issuer = id(sg.Grantee), id(sg.Issuer)
		for _, s := range gi.Scopes {
			sc, ok := scopes[s]
			if !ok {
				var err error
				if sc, err = ParseScope(s); err != nil {
					continue
				}
				scopes[s] = sc
			}
			gi.parsed = append(gi.parsed, sc)
		}
		v.grants[gi.ID] = gi
	}
	for _, r := range st.Revocations {
		m := make(map[ID]bool, len(r.Authors))
		for _, a := range r.Authors {
			m[id(a)] = true
		}
		v.revokedBy[r.Target] = m
	}
	// The index, in ID order: a grant is live unless its author revoked
	// it, and the index does not depend on the order grants came in.
	for i := range st.Grants {
		gi := v.grants[st.Grants[i].ID]
		v.gx.add(gi, !v.revokedBy[gi.ID][gi.Author])
	}
	for _, p := range st.Proofs {
		a, err := DecodeEntry(p.A)
		if err != nil {
			return fmt.Errorf("%w: proof: %v", ErrStateCorrupt, err)
		}
		b, err := DecodeEntry(p.B)
		if err != nil {
			return fmt.Errorf("%w: proof: %v", ErrStateCorrupt, err)
		}
		if a.Author != p.Author || b.Author != p.Author {
			return fmt.Errorf("%w: proof names another author", ErrStateCorrupt)
		}
		v.proofs[p.Author] = &EquivocationProof{A: p.A, B: p.B, a: a, b: b}
	}
	for _, l := range st.ProofLogs {
		v.proofLogs[l.Author] = append(v.proofLogs[l.Author], ProofLog{Author: l.Author, Logger: l.Logger, Seq: l.Seq, Entry: l.Entry, Time: l.Time})
	}
	for i := range st.Identities {
		v.identities[st.Identities[i].Author] = &st.Identities[i].Body
	}
	for i := range st.Anchors {
		a := &st.Anchors[i]
		v.anchors[ownerRecord{a.Owner, a.Body.Record}] = &a.Body
	}
	for i := range st.Credentials { // in ID order, as credsBySubject keeps them
		c := &st.Credentials[i]
		ci := &CredentialInfo{ID: c.ID, Issuer: c.Issuer, Time: c.Time, Seq: c.Seq, CredentialBody: c.Body}
		v.creds[ci.ID] = ci
		v.credsBySubject[ci.Subject] = append(v.credsBySubject[ci.Subject], ci)
	}
	for i := range st.BreakGlass {
		b := &st.BreakGlass[i]
		bi := &BreakGlassInfo{ID: b.ID, Author: b.Author, Seq: b.Seq, Time: b.Time, BreakGlassBody: b.Body}
		v.breakGlass[bi.ID] = bi
		// The first is the one earliest in its author's feed.
		k := requesterGrant{bi.Author, bi.Grant}
		if old, ok := v.firstBG[k]; !ok || bi.Seq < old.Seq {
			v.firstBG[k] = bi
		}
	}
	for _, r := range st.Reviews {
		v.reviews[authorHash{r.Author, r.Access}] = &ReviewInfo{ID: r.ID, Time: r.Time, Author: r.Author, Outcome: r.Outcome, Note: r.Note}
	}
	if len(st.Links) > 0 {
		v.links = make(map[ID]*LinkBody, len(st.Links))
		for i := range st.Links {
			v.links[st.Links[i].Feed] = &st.Links[i].Body
		}
	}
	if len(st.Serving) > 0 {
		v.serving = make(map[ID]*ServeBody, len(st.Serving))
		for i := range st.Serving {
			v.serving[st.Serving[i].Author] = &st.Serving[i].Body
		}
	}
	if len(st.Grantors) > 0 {
		v.grantors = make(map[ID][]ID, len(st.Grantors))
		for _, g := range st.Grantors {
			os := make([]ID, len(g.Owners))
			for i, o := range g.Owners {
				os[i] = id(o)
			}
			v.grantors[id(g.Grantee)] = os
		}
	}
	return bad
}

// restoreView returns the view that state b describes, its accepted
// entries in s. Nothing in b is trusted that can be checked cheaply: the
// checksum, the version, the shape of every table.
func restoreView(b []byte, s Store) (*View, error) {
	st, err := decodeState(b)
	if err != nil {
		return nil, err
	}
	v := newView(s)
	if err := v.restoreFeeds(st); err != nil {
		return nil, err
	}
	if err := v.restoreDerived(st); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *View) restoreFeeds(st *viewState) error {
	const hl = len(Hash{})
	n := 0
	for i, sf := range st.Feeds {
		if len(sf.Hashes) == 0 || len(sf.Hashes)%hl != 0 || sf.Author == 0 || sf.Author > stateRef(len(st.IDs)) ||
			i > 0 && st.Feeds[i-1].Author >= sf.Author {
			return fmt.Errorf("%w: feed table", ErrStateCorrupt)
		}
		n += len(sf.Hashes) / hl
	}
	// The slot of each hash is indexed when an entry is first looked up
	// by hash (View.hashIndex): most commands never do.
	v.byHash, v.lazyByHash = nil, &lazyByHash{n: n}
	for _, sf := range st.Feeds {
		f := &feed{author: st.IDs[sf.Author-1], hashes: make([]Hash, len(sf.Hashes)/hl)}
		for j := range f.hashes {
			copy(f.hashes[j][:], sf.Hashes[j*hl:])
		}
		f.hd = Head{Seq: uint64(len(f.hashes)), Hash: f.hashes[len(f.hashes)-1], Time: sf.HeadTime}
		for j, seq := range sf.Access {
			if seq == 0 || seq > f.hd.Seq || j > 0 && sf.Access[j-1] >= seq {
				return fmt.Errorf("%w: access entries of a feed", ErrStateCorrupt)
			}
		}
		f.access = sf.Access
		v.feeds[f.author] = f
	}
	return nil
}

// count is the number of entries the view accepted.
func (v *View) count() uint64 {
	var n uint64
	for _, f := range v.feeds {
		n += uint64(len(f.hashes))
	}
	return n
}

// The Ledger's side: load at open, save at close.

// stateMark is what a Ledger knows of the state saved beside its entries.
type stateMark struct {
	saved   bool   // a state of generation gen is saved
	gen     uint64 // the generation of the saved state
	fromSt  bool   // the view was restored from the saved state at open
	tainted bool   // the view holds what its store does not (see note)
}

// maxHeadChecks bounds the feeds whose head openFromState reads back from
// the store to check that the state describes it.
const maxHeadChecks = 64

// openFromState returns a Ledger whose view is restored from the state s
// keeps, or nil when s keeps none, or one that is stale, unreadable or
// does not match s: the caller then rebuilds the view from the entries.
// Nothing here is an error the user sees.
func openFromState(s Store) *Ledger {
	ss, ok := s.(StateStore)
	if !ok {
		return nil
	}
	gen, err := ss.Generation()
	if err != nil {
		return nil
	}
	var v *View
	err = ss.ReadState(func(b []byte) error {
		var err error
		v, err = restoreView(b, s) // copies what it keeps
		return err
	})
	if err != nil || v == nil || v.count() != gen || !headsMatch(v, s) {
		return nil
	}
	return &Ledger{store: s, view: v, st: stateMark{saved: true, gen: gen, fromSt: true}}
}

// headsMatch reads back the head entry of some of v's feeds (all of them
// up to maxHeadChecks, else that many spread over the authors) and checks
// that the store holds it, with the state's hash and time, and nothing
// after it.
func headsMatch(v *View, s Store) bool {
	authors := v.Authors()
	step := max(1, len(authors)/maxHeadChecks)
	for i := 0; i < len(authors); i += step {
		a := authors[i]
		hd := v.Head(a)
		e, err := s.Get(a, hd.Seq)
		if err != nil || e.Hash() != hd.Hash || e.Time != hd.Time {
			return false
		}
		if _, err := s.Get(a, hd.Seq+1); !errors.Is(err, ErrNotFound) {
			return false
		}
	}
	return true
}

// noteIngest records, from what the view said of an entry it was handed,
// whether the view now holds something its store does not. The one case
// is an equivocation: the view keeps the proof (and the conflicting
// entry's nonce) in memory, and a view rebuilt from the store would not
// have them. Such a view's state is not saved: a state must be exactly
// what the store implies.
func (l *Ledger) noteIngest(err error) {
	if err != nil && errors.Is(err, ErrEquivocation) {
		l.st.tainted = true
	}
}

// SaveState saves the view's state beside the entries, if the store keeps
// one (StateStore) and the view changed since the state was loaded or last
// saved, so that the next OpenLedger need not read every entry. Close
// calls it; a long-running peer may call it now and then, so that a crash
// costs less at the next start. It saves nothing, and says nothing, when
// the view holds anything the store does not: entries waiting for a
// predecessor, an entry the store failed to take, or an equivocation it
// was handed.
func (l *Ledger) SaveState() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.saveState()
}

func (l *Ledger) saveState() error {
	ss, ok := l.store.(StateStore)
	if !ok || l.st.tainted || l.view.Pending() > 0 || len(l.view.unstored) > 0 {
		return nil
	}
	n := l.view.count()
	if l.st.saved && l.st.gen == n {
		return nil
	}
	gen, err := ss.Generation()
	if err != nil {
		return err
	}
	if gen != n {
		return nil // the store holds what the view does not, or the reverse
	}
	b, err := EncodeState(l.view)
	if err != nil {
		return err
	}
	if err := ss.SaveState(gen, b); err != nil {
		return err
	}
	l.st.saved, l.st.gen = true, gen
	return nil
}

// OpenedFromState reports whether OpenLedger restored the view from the
// state saved beside the entries (rather than reading every entry).
func (l *Ledger) OpenedFromState() bool { return l.st.fromSt }
