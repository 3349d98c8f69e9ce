package consent

// Repair grants. A patient authorises a repairer (any identity: an
// always-on peer of the patient's, a clinic's) to keep its records alive
// without reading them: to fetch the ciphertext shares of the records the
// grant names, to audit their holders and to put rebuilt shares on peers.
// A repair grant carries no scope, no key material and no purpose of use
// but its own: a repairer rebuilds ciphertext from ciphertext and never
// holds a key that opens a record.
//
// Kind 13 (repair-grant) has a RepairGrantBody; kind 14 (repair-revoke) a
// RepairRevokeBody naming the repair grant it withdraws. Both count only in
// their author's (the owner's) own feed. A request for a repair names
// PurposeRepair and RepairScope; Decide then allows it (reason "repair")
// only under an unrevoked repair grant of the owner to the requester that
// covers the record, and an allowed repair is an access, never a
// disclosure (Disclosures leaves it out).
//
// Repair decisions read the owner's feed as it is (the view, or the prefix
// an access entry names for the audit) rather than an index kept in the
// view state: repair requests are rare (a few per share per repair cycle)
// and the owner's home feed is short (accesses live in sub-feeds), so the
// view state keeps no table of its own for them.

import (
	"fmt"
	"iter"
)

// Kinds of the repair entries.
const (
	KindRepairGrant  Kind = 13 // RepairGrantBody: the author authorises a repairer
	KindRepairRevoke Kind = 14 // RepairRevokeBody: withdraws one of the author's repair grants
)

// PurposeRepair is the purpose of a repairer's requests. It is not an HL7
// PurposeOfUse code on purpose: no ordinary grant can name it, and no
// repair grant covers anything else.
const PurposeRepair = "MWREPAIR"

// RepairScope is the scope a repair request names: ciphertext only.
const RepairScope = "repair/ciphertext"

// Reasons of repair decisions.
const (
	ReasonRepair        Reason = "repair"          // allowed by a repair grant (never a disclosure)
	ReasonNoRepairGrant Reason = "no-repair-grant" // the owner authorised no repair of this record by the requester
)

// RepairGrantBody is the body of a repair grant: the author (the records'
// owner) authorises Repairer to repair Records, or every record (All).
type RepairGrantBody struct {
	Repairer ID       `cbor:"1,keyasint" json:"repairer"`
	Records  []string `cbor:"2,keyasint,omitempty" json:"records,omitempty"`
	All      bool     `cbor:"3,keyasint,omitempty" json:"all,omitempty"`
}

// RepairRevokeBody withdraws the repair grant whose entry hash is Grant.
type RepairRevokeBody struct {
	Grant Hash `cbor:"1,keyasint" json:"grant"`
}

// Validate checks the repairer's ID and the records (sorted, unique, at
// most MaxGrantRecords, or All).
func (b *RepairGrantBody) Validate() error {
	if _, err := cachedPublicKey(b.Repairer); err != nil {
		return malformed("repair grant: repairer: %v", err)
	}
	switch {
	case b.All && len(b.Records) > 0:
		return malformed("repair grant names records and all records")
	case !b.All && len(b.Records) == 0:
		return malformed("repair grant names no record")
	case len(b.Records) > MaxGrantRecords:
		return malformed("repair grant names more than %d records", MaxGrantRecords)
	}
	for i, r := range b.Records {
		if err := ValidateRecordID(r); err != nil {
			return malformed("repair grant: %v", err)
		}
		if i > 0 && b.Records[i-1] >= r {
			return malformed("repair grant records are not sorted and unique")
		}
	}
	return nil
}

// Covers reports whether the repair grant names record.
func (b *RepairGrantBody) Covers(record string) bool {
	if b.All {
		return true
	}
	for _, r := range b.Records {
		if r == record {
			return true
		}
	}
	return false
}

