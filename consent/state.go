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
// grantors), saved beside the entries so that a Ledger opens without
// reading every entry again. It is a cache, not part of the wire format:
// nothing else reads it, a state that is missing, stale, unreadable or of
// another version is simply rebuilt from the entries, and its layout may
// change with any release (bump StateVersion).
//
// A state is a set of tables, each a sorted map of keys to values, that a
// StateStore keeps (boltstore: one bbolt bucket per table). Opening reads
// only what does not grow with the history: table "core" (the heads and
// the small derived tables) and the hash of each feed's head. A feed's
// hashes and access seqs are copied (not decoded) from tables "h" and "a"
// when the feed is first asked about. The tables that grow with the history (grants,
// their indexes by owner and by grantee, revocations, nonces) are read on
// demand: a lookup reads one key, a listing reads the keys it yields, and
// Decide (which needs every grant of the index) loads the grants once.
// Saving writes what changed since the state was loaded or last saved
// (new grants, revocations and nonces, the last chunk of each feed that
// grew, and the core), so a command that appends k entries saves O(k).
//
// Tables and their keys ("ID 0" is an ID's bytes then a 0x00 byte; "time"
// is 8 bytes, big-endian, of the Unix seconds plus 2^63):
//
//	core  "core"                   [StateVersion, SHA-256(payload), payload], payload the CBOR of coreState
//	h     author 0 chunk (8 bytes) the hashes of the feed's entries chunk*hashChunk+1 on, 32 bytes each
//	a     author 0 chunk (8 bytes) the seqs of the feed's access entries from index chunk*hashChunk, 8 bytes each
//	g     grant ID                 storedGrant
//	go    owner 0 time grant ID    1 (the owner's grants by time)
//	gt    grantee 0 time grant ID  1 (the grants to a grantee by time)
//	r     entry hash               the IDs of the authors who revoked it, sorted
//	n     requester 0 nonce        1 (the nonces of logged requests)
//
// All CBOR is deterministic (RFC 8949 4.2.1), every list sorted, so that
// two views that hold the same state save the same bytes.

// StateVersion is the version of the view state's layout. A state of
// another version is ignored (and rebuilt). Version 2 was one CBOR value,
// decoded whole at every open. Version 4 added the guardian and recovery
// entries (Recovery, guardian.go); version 5 devices (device.go); version
// 6 the identities' newest age-key entries (AgeKeys, agekey.go).
const StateVersion = 6

// Errors of reading a state back. A Ledger treats any of them as "no
// state", and rebuilds the view from the entries.
var (
	ErrStateVersion = errors.New("view state of another version")
	ErrStateCorrupt = errors.New("view state is corrupt")
	// ErrStatePending reports a view that holds entries waiting for a
	// predecessor: its state cannot be saved (they are in no store).
	ErrStatePending = errors.New("view holds pending entries")
)

// The tables of a state.
const (
	tableCore      = "core"
	tableHashes    = "h"
	tableAccess    = "a"
	tableGrants    = "g"
	tableByOwner   = "go"
	tableByGrantee = "gt"
	tableRevoked   = "r"
	tableNonces    = "n"
)

// hashChunk is how many hashes (and access seqs) one key of tables "h"
// and "a" holds: a save rewrites at most the last chunk of a feed.
const hashChunk = 1024

// present is the value of the keys of the index tables.
var present = []byte{1}

// StatePut writes val at key of table; a nil val deletes the key. The
// store may keep key and val until its transaction commits: the caller
// must not change them.
type StatePut func(table string, key, val []byte) error

// StateStore is implemented by stores that can keep a view state beside
// their entries (boltstore.Store). A Ledger over such a store restores its
// view from the state at open when the state describes the store's
// current generation, reads the state's large tables on demand while it
// is open, and saves what changed when it closes (SaveState). MemStore
// does not implement it.
type StateStore interface {
	// Generation is the number of entries the store holds: every Put or
	// PutBatch that adds entries raises it by as many, in the same
	// transaction.
	Generation() (uint64, error)
	// StateGeneration returns the generation the saved state describes;
	// ok is false when there is no state, or one the store knows to be
	// stale (its entries changed in a way the generation did not record).
	StateGeneration() (gen uint64, ok bool, err error)
	// StateGet calls fn with the value at key of table, nil if there is
	// none, and returns fn's error. v may be the store's own memory: fn
	// must not keep it, nor anything that aliases it.
	StateGet(table string, key []byte, fn func(v []byte) error) error
	// StateScan calls fn with the keys of table that start with prefix
	// and their values, in key order (descending when desc), past after
	// when it is not nil (greater than it; less when desc), and stops at
	// the first error fn returns, which it returns. fn must not keep k or
	// v, nor call the store.
	StateScan(table string, prefix, after []byte, desc bool, fn func(k, v []byte) error) error
	// SaveState updates the saved state: fn writes what changed, through
	// put; reset drops every table first. When it returns nil the state
	// describes generation gen; while it runs, and when it fails, there
	// is no state (it may commit in several transactions).
	SaveState(gen uint64, reset bool, fn func(put StatePut) error) error
}

