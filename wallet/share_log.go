package wallet

// The links this wallet shared (Links), revoking one (RevokeLink) and the
// peers' logged decisions on their manifest requests (LinkAccesses), which
// the access log and the accounting of disclosures include.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
)

// KindLink is a SMART Health Link this wallet shared; FieldLink names one.
const (
	KindLink  Kind  = "link"
	FieldLink Field = "link"
)

// Link statuses.
const (
	LinkActive  = "active"
	LinkRevoked = "revoked"
	LinkExpired = "expired"
)

// LinkInfo is one link this wallet shared, as its shl entry says.
type LinkInfo struct {
	Entry    consent.Hash
	ID       string
	Created  time.Time
	Expires  time.Time // zero: none
	Flags    string
	Attempts int
	Records  []string
	Status   string
	Allowed  int // manifest requests the peers allowed
	Denied   int // and denied
}

// LinkAccess is one peer's logged decision on a manifest request for one
// of this wallet's links.
type LinkAccess struct {
	Entry       consent.Hash
	Time        time.Time
	Decider     consent.ID
	DeciderName string
	Link        consent.Hash // the shl entry
	LinkID      string
	Records     []string
	Recipient   string // as the requester described itself ("" if it cannot be decrypted)
	Allow       bool
	Reason      consent.Reason
	Failures    int
}

// Links lists the links this wallet shared, oldest first.
func (w *Wallet) Links(ctx context.Context) ([]LinkInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []LinkInfo
	defer func() {
		if len(out) > 0 {
			w.markLinks()
		}
	}()
	l.View(func(v *consent.View) {
		count := map[consent.Hash][2]int{}
		for _, a := range consent.ShlAccesses(v, w.ID(), time.Time{}) {
			c := count[a.Link]
			if a.Allow {
				c[0]++
			} else {
				c[1]++
			}
			count[a.Link] = c
		}
		for _, s := range consent.ShlLinks(v, w.ID()) {
			out = append(out, w.linkInfo(v, s, count[s.ID]))
		}
	})
	return out, nil
}

func (w *Wallet) linkInfo(v *consent.View, s *consent.ShlLink, n [2]int) LinkInfo {
	li := LinkInfo{Entry: s.ID, ID: s.Link, Created: consent.PrintableTime(s.Time), Flags: s.Flags,
		Attempts: int(s.Attempts), Records: slices.Clone(s.Records), Status: LinkActive, Allowed: n[0], Denied: n[1]}
	if s.Expires != 0 {
		li.Expires = consent.PrintableTime(s.Expires)
	}
	switch {
	case v.ShlRevoked(s.ID, w.ID()):
		li.Status = LinkRevoked
	case s.Expires != 0 && w.Now().Unix() >= s.Expires:
		li.Status = LinkExpired
	}
	return li
}

// FindLink reports whether ref names one of this wallet's links: its shl
// entry's hash, its link ID, or a unique prefix of either of at least 8
// characters. It reads the wallet's feed only in a wallet that shared
// links (markLinks), so that revoking a grant costs what it did.
func (w *Wallet) FindLink(ref string) (bool, error) {
	if !w.sharedLinks() {
		return false, nil
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return false, err
	}
	defer l.Close()
	var found bool
	l.View(func(v *consent.View) { _, err = findLink(v, w.ID(), ref); found = err == nil })
	return found, nil
}

// findLink finds the owner's link ref names.
func findLink(v *consent.View, owner consent.ID, ref string) (*consent.ShlLink, error) {
	ref = strings.TrimSpace(ref)
	if len(ref) < 8 {
		return nil, &InputError{Field: FieldLink, Problem: Malformed, Value: ref, Reason: fmt.Sprintf("%q: give at least 8 characters of the ID", ref)}
	}
	var match []*consent.ShlLink
	for _, s := range consent.ShlLinks(v, owner) {
		if strings.HasPrefix(s.ID.String(), strings.ToLower(ref)) || strings.HasPrefix(s.Link, ref) {
			match = append(match, s)
		}
	}
	switch len(match) {
	case 0:
		return nil, &NotFoundError{Kind: KindLink, Ref: ref}
	case 1:
		return match[0], nil
	}
	return nil, &AmbiguousError{Kind: KindLink, Ref: ref, Matches: len(match)}
}

// RevokeLink signs the revocation of one of the wallet's links: every peer
// that has the revocation refuses the link at once. Files a recipient
// already fetched cannot be recalled.
func (w *Wallet) RevokeLink(ctx context.Context, ref string) (LinkInfo, error) {
	defer w.holdLedger()()
	if !w.HasNetwork() {
		return w.revokeLinkLocal(ref)
	}
	var li LinkInfo
	signed, err := w.signAndPublish(ctx, func() (err error) {
		li, err = w.revokeLinkLocal(ref)
		return err
	})
	if signed && err != nil {
		return li, fmt.Errorf("the revocation is signed but not yet on the network: %w", err)
	}
	return li, err
}