func decodeRepairGrant(b []byte) (any, error) {
	var v RepairGrantBody
	if err := Unmarshal(b, &v); err != nil {
		return nil, malformed("repair grant body: %v", err)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

func decodeRepairRevoke(b []byte) (any, error) {
	var v RepairRevokeBody
	if err := Unmarshal(b, &v); err != nil {
		return nil, malformed("repair revoke body: %v", err)
	}
	if v.Grant.IsZero() {
		return nil, malformed("repair revoke body: grant is missing")
	}
	return &v, nil
}

// RepairGrantInfo is one repair grant as a view holds it.
type RepairGrantInfo struct {
	ID      Hash   `json:"id"` // hash of the grant entry
	Owner   ID     `json:"owner"`
	Seq     uint64 `json:"seq"`
	Time    int64  `json:"time"`
	Revoked bool   `json:"revoked"`
	RepairGrantBody
}

// repairGrantsIn lists the repair grants of an owner's feed (entries
// yields its entries in seq order with their hashes), with their
// revocations applied.
func repairGrantsIn(owner ID, entries iter.Seq2[Hash, *Entry]) []*RepairGrantInfo {
	var out []*RepairGrantInfo
	revoked := map[Hash]bool{}
	for h, e := range entries {
		if e.Author != owner {
			continue
		}
		switch e.Kind {
		case KindRepairGrant:
			b, err := e.DecodedBody()
			if err != nil {
				continue
			}
			out = append(out, &RepairGrantInfo{ID: h, Owner: owner, Seq: e.Seq, Time: e.Time, RepairGrantBody: *b.(*RepairGrantBody)})
		case KindRepairRevoke:
			b, err := e.DecodedBody()
			if err != nil {
				continue
			}
			revoked[b.(*RepairRevokeBody).Grant] = true
		}
	}
	for _, g := range out {
		g.Revoked = revoked[g.ID]
	}
	return out
}

// feedWithHashes yields author's accepted entries up to seq upTo (0: all)
// with their hashes.
func (v *View) feedWithHashes(author ID, upTo uint64) iter.Seq2[Hash, *Entry] {
	return func(yield func(Hash, *Entry) bool) {
		for _, e := range v.entriesOf(author) {
			if upTo > 0 && e.Seq > upTo {
				return
			}
			h, _ := v.HashAt(author, e.Seq)
			if !yield(h, e) {
				return
			}
		}
	}
}

// RepairGrants returns owner's repair grants, revoked ones included (with
// Revoked set), in feed order.
func (v *View) RepairGrants(owner ID) []*RepairGrantInfo {
	return repairGrantsIn(owner, v.feedWithHashes(owner, 0))
}

// RepairOwners returns the owners whose entries name repairer in a repair
// grant (revoked or not) among the owners whose feeds name it (Grantors).
func (v *View) RepairOwners(repairer ID) []ID {
	var out []ID
	for _, o := range v.Grantors(repairer) {
		for _, g := range v.RepairGrants(o) {
			if g.Repairer == repairer {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// repairGrantsOf is the facts method of the live view.
func (v *View) repairGrantsOf(owner ID) []*RepairGrantInfo { return v.RepairGrants(owner) }

// repairGrantsOf answers as of the audited prefix of owner's feed.
func (a *asOf) repairGrantsOf(owner ID) []*RepairGrantInfo {
	lim := a.lim.of(owner)
	if lim == 0 {
		return nil
	}
	return repairGrantsIn(owner, a.x.full.feedWithHashes(owner, lim))
}

// decideRepair decides a request for PurposeRepair (checks 1 to 3 of
// Decide passed): the owner itself is allowed (owner); else the first
// repair grant of the owner, in feed order, to the requester that covers
// the record and is not revoked allows it (repair); else the reason is
// revoked (such grants exist, all revoked), record (repair grants to the
// requester name other records only) or no-repair-grant.
func decideRepair(v facts, r *Request) Decision {
	if r.Scope != RepairScope {
		return deny(ReasonScope)
	}
	if r.Requester == r.Owner {
		return Decision{Allow: true, Reason: ReasonOwner}
	}
	var toReq, covering bool
	var first Hash
	for _, g := range v.repairGrantsOf(r.Owner) {
		if g.Repairer != r.Requester {
			continue
		}
		toReq = true
		if !g.Covers(r.Record) {
			continue
		}
		if !covering {
			first = g.ID
		}
		covering = true
		if !g.Revoked {
			return Decision{Allow: true, Reason: ReasonRepair, Grant: g.ID}
		}
	}
	switch {
	case covering:
		return Decision{Reason: ReasonRevoked, Grant: first}
	case toReq:
		return deny(ReasonRecord)
	}
	return deny(ReasonNoRepairGrant)
}

// String names a repair grant for logs: its ID's short form.
func (g *RepairGrantInfo) String() string { return fmt.Sprintf("repair grant %s", g.ID.String()[:12]) }
