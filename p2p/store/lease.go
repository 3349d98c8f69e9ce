package store

import (
	"slices"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
)

// Leases and collection (docs/network.md, "Leases and garbage
// collection").
//
// Every share and manifest copy a peer holds has the lease of its record:
// one Lease per (owner, record), renewed by the owner's activity (a put,
// a has or get by the owner, a renew request, any entry the owner signs)
// and by an authorised party's renew request (a repairer). A lease that
// nobody renews for Policy.Lease expires; its shares and copies are
// collected Policy.Grace later. Shares are also collected when nothing
// references them (orphans: their record was never anchored, or the
// anchored manifest's share list, sent by the owner with a renew, does not
// name them) and when the owner retired them (superseded: a removed
// record, or the old shares of a rotated one; consent.RetireBody).

// Default lease and grace of `medwallet peer`.
const (
	DefaultLease      = 180 * 24 * time.Hour
	DefaultGrace      = 7 * 24 * time.Hour
	DefaultGCInterval = time.Hour
)

// Policy is a peer's lease length and grace period.
type Policy struct {
	// Lease is how long an item stays leased after its last renewal.
	Lease time.Duration
	// Grace is how long an expired, orphaned or superseded item is kept
	// before it is collected, and how old an unreferenced share must be
	// before it counts as an orphan.
	Grace time.Duration
}

// DefaultPolicy is DefaultLease and DefaultGrace.
func DefaultPolicy() Policy { return Policy{Lease: DefaultLease, Grace: DefaultGrace} }

// Lease is the lease of one record's shares and manifest copies on a peer.
type Lease struct {
	// Renewed is when the lease was last renewed (Unix seconds).
	Renewed int64 `cbor:"1,keyasint"`
	// Manifest and Shares are what the latest renew named: the hash of
	// the record's encrypted manifest and the share IDs it lists. They
	// let the peer tell the shares of the anchored manifest from others
	// of the same record (a rotation that was killed midway).
	Manifest consent.Hash    `cbor:"2,keyasint,omitempty"`
	Shares   []vault.ShareID `cbor:"3,keyasint,omitempty"`
}

// Names reports whether the lease's share list names id.
func (l Lease) Names(id vault.ShareID) bool {
	_, ok := slices.BinarySearchFunc(l.Shares, id, func(a, b vault.ShareID) int { return compareID(a, b) })
	return ok
}

