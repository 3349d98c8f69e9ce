package wallet

// The access log: every decision peers logged on requests for this
// wallet's records (AccessLog), and the access entries set apart as
// suspicious (SuspiciousAccesses).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/netfile"
)

// AccessInfo is one logged decision on a request for one of my records.
type AccessInfo struct {
	Entry         consent.Hash
	Time          time.Time
	Decider       consent.ID
	Requester     consent.ID
	RequesterName string
	Record        string
	Scope         string
	Purpose       string
	Allow         bool
	Reason        consent.Reason
	Grant         consent.Hash
	// Emergency accesses: the break-glass entry the request named, its
	// stated reason (decrypted) and, for an allow, the end of the time box.
	BreakGlass      consent.Hash
	EmergencyReason string
	Until           time.Time
	// Suspicion is set on an entry that failed consent.CheckAccess (see
	// SuspiciousAccesses), with the error that says why; its times are
	// clamped to what can be printed.
	Suspicion       consent.Suspicion
	SuspicionDetail string
	// Repeats is the number of decisions the entry records: 1, or for a
	// peer's summary of a denial repeated within a minute (consent.Repeats)
	// the count, the first and last of them decided at First and Last.
	// Allows are never summarised.
	Repeats     int
	First, Last time.Time
	// Link is set on a decision on a SMART Health Link's manifest request
	// (share_log.go): Record is then the link ID, RequesterName "SHL: "
	// and the recipient's own description.
	Link *LinkAccess
}

// Emergency reports whether the access was made under an emergency
// (break-glass) declaration.
func (a AccessInfo) Emergency() bool { return !a.BreakGlass.IsZero() }

// AccessLog lists every logged decision on requests for this wallet's
// records, oldest first, from the local ledger (pull first to see the
// network's). Access entries that fail consent.CheckAccess (see
// accessCheck) are left out: SuspiciousAccesses lists them.
func (w *Wallet) AccessLog(ctx context.Context) ([]AccessInfo, error) {
	p, err := w.ListAccesses(ctx, AccessLogOptions{})
	return p.Accesses, err
}

// SuspiciousAccesses lists the access entries naming this wallet's
// records that fail consent.CheckAccess, oldest first, each with its
// Suspicion. They are evidence against their authors, not accesses.
func (w *Wallet) SuspiciousAccesses(ctx context.Context) ([]AccessInfo, error) {
	p, err := w.ListAccesses(ctx, AccessLogOptions{Suspicious: true})
	return p.Accesses, err
}

// AccessLogOptions select what ListAccesses lists.
type AccessLogOptions struct {
	// Suspicious lists the access entries set apart as suspicious instead
	// of the accepted ones.
	Suspicious bool
	// Limit, above 0, lists only the newest Limit entries; 0 lists all.
	Limit int
}

// AccessPage is what ListAccesses found.
type AccessPage struct {
	// Accesses are the entries listed, oldest first.
	Accesses []AccessInfo
	// More is true when older entries of the same kind were left out by
	// the limit.
	More bool
	// SetApart counts, when listing accepted accesses, the suspicious
	// entries among those examined: all of them when More is false, else
	// those no older than the oldest access listed (Since).
	SetApart int
	// Since, when More is true, is the time of the oldest access listed.
	Since time.Time
}

