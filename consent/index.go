package consent

import (
	"slices"
	"strings"
)

// The grant index: what Decide needs to know about an owner's grants,
// kept so that a decision costs O(log n + live grants of the key asked),
// however long the history of grants and revocations behind that key.

// setKey names the grants of one owner to one grantee on one record ("":
// all-records grants), from one issuer for one role (both "" for a grant
// that is not a role grant). A grant with several records is in one set
// per record.
type setKey struct {
	owner, grantee ID
	record         string
	issuer         ID
	role           string
}

// grantSet is one setKey's grants: the unrevoked ones, and the one with the
// smallest ID ever (revoked or not), which a revoked deny names.
type grantSet struct {
	live  []*GrantInfo // not revoked by their author, sorted by ID
	first *GrantInfo
}

// grantIndex indexes grants as they are accepted, in feed order, and drops
// them from the live sets as their author revokes them. Only grants count
// for their author (the owner), and only the owner's revocations.
type grantIndex struct {
	sets map[setKey]*grantSet
	// bySub lists, per (owner, grantee, record), the sets of every issuer
	// and role: a grant to the requester counts whatever it names.
	bySub        map[grantKey][]*grantSet
	byOwnerRec   map[ownerRecord]int // grants (revoked too) per (owner, record)
	byOwnerTo    map[ownerGrantee]int
	roleOwnerRec map[ownerRecord]int // role grants per (owner, record)
	count        int
}

func newGrantIndex() *grantIndex {
	return &grantIndex{
		sets:         make(map[setKey]*grantSet),
		bySub:        make(map[grantKey][]*grantSet),
		byOwnerRec:   make(map[ownerRecord]int),
		byOwnerTo:    make(map[ownerGrantee]int),
		roleOwnerRec: make(map[ownerRecord]int),
	}
}

func cmpGrantID(a, b *GrantInfo) int { return strings.Compare(string(a.ID[:]), string(b.ID[:])) }

// add indexes an accepted grant; live is false when its author already
// revoked it.
func (x *grantIndex) add(gi *GrantInfo, live bool) {
	x.count++
	x.byOwnerTo[ownerGrantee{gi.Author, gi.Grantee}]++
	recs := gi.Records
	if gi.All {
		recs = []string{""}
	}
	for _, r := range recs {
		k := setKey{gi.Author, gi.Grantee, r, gi.Issuer, gi.Role}
		s := x.sets[k]
		if s == nil {
			s = &grantSet{first: gi}
			x.sets[k] = s
			sk := grantKey{gi.Author, gi.Grantee, r}
			x.bySub[sk] = append(x.bySub[sk], s)
		} else if cmpGrantID(gi, s.first) < 0 {
			s.first = gi
		}
		if live {
			i, _ := slices.BinarySearchFunc(s.live, gi, cmpGrantID)
			s.live = slices.Insert(s.live, i, gi)
		}
		x.byOwnerRec[ownerRecord{gi.Author, r}]++
		if gi.IsRole() {
			x.roleOwnerRec[ownerRecord{gi.Author, r}]++
		}
	}
}

// revoke drops an indexed grant from the live sets.
func (x *grantIndex) revoke(gi *GrantInfo) {
	recs := gi.Records
	if gi.All {
		recs = []string{""}
	}
	for _, r := range recs {
		s := x.sets[setKey{gi.Author, gi.Grantee, r, gi.Issuer, gi.Role}]
		if s == nil {
			continue
		}
		if i, ok := slices.BinarySearchFunc(s.live, gi, cmpGrantID); ok {
			s.live = slices.Delete(s.live, i, i+1)
		}
	}
}

// candidates collects the sets a request of requester on owner's record
// reads: the grants to the requester, and the role grants each credential
// reaches. It returns the live grants of those sets, sorted by ID and
// without duplicates, and the grant with the smallest ID among all their
// grants (nil if there is none at all).
func (x *grantIndex) candidates(owner, requester ID, record string, creds []*CredentialInfo) (live []*GrantInfo, first *GrantInfo) {
	var sets []*grantSet
	addSet := func(s *grantSet) {
		if s != nil && !slices.Contains(sets, s) {
			sets = append(sets, s)
		}
	}
	for _, rec := range []string{record, ""} {
		for _, s := range x.bySub[grantKey{owner, requester, rec}] {
			addSet(s)
		}
	}
	for _, c := range creds {
		if c.Role == "" {
			continue // reaches no grant
		}
		for _, rec := range []string{record, ""} {
			addSet(x.sets[setKey{owner, c.RoleID, rec, c.Issuer, c.Role}])
		}
	}
	for _, s := range sets {
		if first == nil || cmpGrantID(s.first, first) < 0 {
			first = s.first
		}
		live = mergeByID(live, s.live)
	}
	return live, first
}