func compareID(a, b vault.ShareID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// SortShareIDs sorts ids and drops duplicates.
func SortShareIDs(ids []vault.ShareID) []vault.ShareID {
	slices.SortFunc(ids, compareID)
	return slices.Compact(ids)
}

// Record is what the ledger tells a peer about one owner's record, as far
// as collection needs it (p2p/peer builds it from its ledger view).
type Record struct {
	// Known is set when the owner's feed is on this peer and the peer has
	// caught up with the ledger: only then can an unanchored record be
	// told from one whose anchor has not arrived.
	Known bool
	// Anchor is the hash of the record's latest anchored manifest (zero:
	// never anchored).
	Anchor consent.Hash
	// Active is the time of the owner's latest entry (zero: none): any
	// entry the owner signs renews all its leases.
	Active time.Time
	// Removed is when the owner retired the whole record (zero: never).
	Removed time.Time
	// Retired are the shares the owner retired (a rotation's old shares),
	// with when.
	Retired map[vault.ShareID]time.Time
}

// Referee answers what the ledger says of owner's record.
type Referee func(owner consent.ID, record string) Record

// Why an item is collected.
const (
	Expired    = "expired"
	Orphan     = "orphan"
	Superseded = "superseded"
)

// Item is one share (Share non-zero) or manifest copy (Recipient set) for
// Classify.
type Item struct {
	Owner     consent.ID
	Record    string
	Share     vault.ShareID
	Recipient consent.ID
	// Created is when a share was stored (zero for a manifest copy).
	Created time.Time
	// Own is set for the owner's own manifest copy, and Envelope then is
	// the SHA-256 of its envelope (it is the anchored manifest when
	// current).
	Own      bool
	Envelope consent.Hash
}

// State is an item's standing: why it would be collected ("" for none),
// when it becomes collectable, and when its lease expires.
type State struct {
	Reason  string
	Due     time.Time // Reason != "": collectable from then on
	Expires time.Time // the lease's end (renewals and the owner's entries counted)
}

// Collectable reports whether the item may be collected at now.
func (s State) Collectable(now time.Time) bool { return s.Reason != "" && !now.Before(s.Due) }

// Classify decides an item's standing at now from its record's lease
// and what the ledger says of the record. It never marks an item that a
// put, a renew or the owner's ledger touched within the grace period
// as an orphan, so that an add in progress (shares stored, the anchor
// not yet signed) is never collected.
func Classify(p Policy, it Item, l Lease, r Record, now time.Time) State {
	renewed := time.Unix(l.Renewed, 0)
	if a := r.Active; a.After(renewed) {
		if a.After(now) {
			a = now // an owner's clock ahead of ours buys nothing
		}
		renewed = a
	}
	st := State{Expires: renewed.Add(p.Lease)}
	first := func(reason string, due time.Time) {
		if st.Reason == "" || due.Before(st.Due) {
			st.Reason, st.Due = reason, due
		}
	}
	// Superseded: the owner said so on the ledger.
	if r.Known && !r.Removed.IsZero() {
		first(Superseded, r.Removed.Add(p.Grace))
	}
	if r.Known && it.Share != (vault.ShareID{}) {
		if t, ok := r.Retired[it.Share]; ok && !(l.Manifest == r.Anchor && l.Names(it.Share)) {
			first(Superseded, t.Add(p.Grace))
		}
	}
	// Orphans: nothing anchored references the item. Fresh activity on
	// the record holds it off, so an add in progress is safe.
	if r.Known {
		last := time.Unix(l.Renewed, 0)
		if it.Created.After(last) {
			last = it.Created
		}
		switch {
		case r.Anchor.IsZero():
			first(Orphan, last.Add(p.Grace))
		case it.Share != (vault.ShareID{}) && l.Manifest == r.Anchor && len(l.Shares) > 0 && !l.Names(it.Share):
			first(Orphan, last.Add(p.Grace))
		case it.Own && !it.Envelope.IsZero() && it.Envelope != r.Anchor:
			// The owner's own copy of a manifest that is not the anchored
			// one (a rotation this peer missed, or one killed before its
			// anchor).
			first(Orphan, last.Add(p.Grace))
		}
	}
	first(Expired, st.Expires.Add(p.Grace))
	return st
}

// LeaseUsage is one owner's leases on a peer: what `medwallet peer usage`
// shows besides the bytes stored.
type LeaseUsage struct {
	Owner consent.ID `json:"owner,omitempty"`
	// Leased are the bytes whose lease runs (not expired).
	Leased int64 `json:"leased_bytes"`
	// Expiring are the bytes whose lease ends within the grace period,
	// or ended less than a grace period ago.
	Expiring int64 `json:"expiring_bytes"`
	// Collectable are the bytes a collection now would remove, by
	// reason.
	Orphan     int64 `json:"orphan_bytes"`
	Superseded int64 `json:"superseded_bytes"`
	Expired    int64 `json:"expired_bytes"`
	// Manifests is the number of manifest copies held.
	Manifests int `json:"manifests"`
	// Items is the number of shares and copies collectable now.
	Collectable int `json:"collectable"`
}

// CollectableBytes is the bytes a collection now would remove.
func (u LeaseUsage) CollectableBytes() int64 { return u.Orphan + u.Superseded + u.Expired }

// Add counts one item of size bytes in standing st at now.
func (u *LeaseUsage) Add(p Policy, size int64, manifest bool, st State, now time.Time) {
	if manifest {
		u.Manifests++
	}
	if now.Before(st.Expires) {
		u.Leased += size
	}
	if st.Expires.Sub(now) < p.Grace && now.Sub(st.Expires) < p.Grace {
		u.Expiring += size
	}
	if !st.Collectable(now) {
		return
	}
	u.Collectable++
	switch st.Reason {
	case Orphan:
		u.Orphan += size
	case Superseded:
		u.Superseded += size
	case Expired:
		u.Expired += size
	}
}

// GCReport is what one collection pass found and did.
type GCReport struct {
	Time time.Time `json:"time"`
	// Owners are the figures per owner, sorted by ID; Total sums them.
	Owners []LeaseUsage `json:"owners"`
	Total  LeaseUsage   `json:"total"`
	// Removed counts the items the pass removed, by reason, and their
	// bytes.
	Removed      map[string]int `json:"removed"`
	RemovedBytes int64          `json:"removed_bytes"`
	// Collected and CollectedBytes count what every pass since the peer
	// started removed.
	Collected      map[string]int `json:"collected"`
	CollectedBytes int64          `json:"collected_bytes"`
	Lease          int64          `json:"lease_seconds"`
	Grace          int64          `json:"grace_seconds"`
}