// ListAccesses lists the accepted access entries naming this wallet's
// records (or the suspicious ones), newest first up to opts.Limit, and
// returns them oldest first. Entries are ordered by time, then by hash;
// only the entries it lists (with those newer and the next older one) are
// decoded and have their requests verified, so the cost of a page barely
// grows with the log. The contact book is read once.
func (w *Wallet) ListAccesses(ctx context.Context, opts AccessLogOptions) (AccessPage, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return AccessPage{}, err
	}
	defer l.Close()
	check := w.accessCheck()
	var me age.Identity
	if id, err := w.Identity(); err == nil {
		me = id.Opener()
	}
	book := w.contactBook()
	opened := map[consent.Hash]string{}
	var page AccessPage
	setApart := 0
	l.View(func(v *consent.View) {
		// reason decrypts a break-glass entry's stated reason once.
		reason := func(h consent.Hash) string {
			if s, ok := opened[h]; ok {
				return s
			}
			s := ""
			if b, ok := v.BreakGlass(h); ok && me != nil {
				if p, err := decryptWith(b.Reason, me, consent.MaxReasonSize); err == nil {
					s = string(p)
				}
			}
			opened[h] = s
			return s
		}
		// take looks at one access entry, newest first; false stops.
		take := func(e *consent.Entry) bool {
			if !namesOwner(e, w.ID()) {
				return true // decoded only: another owner's requests are not verified
			}
			ab, r, err := consent.CheckAccessIn(v, e, check)
			var se *consent.SuspiciousAccessError
			if err != nil && !errors.As(err, &se) || r == nil || r.Owner != w.ID() {
				return true
			}
			if (se != nil) != opts.Suspicious {
				if se != nil {
					page.SetApart++
				}
				return true
			}
			if opts.Limit > 0 && len(page.Accesses) == opts.Limit {
				// An older one exists: those set apart since the oldest
				// listed were counted when the page filled.
				page.More, page.SetApart = true, setApart
				return false
			}
			page.Accesses = append(page.Accesses, accessInfo(e, v.Decider(e.Author), ab, r, se, book, reason))
			setApart = page.SetApart
			return true
		}
		if opts.Limit > 0 {
			// A page: the feeds are read backwards from their heads, as
			// far as the page needs.
			err = accessesNewestFirst(v, take)
			return
		}
		var cands []accessCandidate
		if cands, err = accessCandidates(v); err != nil {
			return
		}
		for i := len(cands) - 1; i >= 0; i-- {
			var e *consent.Entry
			if e, err = v.EntryAt(cands[i].author, cands[i].seq); err != nil {
				return
			}
			if !take(e) {
				break
			}
		}
	})
	if err != nil {
		return AccessPage{}, fmt.Errorf("access log: %w", err)
	}
	slices.Reverse(page.Accesses)
	if !opts.Suspicious {
		l.View(func(v *consent.View) { page = w.withLinkAccesses(v, page, opts.Limit, book) }) // share_log.go
	}
	if page.More && len(page.Accesses) > 0 {
		page.Since = page.Accesses[0].Time
	}
	return page, nil
}

// accessCandidate is an access entry: its place in its feed, with the
// keys it is listed by. The entry itself is read from the ledger only for
// the candidates the caller lists.
type accessCandidate struct {
	author consent.ID
	seq    uint64
	t      time.Time
	hash   string // set only where needed: for entries that share a time
}

// accessCandidates returns every access entry ordered oldest first by
// (time, hash). It streams the feeds: what it keeps per access entry is
// its place and time. Nothing is decoded beyond the entry's fields or
// verified here; the caller decodes, from the newest, only as many as it
// lists. An error is a ledger store that cannot be read.
func accessCandidates(v *consent.View) ([]accessCandidate, error) {
	var out []accessCandidate
	for _, a := range v.Authors() {
		err := v.FeedFrom(a, 1, func(e *consent.Entry) error {
			if e.Kind == consent.KindAccess {
				out = append(out, accessCandidate{author: a, seq: e.Seq, t: consent.PrintableTime(e.Time)})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b accessCandidate) int { return a.t.Compare(b.t) })
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].t.Equal(out[i].t) {
			j++
		}
		if j-i > 1 {
			run := out[i:j]
			for k := range run {
				h, _ := v.HashAt(run[k].author, run[k].seq)
				run[k].hash = h.String()
			}
			slices.SortFunc(run, func(a, b accessCandidate) int { return strings.Compare(a.hash, b.hash) })
		}
		i = j
	}
	return out, nil
}