func (w *Wallet) revokeLinkLocal(ref string) (LinkInfo, error) {
	l, s, err := w.openLedger(true)
	if err != nil {
		return LinkInfo{}, err
	}
	defer l.Close()
	var link *consent.ShlLink
	var revoked bool
	l.View(func(v *consent.View) {
		if link, err = findLink(v, w.ID(), ref); err == nil {
			revoked = v.ShlRevoked(link.ID, w.ID())
		}
	})
	if err != nil {
		return LinkInfo{}, err
	}
	if revoked {
		return LinkInfo{}, fmt.Errorf("link %s is already revoked: %w", link.ID.String()[:12], ErrExists)
	}
	if _, err := l.Append(s, w.Now(), consent.KindRevoke, &consent.RevokeBody{Grant: link.ID}); err != nil {
		return LinkInfo{}, fmt.Errorf("writing the revocation: %w", err)
	}
	var out LinkInfo
	l.View(func(v *consent.View) { out = w.linkInfo(v, link, [2]int{}) })
	return out, nil
}

// LinkAccesses lists the peers' logged decisions on manifest requests for
// this wallet's links, oldest first, from the local ledger (pull first to
// see the network's). Decisions by peers outside the wallet's network are
// left out, as suspicious access entries are.
func (w *Wallet) LinkAccesses(ctx context.Context) ([]LinkAccess, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []LinkAccess
	book := w.contactBook()
	l.View(func(v *consent.View) { out = w.linkAccessesIn(v, time.Time{}, book) })
	if len(out) > 0 {
		w.markLinks()
	}
	return out, nil
}

func (w *Wallet) linkAccessesIn(v *consent.View, since time.Time, book *contactBook) []LinkAccess {
	var me age.Identity
	if id, err := w.Identity(); err == nil {
		me = id.Opener()
	}
	check := w.accessCheck()
	var out []LinkAccess
	for _, a := range consent.ShlAccesses(v, w.ID(), since) {
		if check.Decider != nil && !check.Decider(a.Decider) {
			continue
		}
		la := LinkAccess{Entry: a.Entry, Time: consent.PrintableTime(a.Time), Decider: a.Decider, DeciderName: book.nameOf(a.Decider),
			Link: a.Link, Allow: a.Allow, Reason: a.Reason, Failures: int(a.Failures)}
		if s, ok := v.ShlLink(a.Link); ok && s.Author == w.ID() {
			la.LinkID, la.Records = s.Link, slices.Clone(s.Records)
		}
		if me != nil {
			if p, err := decryptWith(a.Recipient, me, consent.MaxShlRecipient); err == nil {
				la.Recipient = string(p)
			}
		}
		out = append(out, la)
	}
	return out
}

// withLinkAccesses merges the link accesses into an access log page
// (ListAccesses), by time, keeping the newest limit (0: all). Reading
// them reads every entry of the peers' sub-feeds about this wallet, so the
// log does it only in a wallet that shared links (markLinks): the log's
// cost stays that of its page for everyone else.
func (w *Wallet) withLinkAccesses(v *consent.View, page AccessPage, limit int, book *contactBook) AccessPage {
	if !w.sharedLinks() {
		return page
	}
	las := w.linkAccessesIn(v, time.Time{}, book)
	if len(las) == 0 {
		return page
	}
	for _, la := range las {
		page.Accesses = append(page.Accesses, AccessInfo{Entry: la.Entry, Time: la.Time, Decider: la.Decider,
			RequesterName: "SHL: " + la.Recipient, Record: la.LinkID, Allow: la.Allow, Reason: la.Reason, Repeats: 1,
			Link: &la})
	}
	slices.SortStableFunc(page.Accesses, func(a, b AccessInfo) int { return a.Time.Compare(b.Time) })
	if limit > 0 && len(page.Accesses) > limit {
		page.Accesses = page.Accesses[len(page.Accesses)-limit:]
		page.More, page.Since = true, page.Accesses[0].Time
	}
	return page
}

// linkDisclosures are the allowed manifest requests for this wallet's
// links at or after since: one disclosure of each record of the link to
// the recipient, with purpose PATRQT (the patient shared it).
func (w *Wallet) linkDisclosures(v *consent.View, since time.Time) []Disclosure {
	var out []Disclosure
	las := w.linkAccessesIn(v, since, w.contactBook())
	if len(las) > 0 {
		w.markLinks()
	}
	for _, la := range las {
		if !la.Allow {
			continue
		}
		for _, r := range la.Records {
			d := Disclosure{
				Disclosure: consent.Disclosure{Time: la.Time.Unix(), Record: r, Scope: "SMART Health Link", Scopes: []string{"SMART Health Link"},
					Purpose: "PATRQT", Decider: la.Decider, Grant: la.Link, Entry: la.Entry},
				RecipientName: la.Recipient, DeciderName: la.DeciderName, PurposeDisplay: "patient requested", Decisions: 1,
				Entries: []consent.Hash{la.Entry},
			}
			d.Description = fmt.Sprintf("record %s, the whole record, through SMART Health Link %s", r, la.LinkID[:min(12, len(la.LinkID))])
			out = append(out, d)
		}
	}
	return out
}

// linksMarker is the file whose presence says that this wallet shared
// SMART Health Links: Share writes it, and so does any listing that finds
// links or link requests (share --list, audit disclosures), so that a
// wallet restored on another device lists link requests in its log once
// one of those ran.
const linksMarker = "shl-links"

func (w *Wallet) markLinks() {
	p := filepath.Join(w.Home(), linksMarker)
	if _, err := os.Stat(p); err == nil {
		return
	}
	_ = fsutil.WriteFileAtomic(p, []byte("this wallet shared SMART Health Links\n"), 0o600)
}

func (w *Wallet) sharedLinks() bool {
	_, err := os.Stat(filepath.Join(w.Home(), linksMarker))
	return err == nil
}