// stateEnvelope is the shape of the core table's value (and of
// EncodeState): sealState and openState write and read it by hand (so as
// not to copy the payload), and the tests check that it is this type's
// canonical CBOR.
type stateEnvelope struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Sum     []byte
	Payload []byte
}

// coreState is the payload of the core table: what a view holds in
// memory from the moment it is restored. Every slice is sorted by its
// first field (then its second where the first repeats).
type coreState struct {
	_           struct{} `cbor:",toarray"`
	Feeds       []coreFeed
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
	GrantsBy    []stateCount // grants per owner
	GrantsTo    []stateCount // grants per grantee
	// Revocations and Nonces say whether tables "r" and "n" hold any
	// key (tables "g", "go" and "gt" do when GrantsBy is not empty): a
	// state whose table went missing is not restored.
	Revocations bool
	Nonces      bool
	// Recovery holds the encodings of the guardian and recovery entries
	// (guardian.go), in acceptance order.
	Recovery [][]byte
	// Devices and their revocations (version 5 on; device.go).
	Devices    []stateDevice
	DeviceRevs []stateDeviceRev
	// AgeKeys are the newest age-key entry of each author (version 6 on;
	// agekey.go).
	AgeKeys []stateAgeKey
}

// coreFeed is a feed: its length, the time of its head entry and how many
// access entries it holds (its hashes and access seqs are in tables "h"
// and "a").
type coreFeed struct {
	_        struct{} `cbor:",toarray"`
	Author   ID
	Seq      uint64
	HeadTime int64
	Access   uint64
}

// stateGrantors lists the owners granting a grantee, sorted.
type stateGrantors struct {
	_       struct{} `cbor:",toarray"`
	Grantee ID
	Owners  []ID
}

type stateCount struct {
	_  struct{} `cbor:",toarray"`
	ID ID
	N  uint64
}