// accessesNewestFirst calls fn with every access entry, newest first:
// the reverse of accessCandidates' order, by (time, hash). It reads the
// access entries of each feed (View.AccessSeqs) backwards from the
// newest, merging the feeds by time, and stops when fn returns false: a
// caller listing the newest few reads about as many entries, however
// long the ledger. A feed's times never go backwards, so the access
// entries of a feed older than the one read are no newer than it;
// entries sharing a time, in any feed, are all read before any of them is
// handed over, and handed over by hash. An error is a ledger store that
// cannot be read.
func accessesNewestFirst(v *consent.View, fn func(*consent.Entry) bool) error {
	cs := &cursorHeap{}
	// next reads c's access entry i (its next, going backwards) and
	// pushes c back; a feed read to its first access entry is done.
	next := func(c feedCursor) error {
		if c.i < 0 {
			return nil
		}
		e, err := v.EntryAt(c.author, c.seqs[c.i])
		if err != nil {
			return err
		}
		c.e, c.t = e, consent.PrintableTime(e.Time)
		cs.push(c)
		return nil
	}
	for _, a := range v.Authors() {
		seqs := v.AccessSeqs(a)
		if err := next(feedCursor{author: a, seqs: seqs, i: len(seqs) - 1}); err != nil {
			return err
		}
	}
	type timed struct {
		e    *consent.Entry
		hash string
	}
	var same []timed
	for len(*cs) > 0 {
		t := (*cs)[0].t
		same = same[:0]
		for len(*cs) > 0 && (*cs)[0].t.Equal(t) {
			c := cs.pop()
			h, _ := v.HashAt(c.author, c.e.Seq)
			same = append(same, timed{c.e, h.String()})
			c.i--
			if err := next(c); err != nil {
				return err
			}
		}
		slices.SortFunc(same, func(a, b timed) int { return strings.Compare(b.hash, a.hash) })
		for _, x := range same {
			if !fn(x.e) {
				return nil
			}
		}
	}
	return nil
}

// feedCursor is where accessesNewestFirst is in one feed: seqs are the
// feed's access entries, e the one at i (the newest not handed over yet),
// t its time.
type feedCursor struct {
	author consent.ID
	seqs   []uint64
	i      int
	e      *consent.Entry
	t      time.Time
}

// cursorHeap is a max-heap of feed cursors by time.
type cursorHeap []feedCursor

func (h *cursorHeap) push(c feedCursor) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[i].t.After(s[p].t) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *cursorHeap) pop() feedCursor {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s[l].t.After(s[m].t) {
			m = l
		}
		if r < n && s[r].t.After(s[m].t) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// namesOwner reports whether access entry e carries a request (decoded,
// not verified) for a record of owner.
func namesOwner(e *consent.Entry, owner consent.ID) bool {
	b, err := e.DecodedBody()
	if err != nil {
		return false
	}
	ab, ok := b.(*consent.AccessBody)
	if !ok {
		return false
	}
	r, err := consent.DecodeRequest(ab.Request)
	return err == nil && r.Owner == owner
}

// accessCheck is what the wallet knows beyond the ledger when it reads
// access entries: its clock and, when its network file can be read, the
// peers there as the only deciders besides itself (shares are placed on
// those peers). Without a network file the decider is not checked.
func (w *Wallet) accessCheck() consent.AccessCheck {
	c := consent.AccessCheck{Now: w.Now()}
	n, err := netfile.Read(w.NetworkPath())
	if err != nil {
		return c
	}
	ais, err := netfile.ParseAddrs(n.Peers)
	if err != nil {
		return c
	}
	peers := make(map[consent.ID]bool, len(ais))
	for _, ai := range ais {
		peers[consent.ID(ai.ID.String())] = true
	}
	c.Decider = func(id consent.ID) bool { return peers[id] }
	return c
}

// accessInfo describes one access entry (se is set for a suspicious one);
// reason returns the stated reason of a break-glass entry.
func accessInfo(e *consent.Entry, decider consent.ID, ab *consent.AccessBody, r *consent.Request,
	se *consent.SuspiciousAccessError, book *contactBook, reason func(consent.Hash) string) AccessInfo {
	ai := AccessInfo{Entry: e.Hash(), Time: consent.PrintableTime(e.Time), Decider: decider,
		Requester: r.Requester, RequesterName: book.nameOf(r.Requester), Record: r.Record, Scope: r.Scope,
		Purpose: r.Purpose, Allow: ab.Allow, Reason: ab.Reason, Grant: ab.Grant, BreakGlass: r.BreakGlass}
	if se != nil {
		ai.Suspicion, ai.SuspicionDetail = se.Reason, se.Error()
	}
	if ab.Until != 0 {
		ai.Until = consent.PrintableTime(ab.Until)
	}
	ai.Repeats = ab.Decisions()
	if r := ab.Repeats; r != nil {
		ai.First, ai.Last = consent.PrintableTime(r.First), consent.PrintableTime(r.Last)
	}
	if !r.BreakGlass.IsZero() && se == nil {
		ai.EmergencyReason = reason(r.BreakGlass)
	}
	return ai
}
