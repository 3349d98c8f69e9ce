package wallet

// Audit: verifying the ledger (AuditLedger, AuditExport), the accounting
// of disclosures (Disclosures, DisclosuresFHIR) and asking what the policy
// would decide (NewRequest, DecideAccess).

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/boltstore"
)

// AuditLedger audits the local ledger from its raw entries, the way an
// outsider would (see consent.AuditLedger). A ledger that cannot even be
// decoded is reported as an ErrVerify error.
func (w *Wallet) AuditLedger(ctx context.Context) (*consent.AuditReport, error) {
	return w.auditLocal(nil)
}

// AuditLedgerEmergencies is AuditLedger and EmergencyAccesses from one
// pass over the local ledger (what 'audit verify' reports): every entry
// is read and verified once. A ledger that does not verify is reported,
// not refused: the emergency accesses are those of its entries that do.
// The keyring is opened only if there are emergency accesses, to read
// their reasons.
func (w *Wallet) AuditLedgerEmergencies(ctx context.Context) (*consent.AuditReport, []EmergencyAccess, error) {
	out := []EmergencyAccess{}
	rep, err := w.auditLocal(func(v *consent.View) error {
		eas := consent.EmergencyAccesses(v, w.ID())
		if len(eas) == 0 {
			return nil
		}
		id, err := w.Identity()
		if err != nil {
			return err
		}
		out = w.emergencyAccessesIn(v, eas, id)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return rep, out, nil
}

// auditLocal audits the local ledger straight from its store, a chunk at
// a time, and calls fn (if not nil) with the view of the audited entries
// while the store, which that view reads, is open.
func (w *Wallet) auditLocal(fn func(v *consent.View) error) (*consent.AuditReport, error) {
	if _, err := os.Stat(w.ledgerPath()); errors.Is(err, os.ErrNotExist) {
		rep := consent.AuditLedger(nil)
		if fn != nil {
			if err := fn(consent.NewView()); err != nil {
				return nil, err
			}
		}
		return rep, nil
	}
	s, err := boltstore.Open(w.ledgerPath())
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep, v, err := consent.AuditStore(s, w.accessCheck())
	if err != nil {
		return nil, fmt.Errorf("reading the local ledger: %w: %w", ErrVerify, err)
	}
	// The checkpoints against the feeds the audit accepted: a store holds
	// one entry per author and seq, so they are the entries held.
	certs, notes, err := w.witnessedCheckpoints()
	if err != nil {
		return nil, err
	}
	if len(certs) > 0 || len(notes) > 0 {
		rep.AddCheckpoints(consent.AuditCheckpointsIn(v, certs, notes))
	}
	if fn != nil {
		if err := fn(v); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// AuditExport audits an exported ledger file. It needs no wallet: an
// auditor runs it on any machine, so only the checks the ledger alone
// allows set access entries apart as suspicious.
func AuditExport(r io.Reader) (*consent.AuditReport, error) {
	x, err := consent.ReadExportFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return consent.AuditExportFile(x), nil
}

// AuditFailure turns a failed report into an ErrVerify error that names
// the counts and the first finding; nil when the report is clean.
func AuditFailure(rep *consent.AuditReport) error {
	if rep.OK() {
		return nil
	}
	counts := map[string]int{}
	var first *consent.Finding
	for i, f := range rep.Findings {
		if f.Kind == consent.FindingMismatch || f.Kind == consent.FindingSuspicious {
			continue
		}
		counts[f.Kind]++
		if first == nil {
			first = &rep.Findings[i]
		}
	}
	e := &AuditError{Detail: first.Detail}
	for _, k := range []string{consent.FindingViolation, consent.FindingInvalid, consent.FindingChain, consent.FindingEquivocation,
		consent.FindingFork, consent.FindingWithheld, consent.FindingCheckpoint} {
		if n := counts[k]; n > 0 {
			e.Counts = append(e.Counts, fmt.Sprintf("%d %s", n, k))
		}
	}
	if first.Author != "" {
		e.Where = first.Author.Short()
		if first.Seq != 0 {
			e.Where += fmt.Sprintf("#%d", first.Seq)
		}
	}
	return e
}

// Disclosure is one line of the accounting of disclosures (45 CFR 164.528):
// when, to whom, what, and why.
type Disclosure struct {
	consent.Disclosure
	RecipientName  string
	DeciderName    string
	PurposeDisplay string
	// Description says what was disclosed: record ID and every scope of
	// the grant, never record contents.
	Description string
	// Decisions counts the peers' allow decisions this disclosure is made
	// of: one import fetches k shares from k peers, each logging its own
	// decision, and that is one disclosure. Entries lists them all.
	Decisions int
	Entries   []consent.Hash
}

// disclosureWindow groups allow decisions for one recipient, record,
// scope, purpose and grant that fall this close together into one
// disclosure.
const disclosureWindow = 10 * time.Minute

// Disclosures lists the allowed accesses to the wallet's records logged in
// the local ledger at or after since (zero: all), oldest first, leaving out
// suspicious access entries (see accessCheck).
func (w *Wallet) Disclosures(ctx context.Context, since time.Time) ([]Disclosure, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var ds []consent.Disclosure
	var links []Disclosure
	l.View(func(v *consent.View) {
		ds = consent.DisclosuresWith(v, w.ID(), since, w.accessCheck())
		links = w.linkDisclosures(v, since) // share_log.go
	})
	out := make([]Disclosure, 0, len(ds))
	open := map[string]int{} // group key -> index in out
	for _, d := range ds {
		key := fmt.Sprint(d.Recipient, "\x00", d.Record, "\x00", d.Scope, "\x00", d.Purpose, "\x00", d.Grant)
		if i, ok := open[key]; ok && d.Time-out[i].Time <= int64(disclosureWindow/time.Second) {
			out[i].Decisions++
			out[i].Entries = append(out[i].Entries, d.Entry)
			continue
		}
		p, _ := consent.LookupPurpose(d.Purpose)
		open[key] = len(out)
		out = append(out, Disclosure{
			Disclosure: d, RecipientName: w.NameOf(d.Recipient), DeciderName: w.NameOf(d.Decider),
			PurposeDisplay: p.Display, Decisions: 1, Entries: []consent.Hash{d.Entry},
		})
	}
	for i := range out {
		out[i].Description = out[i].What()
		if out[i].Decisions > 1 {
			out[i].Description += fmt.Sprintf(" (%d shares, each released by a peer's logged decision)", out[i].Decisions)
		}
	}
	if len(links) > 0 {
		out = append(out, links...)
		slices.SortStableFunc(out, func(a, b Disclosure) int { return cmp.Compare(a.Time, b.Time) })
	}
	return out, nil
}

// DisclosuresFHIR renders disclosures as a FHIR R4 Bundle of AuditEvents.
func (w *Wallet) DisclosuresFHIR(ds []Disclosure) ([]byte, error) {
	raw := make([]consent.Disclosure, len(ds))
	for i, d := range ds {
		raw[i] = d.Disclosure
	}
	return consent.DisclosuresFHIR(raw, w.NameOf, w.Now())
}

// ParseSince parses the --since value: a date (2026-01-31, from the start
// of that day, UTC) or an RFC 3339 time.
func ParseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, &InputError{Field: FieldSince, Problem: Malformed, Value: s, Reason: fmt.Sprintf("date %q", s)}
}

// NewRequest signs a request, as this wallet, for a record of owner.
func (w *Wallet) NewRequest(owner consent.ID, record, scope, purpose string) (*consent.Request, error) {
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	s, err := consent.NewKeySigner(id.Signing)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	r, err := consent.SignRequest(s, consent.Request{Owner: owner, Record: record, Scope: scope, Purpose: purpose,
		Time: w.Now().Unix(), Nonce: nonce})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return r, nil
}

// DecideAccess runs the consent policy on the local ledger for req and logs
// the decision, allow or deny, as an access entry in the wallet's own feed
// before returning it: the wallet acting as the deciding peer (the
// patient's own always-on box). A deny is returned as an ErrDenied error
// along with the decision.
func (w *Wallet) DecideAccess(ctx context.Context, req *consent.Request) (consent.Decision, error) {
	l, s, err := w.openLedger(true)
	if err != nil {
		return consent.Decision{}, err
	}
	defer l.Close()
	now := w.Now()
	var d consent.Decision
	var head consent.Head
	var devs []consent.DeviceHead
	l.View(func(v *consent.View) {
		d = consent.Decide(v, req, now)
		head = v.Head(req.Owner)
		devs = consent.DeviceHeads(v, req.Owner)
	})
	if _, err := l.Append(s, now, consent.KindAccess, &consent.AccessBody{
		Request: req.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant, OwnerHead: head, DeviceHeads: devs,
	}); err != nil {
		return d, fmt.Errorf("logging the decision: %w", err)
	}
	if !d.Allow {
		return d, fmt.Errorf("access to record %s: %s: %w", req.Record, d.Reason, ErrDenied)
	}
	return d, nil
}
