package consent

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Finding kinds reported by AuditLedger. Violation, Invalid, Chain and
// Equivocation make an audit fail; Mismatch and Suspicious are
// informational.
const (
	FindingInvalid      = "invalid-entry" // an entry that does not verify on its own
	FindingChain        = "chain"         // a feed that does not verify (gap, wrong prev, order, author)
	FindingEquivocation = "equivocation"  // two entries with one author and seq, or a proof of them
	FindingViolation    = "violation"     // an access allowed that no valid grant allowed
	FindingMismatch     = "mismatch"      // a logged decision that differs from Decide otherwise
	FindingSuspicious   = "suspicious"    // an access entry that fails CheckAccess: evidence against its author
)

// Finding is one problem found by an audit. Detail is built from errors
// and IDs only: no record contents, no key material.
type Finding struct {
	Kind   string `json:"kind"`
	Author ID     `json:"author,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Entry  *Hash  `json:"entry,omitempty"`
	Logged Reason `json:"logged,omitempty"`  // decision reason in the access entry
	Reason Reason `json:"decided,omitempty"` // reason Decide gives on re-run
	Grant  *Hash  `json:"grant,omitempty"`   // grant the access entry relied on
	Detail string `json:"detail"`

	// Suspicion is why a suspicious access entry failed CheckAccess.
	Suspicion Suspicion `json:"suspicion,omitempty"`
}

// AuditReport sums up an audit of a set of entries.
type AuditReport struct {
	Entries      int       `json:"entries"`
	Feeds        int       `json:"feeds"`
	Grants       int       `json:"grants"`
	Revocations  int       `json:"revocations"`
	Accesses     int       `json:"accesses"`
	Allowed      int       `json:"allowed"`
	Denied       int       `json:"denied"`
	Emergency    int       `json:"emergency"` // allowed accesses with reason emergency (break-glass)
	Equivocators []ID      `json:"equivocators"`
	Findings     []Finding `json:"findings"`

	// Suspicious counts access entries that fail CheckAccess; they are
	// not counted as accesses and not re-run.
	Suspicious int `json:"suspicious"`

	// Accesses, Allowed and Denied count decisions: a summary of repeated
	// denials (AccessBody.Repeats) counts Repeats.Count. Repeated is how
	// many of the denials were counted by summaries, in Summaries entries.
	Repeated  int `json:"repeated"`
	Summaries int `json:"summaries"`

	// Proofs explains each equivocation, by author (one per Equivocators).
	Proofs []ProofReport `json:"proofs"`

	// Checkpoints and Forks: the checkpoint audit (checkpoint_audit.go).
	Checkpoints []CheckpointReport `json:"checkpoints,omitempty"`
	Forks       []ForkReport       `json:"forks,omitempty"`
}

// ProofReport explains one equivocation: Author signed the two entries
// Entries (in the proof's bytewise order) at Seq. LoggedBy lists the
// equivocation entries that carry a proof against Author, by logger; it is
// empty when the audit found the two entries among those audited and no one
// logged a proof.
type ProofReport struct {
	Author   ID                `json:"author"`
	Seq      uint64            `json:"seq"`
	Entries  [2]EquivocalEntry `json:"entries"`
	LoggedBy []ProofLog        `json:"logged_by"`
}

// EquivocalEntry is one of the two entries of an equivocation: its hash,
// kind and the time its author put on it.
type EquivocalEntry struct {
	Hash Hash   `json:"hash"`
	Kind string `json:"kind"`
	Time int64  `json:"time"`
}

// explainProof builds the ProofReport of p, a verified proof, from v.
func explainProof(v *View, p *EquivocationProof) ProofReport {
	r := ProofReport{Author: p.Author(), Seq: p.Seq(), LoggedBy: v.ProofLogs(p.Author())}
	if r.LoggedBy == nil {
		r.LoggedBy = []ProofLog{}
	}
	for i, e := range []*Entry{p.a, p.b} {
		r.Entries[i] = EquivocalEntry{Hash: e.Hash(), Kind: e.Kind.String(), Time: e.Time}
	}
	return r
}

// OK reports whether the audit found nothing that fails it.
func (r *AuditReport) OK() bool {
	for _, f := range r.Findings {
		if f.Kind != FindingMismatch && f.Kind != FindingSuspicious {
			return false
		}
	}
	return true
}

// AuditLedger verifies a set of entries from scratch, the way an outsider
// would: every signature, every feed's chain, every equivocation, and every
// access entry. For an access entry A written by decider D, logging a
// request R by owner O, the policy is re-run as of A:
//
//	Decide(view of {O's feed up to A.OwnerHead} ∪ {D's feed before A}
//	       ∪ {R's requester's feed up to A.RequesterHead, if named}
//	       ∪ {the issuer's feed up to A.IssuerHead, if named}, R, A.Time)
//
// (at A.Repeats.Last instead of A.Time for a summary of repeated denials,
// which counts as Repeats.Count denials and must name an earlier denial of
// the same request by D, else it is a mismatch).
//
// O's feed prefix holds every grant and revocation the decider could rely
// on (only O's grants count for O's records); D's own earlier entries hold
// the nonces it had logged and the equivocation proofs it had recorded;
// the requester's feed holds its break-glass entries and the issuer's its
// credentials and their revocations. An allow that this re-run denies is a
// violation; a head that is not in its feed makes an allow a violation too.
//
// An access entry that fails CheckAccess (with the zero AccessCheck: its
// request does not verify, or its times cannot be printed) is not re-run:
// it is a suspicious finding, which does not fail the audit, because anyone
// can write such an entry on its own feed. AuditLedgerWith checks more.
func AuditLedger(entries []*Entry) *AuditReport {
	return AuditLedgerWith(entries, AccessCheck{})
}

// AuditLedgerWith is AuditLedger with what the reader knows beyond the
// ledger (the reading time, the peers that could decide): access entries
// that fail CheckAccess with c are suspicious findings.
func AuditLedgerWith(entries []*Entry, c AccessCheck) *AuditReport {
	a := newAuditor(NewView(), c)
	a.rep.Entries = len(entries)
	items := make([]auditItem, len(entries))
	for i, e := range entries {
		items[i].e = e
	}
	prepareItems(items)
	byAuthor := make(map[ID][]*auditItem)
	for i := range items {
		it := &items[i]
		if it.err != nil {
			a.invalid(it)
			continue
		}
		byAuthor[it.e.Author] = append(byAuthor[it.e.Author], it)
	}
	authors := make([]ID, 0, len(byAuthor))
	for a := range byAuthor {
		authors = append(authors, a)
	}
	slices.Sort(authors)
	for _, id := range authors {
		a.feed(id, byAuthor[id])
	}
	return a.finish()
}

// AuditStore is AuditLedgerWith over every entry of s, read in Scan's
// order (by author, then seq) a chunk at a time rather than all at once.
// It also returns the view of the audited entries, so that a caller needs
// no second pass over the store (for EmergencyAccesses, say); that view
// reads its entries from s, which must stay open while it is used. An
// error is a store that cannot be read.
func AuditStore(s Store, c AccessCheck) (*AuditReport, *View, error) {
	// The view reads the audited store: the entries it accepts are there.
	a := newAuditor(newView(s), c)
	a.inStore = true
	stop := make(chan struct{})
	var serr error
	chunks := scanChunks(s, stop, &serr)
	var last *Entry
	release, _ := s.(memoryReleaser)
	a.release = release
	n := 0
	err := func() error {
		for chunk := range chunks {
			if n++; release != nil && n%(releaseEvery/auditChunk) == 0 {
				release.ReleaseMemory()
			}
			for i := range chunk {
				it := &chunk[i]
				if it.bad != nil {
					return fmt.Errorf("stored entry: %w", it.bad)
				}
				e := it.e
				if last != nil && (e.Author < last.Author || e.Author == last.Author && e.Seq <= last.Seq) {
					return fmt.Errorf("stored entry %s#%d is out of order (after %s#%d): filed under another key",
						e.Author.Short(), e.Seq, last.Author.Short(), last.Seq)
				}
				last = e
				a.rep.Entries++
				if it.err != nil {
					a.invalid(it)
					continue
				}
				a.next(it)
			}
		}
		return nil
	}()
	if err != nil {
		close(stop)
		for range chunks {
		}
		return nil, nil, err
	}
	if serr != nil {
		return nil, nil, serr
	}
	rep := a.finish()
	if release != nil {
		release.ReleaseMemory()
	}
	if a.err != nil {
		return nil, nil, a.err
	}
	return rep, a.full, nil
}

// auditor builds an AuditReport: entries that verify on their own go in
// feed by feed, each feed's entries by seq; each is chained and added to
// the full view, and each accepted entry counted and indexed (walk); then
// finish checks equivocations and re-runs the policy for the access
// entries.
type auditor struct {
	rep   *AuditReport
	full  *View
	c     AccessCheck
	x     *auditIndex
	bad   []Finding // invalid entries, first in the report
	chain []Finding // chain and equivocation findings, by author

	// inStore: the full view reads the audited store, which holds every
	// entry it accepts.
	inStore bool

	// The feed next streams into: its author, head, and whether it broke.
	author ID
	head   Head
	broken bool

	found map[authorSeq][]Finding // access findings, by access entry
	jobs  []auditJob
	err   error // the view's store failed

	shl shlAudit // link requests (shl_audit.go)

	// release, if not nil, gives back the memory the reads of the view's
	// store took.
	release memoryReleaser
}

// auditJob is an access entry waiting for its policy re-run: its place in
// the walk and in its feed, its owner and the owner's prefix it names.
type auditJob struct {
	i      int
	author ID
	seq    uint64
	owner  ID
	at     uint64
}

func newAuditor(full *View, c AccessCheck) *auditor {
	return &auditor{rep: &AuditReport{Equivocators: []ID{}, Findings: []Finding{}, Proofs: []ProofReport{}},
		full: full, c: c, x: emptyAuditIndex(full), found: map[authorSeq][]Finding{}}
}

func (a *auditor) invalid(it *auditItem) {
	h := it.h
	a.bad = append(a.bad, Finding{Kind: FindingInvalid, Author: it.e.Author, Seq: it.e.Seq, Entry: &h, Detail: it.err.Error()})
}

// next takes the next entry of a stream of valid entries by author, then
// seq, each author's once at most per seq (a store's): it checks the
// entry's place in its feed as verifyFeed would, and adds it.
func (a *auditor) next(it *auditItem) {
	e := it.e
	if a.rep.Feeds == 0 || e.Author != a.author {
		a.rep.Feeds++
		a.author, a.head, a.broken = e.Author, Head{}, false
	}
	if !a.broken {
		if err := checkLink(a.head, e); err != nil {
			a.broken = true
			a.chain = append(a.chain, Finding{Kind: FindingChain, Author: e.Author, Detail: err.Error()})
		}
		a.head = Head{Seq: e.Seq, Hash: it.h, Time: e.Time}
	}
	a.add(it)
}

// feed checks the chain of author's entries (each verified on its own),
// in any order, duplicates and equivocations included, and adds them.
func (a *auditor) feed(author ID, its []*auditItem) {
	a.rep.Feeds++
	slices.SortStableFunc(its, func(x, y *auditItem) int {
		if x.e.Seq != y.e.Seq {
			return cmp.Compare(x.e.Seq, y.e.Seq)
		}
		return bytes.Compare(x.e.Encode(), y.e.Encode())
	})
	es := make([]*Entry, len(its))
	for i, it := range its {
		es[i] = it.e
	}
	if _, err := verifyFeed(author, dedupe(es), false); err != nil {
		kind := FindingChain
		var eq *EquivocationError
		if errors.As(err, &eq) {
			kind = FindingEquivocation
		}
		a.chain = append(a.chain, Finding{Kind: kind, Author: author, Detail: err.Error()})
	}
	for _, it := range its {
		a.add(it)
	}
}

// add adds a verified entry to the full view and walks what it accepts.
func (a *auditor) add(it *auditItem) {
	acc, _ := a.full.ingestVerified(it.e, it.h)
	if a.inStore {
		a.full.stored(acc)
	}
	for _, e := range acc {
		if e == it.e {
			a.walk(e, it.h, it.body, it.pre)
			continue
		}
		// An entry that waited for this one: not prepared any more.
		h := e.Hash()
		body, err := e.DecodedBody()
		if err != nil {
			continue // verified before: cannot happen
		}
		a.walk(e, h, body, nil)
	}
}

// walk counts and indexes accepted entry e (hash h, body decoded), in
// feed order: revocations, and for each access entry its own checks
// (CheckAccessIn, summaries of repeated denials) and the policy re-run
// finish does. pre is what prepareItems worked out for an access entry.
func (a *auditor) walk(e *Entry, h Hash, body any, pre *accessPre) {
	var req *Request
	switch e.Kind {
	case KindRevoke:
		a.rep.Revocations++
		a.shl.noteRevoke(e, body)
	case KindShlAccess:
		a.shl.noteAccess(e, body)
	case KindAccess:
		if pre == nil {
			ab, _ := body.(*AccessBody)
			pre = &accessPre{ab: ab}
			if pre.req, pre.reqErr = DecodeRequest(ab.Request); pre.reqErr == nil && timesOK(e, ab) {
				pre.sigErr = VerifyRequest(pre.req)
			}
		}
		req = pre.req
	}
	a.x.note(e, h, body, req)
	if e.Kind != KindAccess {
		return
	}
	ab, req, err := checkAccessIn(a.full, e, a.c, pre)
	pos := authorSeq{e.Author, e.Seq}
	if err != nil {
		var se *SuspiciousAccessError
		if errors.As(err, &se) {
			a.rep.Suspicious++
			a.found[pos] = append(a.found[pos], Finding{Kind: FindingSuspicious, Author: e.Author, Seq: e.Seq, Entry: &h,
				Logged: ab.Reason, Suspicion: se.Reason, Detail: err.Error()})
		}
		// Otherwise the body does not decode: checked when the entry was
		// verified.
		return
	}
	rep := a.rep
	n := ab.Decisions()
	rep.Accesses += n
	if ab.Allow {
		rep.Allowed++
		if ab.Reason == ReasonEmergency {
			rep.Emergency++
		}
	} else {
		rep.Denied += n
	}
	if ab.Repeats != nil {
		rep.Repeated += n
		rep.Summaries++
		if err := checkRepeats(a.full, e, ab, req); err != nil {
			f := newAccessFinding(e, h, ab)
			f.Kind, f.Detail = FindingMismatch, err.Error()
			a.found[pos] = append(a.found[pos], f)
		}
	}
	// The re-run waits for every feed: the heads it names may be in
	// feeds not read yet. Until then the entry waits as a few words, and
	// is read again from the view's store when its turn comes.
	a.jobs = append(a.jobs, auditJob{i: len(a.jobs), author: e.Author, seq: e.Seq, owner: req.Owner,
		at: ownerPrefix(e, ab, req)})
}

func (a *auditor) finish() *AuditReport {
	rep, full := a.rep, a.full
	add := func(f Finding) { rep.Findings = append(rep.Findings, f) }
	rep.Findings = append(append(rep.Findings, a.bad...), a.chain...)
	reported := map[ID]bool{}
	for _, f := range rep.Findings {
		if f.Kind == FindingEquivocation {
			reported[f.Author] = true
		}
	}
	for _, p := range full.Proofs() {
		rep.Equivocators = append(rep.Equivocators, p.Author())
		pr := explainProof(full, p)
		rep.Proofs = append(rep.Proofs, pr)
		if !reported[p.Author()] {
			// Proven by a proof entry in some feed rather than by two
			// entries among those audited.
			where := "proof logged on the ledger"
			if len(pr.LoggedBy) > 0 {
				by := pr.LoggedBy[0]
				where = fmt.Sprintf("proof logged on the ledger by %s in its entry #%d", by.Logger.Short(), by.Seq)
			}
			add(Finding{Kind: FindingEquivocation, Author: p.Author(), Seq: p.Seq(),
				Detail: fmt.Sprintf("author %s: %v at seq %d (%s)", p.Author().Short(), ErrEquivocation, p.Seq(), where)})
		}
	}
	rep.Grants = len(full.grantMap())
	a.decideAll()
	a.shl.check(full, a.found)
	// Access findings in the order of a walk over the feeds, by author
	// then seq.
	at := make([]authorSeq, 0, len(a.found))
	for p := range a.found {
		at = append(at, p)
	}
	slices.SortFunc(at, func(x, y authorSeq) int {
		if c := cmp.Compare(x.author, y.author); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	for _, p := range at {
		rep.Findings = append(rep.Findings, a.found[p]...)
	}
	return rep
}

// decideAll re-runs the policy for every access entry walked (jobs) as of
// the feed prefixes it names: a head that is not in its feed makes an
// allow a violation; otherwise the logged decision is judged against the
// policy's. The re-runs go owner by owner, in order of the owner's
// prefix, so that each owner's grant cursor only moves forward.
func (a *auditor) decideAll() {
	jobs := a.jobs
	a.jobs = nil
	slices.SortFunc(jobs, func(x, y auditJob) int {
		if c := cmp.Compare(x.owner, y.owner); c != 0 {
			return c
		}
		if c := cmp.Compare(x.at, y.at); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	var gc *grantCursor
	for k, j := range jobs {
		if a.release != nil && k > 0 && k%releaseEvery == 0 {
			a.release.ReleaseMemory()
		}
		e, err := a.full.EntryAt(j.author, j.seq)
		if err != nil {
			a.err = err
			return
		}
		// Verified and checked when walked: cannot fail.
		body, err := e.DecodedBody()
		if err != nil {
			panic(fmt.Sprintf("audit: access entry no longer decodes: %v", err))
		}
		ab := body.(*AccessBody)
		req, err := DecodeRequest(ab.Request)
		if err != nil {
			panic(fmt.Sprintf("audit: request no longer decodes: %v", err))
		}
		h := a.full.hashOf(e)
		pos := authorSeq{j.author, j.seq}
		lim, err := accessLimits(a.full, e, ab, req)
		if err != nil {
			if ab.Allow {
				f := newAccessFinding(e, h, ab)
				f.Kind, f.Detail = FindingViolation, err.Error()
				a.found[pos] = append(a.found[pos], f)
			}
			continue
		}
		if gc == nil || gc.owner != j.owner {
			gc = a.x.cursor(j.owner)
		}
		gc.advance(lim.of(j.owner))
		// The request was verified when walked.
		d := decide(&asOf{x: a.x, lim: lim, gc: gc}, req, TimeOf(ab.DecidedAt(e.Time)))
		f := newAccessFinding(e, h, ab)
		if judge(&f, ab, d) {
			a.found[pos] = append(a.found[pos], f)
		}
	}
}

// ownerPrefix is lim.of(req.Owner) for the limits accessLimits gives
// access entry e (body ab) when every head it names is in its feed: the
// decider's own feed before e if the owner decided, else the highest head
// of the owner's feed the entry names.
func ownerPrefix(e *Entry, ab *AccessBody, req *Request) uint64 {
	if req.Owner == e.Author {
		return e.Seq - 1
	}
	at := ab.OwnerHead.Seq
	if ab.RequesterHead != nil && req.Requester == req.Owner {
		at = max(at, ab.RequesterHead.Seq)
	}
	if ab.IssuerHead != nil && ab.Issuer == req.Owner {
		at = max(at, ab.IssuerHead.Seq)
	}
	return at
}

func dedupe(es []*Entry) []*Entry {
	out := es[:0:0]
	for i, e := range es {
		if i > 0 && e.Seq == es[i-1].Seq && bytes.Equal(e.Encode(), es[i-1].Encode()) {
			continue
		}
		out = append(out, e)
	}
	return out
}

func newAccessFinding(e *Entry, h Hash, ab *AccessBody) Finding {
	f := Finding{Author: e.Author, Seq: e.Seq, Entry: &h, Logged: ab.Reason}
	if !ab.Grant.IsZero() {
		g := ab.Grant
		f.Grant = &g
	}
	return f
}

// judge compares the logged decision ab with the policy's d and fills in
// f; it reports whether f is a finding.
func judge(f *Finding, ab *AccessBody, d Decision) bool {
	f.Reason = d.Reason
	switch {
	case ab.Allow && !d.Allow:
		f.Kind, f.Detail = FindingViolation, "access allowed but no valid grant allowed it: "+string(d.Reason)
	case ab.Allow && d.Reason != ab.Reason:
		f.Kind, f.Detail = FindingViolation, "access allowed for another reason than the policy gives: "+string(d.Reason)
	case ab.Allow && ab.Until > d.Until:
		f.Kind, f.Detail = FindingViolation, "emergency access logged with a longer time box than the policy gives"
	case ab.Allow && d.Grant != ab.Grant:
		f.Kind, f.Detail = FindingMismatch, "access allowed under another grant than the policy picks"
	case !ab.Allow && d.Allow:
		f.Kind, f.Detail = FindingMismatch, "access denied although the policy allows it"
	case !ab.Allow && d.Reason != ab.Reason:
		f.Kind, f.Detail = FindingMismatch, "access denied for another reason than the policy gives"
	default:
		return false
	}
	return true
}

// checkRepeats checks a summary of repeated denials against the entry it
// names: an earlier denial on the decider's own feed, for the same
// requester, owner, record and reason, that the counted denials followed
// within RepeatWindow.
func checkRepeats(full *View, e *Entry, ab *AccessBody, req *Request) error {
	bad := errors.New("repeated denials counted against no earlier denial of the same request by this decider")
	of, ok := full.Entry(ab.Repeats.Of)
	if !ok || of.Author != e.Author || of.Seq >= e.Seq || of.Kind != KindAccess {
		return bad
	}
	ob, oreq, err := CheckAccess(of, AccessCheck{})
	if err != nil || ob.Allow || ob.Reason != ab.Reason || oreq.Requester != req.Requester ||
		oreq.Owner != req.Owner || oreq.Record != req.Record {
		return bad
	}
	if w := int64(RepeatWindow / time.Second); ab.Repeats.First < of.Time || ab.Repeats.Last >= of.Time+w {
		return errors.New("repeated denials counted outside the window of the denial they repeat")
	}
	return nil
}

// ErrUnknownHead reports an access entry naming a head (of the owner's,
// the requester's or the issuer's feed) that is not part of that feed. The
// error returned wraps it with the head's role ("owner head: ...").
var ErrUnknownHead = errors.New("head in access entry is not in its feed")

// DecideAsOf re-runs Decide for access entry e (carrying req) on the view
// as of e, built from full (see AuditLedger). It indexes full on each
// call: the audit indexes once for all entries.
func DecideAsOf(full *View, e *Entry, req *Request) (Decision, error) {
	body, err := e.DecodedBody()
	if err != nil {
		return Decision{}, err
	}
	ab, ok := body.(*AccessBody)
	if !ok {
		return Decision{}, malformed("not an access entry")
	}
	lim, err := accessLimits(full, e, ab, req)
	if err != nil {
		return Decision{}, err
	}
	x := newAuditIndex(full)
	gc := x.cursor(req.Owner)
	gc.advance(lim.of(req.Owner))
	if VerifyRequest(req) != nil {
		return deny(ReasonBadSignature), nil
	}
	return decide(&asOf{x: x, lim: lim, gc: gc}, req, TimeOf(ab.DecidedAt(e.Time))), nil
}

// Disclosure is one line of the accounting of disclosures (45 CFR 164.528):
// an allowed access to one of the owner's records. Emergency marks an
// access allowed by an emergency (break-glass) grant; BreakGlass is the
// break-glass entry the request named and Credential the requester's
// credential the decider relied on (for a role grant).
//
// Scope is the one scope the request named; Scopes are every scope of the
// grant the decider relied on, which is what the recipient was given (a
// grant's record is filtered by all its scopes, not by the one a request
// names), or the request's scope alone when the view does not hold the
// grant. Both come from the ledger as it is: the access entry carries the
// request, and the grant entry its scopes.
type Disclosure struct {
	Time       int64    `json:"time"`      // when the decider allowed it (Unix seconds)
	Recipient  ID       `json:"recipient"` // the requester
	Record     string   `json:"record"`
	Scope      string   `json:"scope"`
	Scopes     []string `json:"scopes"`
	Purpose    string   `json:"purpose"`
	Decider    ID       `json:"decider"`
	Grant      Hash     `json:"grant"`
	Entry      Hash     `json:"entry"` // the access entry
	Emergency  bool     `json:"emergency,omitempty"`
	BreakGlass Hash     `json:"break_glass,omitzero"`
	Credential Hash     `json:"credential,omitzero"`
}

// Disclosures lists the allowed accesses to owner's records logged in the
// view at or after since, oldest first. Access entries that fail
// CheckAccess with the zero AccessCheck are left out.
func Disclosures(v *View, owner ID, since time.Time) []Disclosure {
	return DisclosuresWith(v, owner, since, AccessCheck{})
}

// DisclosuresWith is Disclosures leaving out the access entries that fail
// CheckAccess with c.
func DisclosuresWith(v *View, owner ID, since time.Time, c AccessCheck) []Disclosure {
	out := []Disclosure{}
	for _, a := range v.Authors() {
		f := v.feeds[a]
		for i, e := range v.entriesOf(a) {
			if e.Kind != KindAccess || e.Time < since.Unix() {
				continue
			}
			ab, r, err := CheckAccessIn(v, e, c)
			if err != nil || !ab.Allow || r.Owner != owner || r.Requester == owner || ab.Reason == ReasonRepair {
				continue // the owner's own reads and repairs are accesses, not disclosures
			}
			out = append(out, Disclosure{
				Time: e.Time, Recipient: r.Requester, Record: r.Record, Scope: r.Scope, Scopes: grantScopes(v, ab.Grant, r.Scope),
				Purpose: r.Purpose, Decider: v.Decider(e.Author), Grant: ab.Grant, Entry: v.feedTables(f).hashes[i],
				Emergency: ab.Reason == ReasonEmergency, BreakGlass: r.BreakGlass, Credential: ab.Credential,
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return string(out[i].Entry[:]) < string(out[j].Entry[:])
	})
	return out
}

// grantScopes returns the scopes of grant id, or the request's scope
// when v does not hold that grant.
func grantScopes(v *View, id Hash, requested string) []string {
	if g, ok := v.Grant(id); ok && len(g.Scopes) > 0 {
		return append([]string(nil), g.Scopes...)
	}
	return []string{requested}
}

// What says what was disclosed, for a person: the record and the
// scopes, "record ID, scope S" or "record ID, scopes S1 S2".
func (d Disclosure) What() string {
	scopes := d.Scopes
	if len(scopes) == 0 {
		scopes = []string{d.Scope}
	}
	if len(scopes) == 1 {
		return "record " + d.Record + ", scope " + scopes[0]
	}
	return "record " + d.Record + ", scopes " + strings.Join(scopes, " ")
}

// EmergencyAccess sums up one break-glass entry naming an owner, for the
// owner's review: who broke the glass, when, on which emergency grant,
// until when the time box runs, what the peers allowed and denied under
// it, and the owner's review if any.
type EmergencyAccess struct {
	BreakGlass Hash  `json:"break_glass"` // the break-glass entry
	Requester  ID    `json:"requester"`   // its author
	Grant      Hash  `json:"grant"`       // the emergency grant it invokes
	Time       int64 `json:"time"`        // the break-glass entry's time (Unix seconds)
	// Until is the end of the time box: the requester's first break-glass
	// time for the grant plus the grant's time box; 0 if the view holds no
	// emergency grant of the owner's with that ID.
	Until       int64  `json:"until"`
	Accesses    int    `json:"accesses"`     // allowed access entries whose request names it
	Denied      int    `json:"denied"`       // denials of requests naming it (a summary counts its repeats)
	FirstAccess int64  `json:"first_access"` // time of the first allowed one; 0 if none
	Review      string `json:"review"`       // "", ReviewOK or ReviewDispute: the owner's latest review
	ReviewEntry Hash   `json:"review_entry,omitzero"`
}

// EmergencyAccesses lists the break-glass entries in v that name owner,
// oldest first, each with the access entries whose request names it and
// the owner's review. It is pure: the wallet decides which are unreviewed.
func EmergencyAccesses(v *View, owner ID) []EmergencyAccess {
	out := []EmergencyAccess{}
	index := map[Hash]int{}
	for _, b := range v.BreakGlasses() {
		if b.Owner != owner {
			continue
		}
		ea := EmergencyAccess{BreakGlass: b.ID, Requester: b.Author, Grant: b.Grant, Time: b.Time}
		if g, ok := v.Grant(b.Grant); ok && g.Author == owner && g.IsEmergency() {
			if first, ok := v.FirstBreakGlass(b.Author, b.Grant); ok {
				ea.Until = first.Time + g.TimeBox
			}
		}
		if r, ok := v.Review(b.ID); ok {
			ea.Review, ea.ReviewEntry = r.Outcome, r.ID
		}
		index[b.ID] = len(out)
		out = append(out, ea)
	}
	if len(out) == 0 {
		return out
	}
	for _, a := range v.Authors() {
		for _, e := range v.entriesOf(a) {
			if e.Kind != KindAccess {
				continue
			}
			ab, r, err := CheckAccess(e, AccessCheck{})
			if err != nil || r.BreakGlass.IsZero() {
				continue // a suspicious entry is not an access
			}
			i, ok := index[r.BreakGlass]
			if !ok {
				continue
			}
			ea := &out[i]
			if !ab.Allow {
				ea.Denied += ab.Decisions()
				continue
			}
			ea.Accesses++
			if ea.FirstAccess == 0 || e.Time < ea.FirstAccess {
				ea.FirstAccess = e.Time
			}
		}
	}
	return out
}
