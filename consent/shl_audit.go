package consent

// The audit's re-check of link requests (shl-access entries, shl.go): an
// allow the ledger itself forbids is a violation. The auditor's walk
// notes every revoke entry and every allowed shl-access entry; finish
// checks them once every feed is read. Denials release nothing and are
// not re-checked; the passcode check is the decider's word.

type shlAudit struct {
	revokes map[Hash][]authorSeq // revoke entries, by the entry they name
	jobs    []authorSeq          // allowed shl-access entries
}

func (s *shlAudit) noteRevoke(e *Entry, body any) {
	b, ok := body.(*RevokeBody)
	if !ok {
		return
	}
	if s.revokes == nil {
		s.revokes = map[Hash][]authorSeq{}
	}
	s.revokes[b.Grant] = append(s.revokes[b.Grant], authorSeq{e.Author, e.Seq})
}

func (s *shlAudit) noteAccess(e *Entry, body any) {
	if b, ok := body.(*ShlAccessBody); ok && b.Allow {
		s.jobs = append(s.jobs, authorSeq{e.Author, e.Seq})
	}
}

// check adds a violation to found for each allowed link request that the
// ledger forbids as of the owner's head it names: on a link the owner's
// feed does not hold there, a head not in the owner's feed, a link the
// owner had revoked by then, after the link's expiry, or after its last
// allowed wrong passcode.
func (s *shlAudit) check(full *View, found map[authorSeq][]Finding) {
	for _, pos := range s.jobs {
		e, err := full.EntryAt(pos.author, pos.seq)
		if err != nil {
			continue
		}
		body, err := e.DecodedBody()
		if err != nil {
			continue
		}
		b := body.(*ShlAccessBody)
		h := full.hashOf(e)
		fail := func(detail string) {
			found[pos] = append(found[pos], Finding{Kind: FindingViolation, Author: e.Author, Seq: e.Seq, Entry: &h,
				Logged: b.Reason, Detail: "link request allowed " + detail})
		}
		link, ok := full.Entry(b.Link)
		l, isLink := full.ShlLink(b.Link)
		switch {
		case !ok || !isLink || l.Author != b.Owner:
			fail("on a link the owner's feed does not hold")
			continue
		case b.OwnerHead.Seq < link.Seq:
			fail("on a link newer than the owner's feed head it names")
			continue
		}
		if hh, ok := full.HashAt(b.Owner, b.OwnerHead.Seq); !ok || hh != b.OwnerHead.Hash {
			fail("naming an owner's feed head that is not in the owner's feed")
			continue
		}
		for _, r := range s.revokes[b.Link] {
			if r.author == b.Owner && r.seq <= b.OwnerHead.Seq {
				fail("after the owner's revocation of the link, which the decider held")
				break
			}
		}
		if l.Expires != 0 && e.Time >= l.Expires {
			fail("after the link expired")
		}
		if l.Passcode() && b.Failures >= l.Attempts {
			fail("after the link's last allowed wrong passcode")
		}
	}
}