// storedGrant is the value of table "g".
type storedGrant struct {
	_      struct{} `cbor:",toarray"`
	ID     Hash
	Author ID
	Seq    uint64
	Time   int64
	Body   Grant
	Device ID // the device that signed it (version 5 on)
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

// viewState is what EncodeState encodes: every table of the state, read
// whole.
type viewState struct {
	_           struct{} `cbor:",toarray"`
	Core        coreState
	Feeds       []stateFeed
	Grants      []storedGrant
	Revocations []stateRevocation
	Nonces      []stateNonces
}

// stateFeed is a feed's hashes, seq 1 first, end to end (32 bytes each),
// and the seqs of its access entries, in order.
type stateFeed struct {
	_      struct{} `cbor:",toarray"`
	Author ID
	Hashes []byte
	Access []uint64
}

// stateRevocation is an entry hash and the authors who revoked it.
type stateRevocation struct {
	_       struct{} `cbor:",toarray"`
	Target  Hash
	Authors []ID
}

// stateNonces are the nonces of one requester's logged requests.
type stateNonces struct {
	_         struct{} `cbor:",toarray"`
	Requester ID
	Nonces    [][]byte
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

// EncodeState encodes the view's whole state, every table read (a view
// restored from a saved state reads its large tables from the store): two
// views that hold the same state encode to the same bytes. Saving does not
// use it (it writes the tables, and only what changed); it is how tests
// and a curious operator compare views. A view holding pending entries
// has no state (ErrStatePending).
func EncodeState(v *View) ([]byte, error) {
	if v.Pending() > 0 {
		return nil, ErrStatePending
	}
	st := &viewState{Core: *v.core()}
	for _, a := range v.Authors() {
		f := v.feedTables(v.feeds[a])
		sf := stateFeed{Author: a, Hashes: hashBytes(f.hashes)}
		if len(f.access) > 0 {
			sf.Access = f.access
		}
		st.Feeds = append(st.Feeds, sf)
	}
	gs := v.grantMap()
	for _, g := range gs {
		st.Grants = append(st.Grants, storedGrantOf(g))
	}
	slices.SortFunc(st.Grants, func(a, b storedGrant) int { return cmpHash(a.ID, b.ID) })
	for h, m := range v.revokedMap() {
		if r := (stateRevocation{Target: h, Authors: revokerList(m)}); len(r.Authors) > 0 {
			st.Revocations = append(st.Revocations, r)
		}
	}
	slices.SortFunc(st.Revocations, func(a, b stateRevocation) int { return cmpHash(a.Target, b.Target) })
	byReq := make(map[ID][][]byte)
	for k := range v.allNonces() {
		byReq[k.requester] = append(byReq[k.requester], []byte(k.nonce))
	}
	for r, ns := range byReq {
		slices.SortFunc(ns, bytes.Compare)
		st.Nonces = append(st.Nonces, stateNonces{Requester: r, Nonces: ns})
	}
	slices.SortFunc(st.Nonces, func(a, b stateNonces) int { return strings.Compare(string(a.Requester), string(b.Requester)) })
	payload, err := canon.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode view state: %w", err)
	}
	return sealState(payload), nil
}

func hashBytes(hs []Hash) []byte {
	b := make([]byte, 0, len(hs)*len(Hash{}))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func storedGrantOf(g *GrantInfo) storedGrant {
	return storedGrant{ID: g.ID, Author: g.Author, Seq: g.Seq, Time: g.Time, Body: g.Grant, Device: g.Device}
}

func revokerList(m revokerSet) []ID {
	if len(m) == 0 {
		return nil
	}
	out := slices.Clone(m)
	slices.Sort(out)
	return []ID(out)
}

// sealState wraps a payload in the state envelope.
func sealState(payload []byte) []byte {
	sum := sha256.Sum256(payload)
	b := make([]byte, 0, 32+len(sum)+len(payload))
	b = append(b, 0x83)
	b = appendStateHead(b, 0, StateVersion)
	b = appendStateHead(b, 2, uint64(len(sum)))
	b = append(b, sum[:]...)
	b = appendStateHead(b, 2, uint64(len(payload)))
	return append(b, payload...)
}

// openState checks a state envelope and returns its payload (a slice of
// b, not a copy).
func openState(b []byte) ([]byte, error) {
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
	return rest, nil
}

// decodeCore checks and decodes the core table's value.
func decodeCore(b []byte) (*coreState, error) {
	payload, err := openState(b)
	if err != nil {
		return nil, err
	}
	cs := &coreState{}
	if err := stateDec.Unmarshal(payload, cs); err != nil { // copies what it keeps
		return nil, fmt.Errorf("%w: %v", ErrStateCorrupt, err)
	}
	return cs, nil
}

// core gathers the view's core table, sorted.
func (v *View) core() *coreState {
	cs := &coreState{}
	for a, f := range v.feeds {
		if f.hd.Seq > 0 {
			cs.Feeds = append(cs.Feeds, coreFeed{Author: a, Seq: f.hd.Seq, HeadTime: f.head().Time, Access: uint64(f.nAccess())})
		}
	}
	slices.SortFunc(cs.Feeds, func(a, b coreFeed) int { return strings.Compare(string(a.Author), string(b.Author)) })
	for a, p := range v.proofs {
		cs.Proofs = append(cs.Proofs, stateProof{Author: a, A: p.A, B: p.B})
	}
	slices.SortFunc(cs.Proofs, func(a, b stateProof) int { return strings.Compare(string(a.Author), string(b.Author)) })
	for a, ls := range v.proofLogs {
		for _, l := range ls {
			cs.ProofLogs = append(cs.ProofLogs, stateProofLog{Author: a, Logger: l.Logger, Seq: l.Seq, Entry: l.Entry, Time: l.Time})
		}
	}
	slices.SortFunc(cs.ProofLogs, func(a, b stateProofLog) int {
		if c := strings.Compare(string(a.Author), string(b.Author)); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Logger), string(b.Logger)); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	for a, b := range v.identities {
		cs.Identities = append(cs.Identities, stateIdentity{Author: a, Body: *b})
	}
	slices.SortFunc(cs.Identities, func(a, b stateIdentity) int { return strings.Compare(string(a.Author), string(b.Author)) })
	for k, b := range v.anchors {
		cs.Anchors = append(cs.Anchors, stateAnchor{Owner: k.owner, Body: *b})
	}
	slices.SortFunc(cs.Anchors, func(a, b stateAnchor) int {
		if c := strings.Compare(string(a.Owner), string(b.Owner)); c != 0 {
			return c
		}
		return strings.Compare(a.Body.Record, b.Body.Record)
	})
	for _, c := range v.creds {
		cs.Credentials = append(cs.Credentials, stateCredential{ID: c.ID, Issuer: c.Issuer, Seq: c.Seq, Time: c.Time, Body: c.CredentialBody})
	}
	slices.SortFunc(cs.Credentials, func(a, b stateCredential) int { return cmpHash(a.ID, b.ID) })
	for _, b := range v.breakGlass {
		cs.BreakGlass = append(cs.BreakGlass, stateBreakGlass{ID: b.ID, Author: b.Author, Seq: b.Seq, Time: b.Time, Body: b.BreakGlassBody})
	}
	slices.SortFunc(cs.BreakGlass, func(a, b stateBreakGlass) int { return cmpHash(a.ID, b.ID) })
	for k, r := range v.reviews {
		cs.Reviews = append(cs.Reviews, stateReview{Author: k.author, Access: k.h, ID: r.ID, Time: r.Time, Outcome: r.Outcome, Note: r.Note})
	}
	slices.SortFunc(cs.Reviews, func(a, b stateReview) int {
		if c := strings.Compare(string(a.Author), string(b.Author)); c != 0 {
			return c
		}
		return cmpHash(a.Access, b.Access)
	})
	for f, b := range v.links {
		cs.Links = append(cs.Links, stateLink{Feed: f, Body: *b})
	}
	slices.SortFunc(cs.Links, func(a, b stateLink) int { return strings.Compare(string(a.Feed), string(b.Feed)) })
	for a, b := range v.serving {
		cs.Serving = append(cs.Serving, stateServe{Author: a, Body: *b})
	}
	slices.SortFunc(cs.Serving, func(a, b stateServe) int { return strings.Compare(string(a.Author), string(b.Author)) })
	for g, os := range v.grantors {
		os = slices.Clone(os)
		slices.Sort(os)
		cs.Grantors = append(cs.Grantors, stateGrantors{Grantee: g, Owners: os})
	}
	slices.SortFunc(cs.Grantors, func(a, b stateGrantors) int { return strings.Compare(string(a.Grantee), string(b.Grantee)) })
	cs.GrantsBy, cs.GrantsTo = countList(v.grantsBy), countList(v.grantsTo)
	cs.Devices, cs.DeviceRevs = v.deviceState()
	cs.AgeKeys = v.ageKeyState()
	cs.Revocations = v.hasRevs || len(v.revokedBy) > 0
	cs.Nonces = v.hasNonces || len(v.nonces) > 0
	cs.Recovery = v.recoveryState()
	return cs
}

func countList(m map[ID]int) []stateCount {
	out := make([]stateCount, 0, len(m))
	for id, n := range m {
		out = append(out, stateCount{ID: id, N: uint64(n)})
	}
	slices.SortFunc(out, func(a, b stateCount) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// restoreCore fills v's feeds (all but their hashes and access seqs) and
// its small derived tables from cs, and rebuilds the indexes they imply:
// credentials by subject, and each requester's first break-glass entry
// per grant.
func (v *View) restoreCore(cs *coreState) error {
	for i, cf := range cs.Feeds {
		if cf.Seq == 0 || cf.Access > cf.Seq || cf.Author == "" || i > 0 && cs.Feeds[i-1].Author >= cf.Author {
			return fmt.Errorf("%w: feed table", ErrStateCorrupt)
		}
		a := v.intern(cf.Author)
		// savedAcc holds the count of access entries until restoreFeeds
		// reads them.
		v.feeds[a] = &feed{author: a, hd: Head{Seq: cf.Seq, Time: cf.HeadTime}, savedAcc: int(cf.Access)}
	}
	for _, p := range cs.Proofs {
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
	for _, l := range cs.ProofLogs {
		v.proofLogs[l.Author] = append(v.proofLogs[l.Author], ProofLog{Author: l.Author, Logger: l.Logger, Seq: l.Seq, Entry: l.Entry, Time: l.Time})
	}
	for i := range cs.Identities {
		v.identities[cs.Identities[i].Author] = &cs.Identities[i].Body
	}
	for i := range cs.Anchors {
		a := &cs.Anchors[i]
		v.anchors[ownerRecord{a.Owner, a.Body.Record}] = &a.Body
	}
	for i := range cs.Credentials { // in ID order, as credsBySubject keeps them
		c := &cs.Credentials[i]
		ci := &CredentialInfo{ID: c.ID, Issuer: c.Issuer, Time: c.Time, Seq: c.Seq, CredentialBody: c.Body}
		v.creds[ci.ID] = ci
		v.credsBySubject[ci.Subject] = append(v.credsBySubject[ci.Subject], ci)
	}
	for i := range cs.BreakGlass {
		b := &cs.BreakGlass[i]
		bi := &BreakGlassInfo{ID: b.ID, Author: b.Author, Seq: b.Seq, Time: b.Time, BreakGlassBody: b.Body}
		v.breakGlass[bi.ID] = bi
		// The first is the one earliest in its author's feed.
		k := requesterGrant{bi.Author, bi.Grant}
		if old, ok := v.firstBG[k]; !ok || bi.Seq < old.Seq {
			v.firstBG[k] = bi
		}
	}
	for _, r := range cs.Reviews {
		v.reviews[authorHash{r.Author, r.Access}] = &ReviewInfo{ID: r.ID, Time: r.Time, Author: r.Author, Outcome: r.Outcome, Note: r.Note}
	}
	if len(cs.Links) > 0 {
		v.links = make(map[ID]*LinkBody, len(cs.Links))
		for i := range cs.Links {
			v.links[cs.Links[i].Feed] = &cs.Links[i].Body
		}
	}
	if len(cs.Serving) > 0 {
		v.serving = make(map[ID]*ServeBody, len(cs.Serving))
		for i := range cs.Serving {
			v.serving[cs.Serving[i].Author] = &cs.Serving[i].Body
		}
	}
	if len(cs.Grantors) > 0 {
		v.grantors = make(map[ID][]ID, len(cs.Grantors))
		for _, g := range cs.Grantors {
			os := make([]ID, len(g.Owners))
			for i, o := range g.Owners {
				os[i] = v.intern(o)
			}
			v.grantors[v.intern(g.Grantee)] = os
		}
	}
	for _, c := range cs.GrantsBy {
		v.grantsBy[v.intern(c.ID)] = int(c.N)
	}
	for _, c := range cs.GrantsTo {
		v.grantsTo[v.intern(c.ID)] = int(c.N)
	}
	v.hasRevs, v.hasNonces = cs.Revocations, cs.Nonces
	v.restoreDevices(cs.Devices, cs.DeviceRevs)
	if err := v.restoreAgeKeys(cs.AgeKeys); err != nil {
		return fmt.Errorf("%w: age key: %v", ErrStateCorrupt, err)
	}
	return v.restoreRecovery(cs.Recovery)
}

// chunkKey is the key of chunk i of id's feed in tables "h" and "a" (and,
// with i the time, of the grant indexes).
func chunkKey(id ID, i uint64) []byte {
	k := make([]byte, 0, len(id)+9)
	k = append(k, id...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, i)
}

func idPrefix(id ID) []byte { return append([]byte(id), 0) }

// restoreFeeds reads the hash of each feed's head from table "h" (one
// key); the feeds' hashes and access seqs are read on first use
// (feedTables).
func (v *View) restoreFeeds(ss StateStore) error {
	const hl = len(Hash{})
	for a, f := range v.feeds {
		n := f.hd.Seq
		err := ss.StateGet(tableHashes, chunkKey(a, (n-1)/hashChunk), func(b []byte) error {
			if uint64(len(b)) != ((n-1)%hashChunk+1)*uint64(hl) {
				return fmt.Errorf("%w: hashes of a feed", ErrStateCorrupt)
			}
			f.hd.Hash = Hash(b[len(b)-hl:])
			return nil
		})
		if err != nil {
			return err
		}
		f.saved = int(n)
		f.lazy = &lazyFeed{}
	}
	return nil
}

// restoreFrom returns the view that the state ss keeps describes, its
// accepted entries in s. Nothing in the state is trusted that can be
// checked cheaply: the checksum and version of the core, the shape of
// every table read.
func restoreFrom(ss StateStore, s Store) (*View, error) {
	var cs *coreState
	err := ss.StateGet(tableCore, []byte(tableCore), func(b []byte) error {
		if b == nil {
			return fmt.Errorf("%w: no core", ErrStateCorrupt)
		}
		var err error
		cs, err = decodeCore(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	v := newView(s)
	if err := v.restoreCore(cs); err != nil {
		return nil, err
	}
	if err := v.restoreFeeds(ss); err != nil {
		return nil, err
	}
	// The tables read on demand are there (a key each, at least).
	var need []string
	if len(cs.GrantsBy) > 0 {
		need = append(need, tableGrants, tableByOwner, tableByGrantee)
	}
	if cs.Revocations {
		need = append(need, tableRevoked)
	}
	if cs.Nonces {
		need = append(need, tableNonces)
	}
	for _, t := range need {
		if !hasKey(ss, t) {
			return nil, fmt.Errorf("%w: table %q is empty", ErrStateCorrupt, t)
		}
	}
	v.src = &stateSrc{ss: ss}
	v.grants = nil // read on demand (state_tables.go)
	v.lazyByHash = &lazyByHash{}
	v.dirty = newStateDirty()
	return v, nil
}

// hasKey reports whether table t of ss holds a key.
func hasKey(ss StateStore, t string) bool {
	errFound := errors.New("found")
	err := ss.StateScan(t, nil, nil, false, func(_, _ []byte) error { return errFound })
	return errors.Is(err, errFound)
}

// count is the number of entries the view accepted.
func (v *View) count() uint64 {
	var n uint64
	for _, f := range v.feeds {
		n += f.hd.Seq
	}
	return n
}

// saveTo saves the view's state in ss as describing generation gen: the
// tables whole when the view was not restored from ss nor saved there
// before (or its tables there proved unreadable), else only what changed
// since (the dirty grants, revocations and nonces, and the chunks of the
// feeds past what was saved). Each table is written in key order, so that
// the store appends rather than inserts at random (bbolt then touches
// few pages per transaction), and straight from the view's tables: no
// encoding of the whole state is ever held.
func (v *View) saveTo(ss StateStore, gen uint64) error {
	full := v.src == nil || v.src.ss != ss || v.src.broken.Load()
	var (
		grants []*GrantInfo
		revs   []Hash
		nonces []nonceKey
	)
	if full {
		for _, g := range v.grantMap() {
			grants = append(grants, g)
		}
		for h := range v.revokedMap() {
			revs = append(revs, h)
		}
		all := v.allNonces()
		nonces = make([]nonceKey, 0, len(all))
		for k := range all {
			nonces = append(nonces, k)
		}
	} else {
		grants = slices.Clone(v.dirty.grants)
		for h := range v.dirty.revs {
			revs = append(revs, h)
		}
		nonces = slices.Clone(v.dirty.nonces)
	}
	slices.SortFunc(revs, cmpHash)
	slices.SortFunc(nonces, func(a, b nonceKey) int {
		if c := strings.Compare(string(a.requester), string(b.requester)); c != 0 {
			return c
		}
		return strings.Compare(a.nonce, b.nonce)
	})
	authors := v.Authors()
	err := ss.SaveState(gen, full, func(put StatePut) error {
		payload, err := canon.Marshal(v.core())
		if err != nil {
			return fmt.Errorf("encode view state: %w", err)
		}
		if err := put(tableCore, []byte(tableCore), sealState(payload)); err != nil {
			return err
		}
		for _, a := range authors {
			f := v.feeds[a]
			from := f.saved
			if full {
				from = 0
				v.feedTables(f)
			} else if !f.loaded() || from == len(f.hashes) {
				continue // unchanged since restored or saved
			}
			for c := from / hashChunk; c*hashChunk < len(f.hashes); c++ {
				end := min(len(f.hashes), (c+1)*hashChunk)
				if err := put(tableHashes, chunkKey(a, uint64(c)), hashBytes(f.hashes[c*hashChunk:end])); err != nil {
					return err
				}
			}
		}
		for _, a := range authors {
			f := v.feeds[a]
			from := f.savedAcc
			if full {
				from = 0
			} else if !f.loaded() || from == len(f.access) {
				continue
			}
			for c := from / hashChunk; c*hashChunk < len(f.access); c++ {
				end := min(len(f.access), (c+1)*hashChunk)
				b := make([]byte, 0, 8*(end-c*hashChunk))
				for _, seq := range f.access[c*hashChunk : end] {
					b = binary.BigEndian.AppendUint64(b, seq)
				}
				if err := put(tableAccess, chunkKey(a, uint64(c)), b); err != nil {
					return err
				}
			}
		}
		slices.SortFunc(grants, cmpGrantID)
		for _, g := range grants {
			b, err := canon.Marshal(storedGrantOf(g))
			if err != nil {
				return fmt.Errorf("encode view state: %w", err)
			}
			if err := put(tableGrants, bytes.Clone(g.ID[:]), b); err != nil {
				return err
			}
		}
		for _, by := range []struct {
			table string
			id    func(*GrantInfo) ID
		}{
			{tableByOwner, func(g *GrantInfo) ID { return g.Author }},
			{tableByGrantee, func(g *GrantInfo) ID { return g.Grantee }},
		} {
			slices.SortFunc(grants, func(a, b *GrantInfo) int {
				if c := strings.Compare(string(by.id(a)), string(by.id(b))); c != 0 {
					return c
				}
				if c := cmp.Compare(uint64(a.Time)^1<<63, uint64(b.Time)^1<<63); c != 0 {
					return c
				}
				return cmpGrantID(a, b)
			})
			for _, g := range grants {
				if err := put(by.table, grantIndexKey(by.id(g), g), present); err != nil {
					return err
				}
			}
		}
		for _, h := range revs {
			as := revokerList(v.revokers(h))
			if len(as) == 0 {
				continue
			}
			b, err := canon.Marshal(as)
			if err != nil {
				return fmt.Errorf("encode view state: %w", err)
			}
			if err := put(tableRevoked, bytes.Clone(h[:]), b); err != nil {
				return err
			}
		}
		for _, k := range nonces {
			if err := put(tableNonces, nonceTableKey(k.requester, []byte(k.nonce)), present); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range v.feeds {
		f.saved, f.savedAcc = int(f.hd.Seq), f.nAccess()
	}
	if full && v.count() == 0 {
		// An empty ledger's first save (a new wallet about to sync): the
		// next save writes every table too, so nothing is noted meanwhile.
		v.dirty = nil
		return nil
	}
	v.dirty = newStateDirty()
	if full {
		// From now on the view saves what changes. It holds every grant,
		// revocation and nonce in memory, and reads none back.
		if v.src != nil {
			v.nonces = v.allNonces()
		}
		v.noncesAll = true
		src := &stateSrc{ss: ss}
		src.grantsOnce.Do(func() {})
		src.grantsLoaded.Store(true)
		v.src = src
	}
	return nil
}

// grantIndexKey is the key of grant g in the index of id's grants (by
// owner or by grantee): id 0 time ID.
func grantIndexKey(id ID, g *GrantInfo) []byte {
	k := chunkKey(id, uint64(g.Time)^1<<63)
	return append(k, g.ID[:]...)
}

func nonceTableKey(requester ID, nonce []byte) []byte {
	k := make([]byte, 0, len(requester)+1+len(nonce))
	k = append(k, requester...)
	k = append(k, 0)
	return append(k, nonce...)
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
	if sg, ok, err := ss.StateGeneration(); err != nil || !ok || sg != gen {
		return nil
	}
	v, err := restoreFrom(ss, s)
	if err != nil || v.count() != gen || !headsMatch(v, s) {
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
// saved, so that the next OpenLedger need not read every entry. It writes
// what changed since (state.go), not the whole state. Close calls it; a
// long-running peer may call it now and then, so that a crash costs less
// at the next start. It saves nothing, and says nothing, when the view
// holds anything the store does not: entries waiting for a predecessor,
// an entry the store failed to take, or an equivocation it was handed.
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
	if err := l.view.saveTo(ss, gen); err != nil {
		l.st.saved = false
		return err
	}
	l.st.saved, l.st.gen = true, gen
	return nil
}

// OpenedFromState reports whether OpenLedger restored the view from the
// state saved beside the entries (rather than reading every entry).
func (l *Ledger) OpenedFromState() bool { return l.st.fromSt }
