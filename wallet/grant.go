package wallet

// Consent given: grants and revocations the patient signs (Grant, Grants,
// GrantShow, GrantFHIR, Revoke).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
)

// GrantOptions describe a new grant.
type GrantOptions struct {
	// To is a contact name or an ID. For an ID that is not a contact, the
	// grantee's age recipient is taken from its identity entry in the
	// ledger.
	To string
	// Records are record IDs or unique prefixes; All grants every record
	// (the keys of the records present now are wrapped).
	Records []string
	All     bool
	// Scopes are SMART scopes (v2, or v1 which is normalised).
	Scopes []string
	// Purpose is an HL7 v3 PurposeOfUse code such as TREAT or HPAYMT.
	Purpose string
	// AllowSensitive names the sensitive categories (substance-use,
	// psychotherapy, hiv, genetic, reproductive, restricted) the grant may
	// carry; resources labelled with any other are kept out. The names stay
	// in this wallet: they never reach the ledger.
	AllowSensitive []string
	// Expires is "" (never), a duration in hours, days or weeks ("12h",
	// "30d", "2w"), a date ("2026-12-31": valid through that day, UTC) or
	// an RFC 3339 time.
	Expires string
	// Role and Issuer, instead of To, make a role grant: to anyone holding
	// a credential for Role from Issuer (a contact name or an ID). Record
	// keys are wrapped to the issuer's role key.
	Role, Issuer string
	// TimeBox, for a role grant for emergency treatment (ETREAT), makes it
	// an emergency (break-glass) grant: each clinician's access ends
	// TimeBox after its first break-glass entry.
	TimeBox time.Duration
	// WholeRecord releases C-CDA, PDF, DICOM and other documents the
	// wallet cannot filter whole even when no scope names their document
	// type (minimum.go).
	WholeRecord bool
}

// Grant statuses.
const (
	GrantActive      = "active"
	GrantRevoked     = "revoked"
	GrantExpired     = "expired"
	GrantNotYetValid = "not-yet-valid"
)

// GrantInfo describes a grant in the local ledger.
type GrantInfo struct {
	ID          consent.Hash
	Author      consent.ID
	AuthorName  string
	Grantee     consent.ID
	GranteeName string
	Records     []string // empty when All
	All         bool
	Scopes      []string
	Purpose     consent.Purpose
	Created     time.Time
	NotBefore   time.Time
	Expires     time.Time // zero: no expiry
	Status      string
	// VoidReason says why a void grant (Status GrantVoid) counts for no
	// peer: VoidDeviceRevoked or VoidEquivocating.
	VoidReason  string
	WrappedKeys int
	// Role grants: the role and its credential issuer; TimeBox > 0 marks
	// an emergency (break-glass) grant.
	Role       string
	Issuer     consent.ID
	IssuerName string
	TimeBox    time.Duration
	// Given is true for grants the wallet made, false for grants made to it.
	Given bool
	// Derived and Excluded report, for a grant just made, the
	// minimum-necessary copies made for it and the records left out.
	Derived  []DerivedRecord
	Excluded []ExcludedRecord
	// Whole lists, for a grant just made, the records it releases whole
	// although the wallet cannot filter them.
	Whole []WholeRecord
}

// MinGrantPrefix is the shortest grant ID prefix accepted on the command line.
const MinGrantPrefix = 8

// Grant signs a grant into the wallet's feed: it resolves the grantee,
// validates scopes and purpose, anchors the granted records, and wraps
// each record key with age to the grantee. With a network, it also stores
// a copy of each record's manifest encrypted to the grantee on peers and
// returns once a peer holds the grant.
func (w *Wallet) Grant(ctx context.Context, opts GrantOptions) (GrantInfo, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if err := w.catchUp(ctx); err != nil {
		return GrantInfo{}, err
	}
	gi, recipient, infos, err := w.grantLocal(ctx, opts)
	if err != nil || !w.HasNetwork() {
		return gi, err
	}
	if err := w.publishGrant(ctx, gi.Grantee, recipient, infos); err != nil {
		return gi, fmt.Errorf("grant %s is signed but not yet on the network: %w", gi.ID.String()[:12], err)
	}
	return gi, nil
}

func (w *Wallet) grantLocal(ctx context.Context, opts GrantOptions) (_ GrantInfo, recipient *age.X25519Recipient, infos []RecordInfo, err error) {
	now := w.Now()
	scopes, err := consent.NormalizeScopes(opts.Scopes)
	if err != nil {
		return GrantInfo{}, nil, nil, &InputError{Field: FieldScope, Problem: Malformed, Err: err}
	}
	if len(scopes) == 0 {
		return GrantInfo{}, nil, nil, &InputError{Field: FieldScope, Problem: Missing, Reason: "no scope given"}
	}
	if _, err := consent.LookupPurpose(opts.Purpose); err != nil {
		return GrantInfo{}, nil, nil, &InputError{Field: FieldPurpose, Problem: Malformed, Value: opts.Purpose, Err: err}
	}
	expires, err := ParseExpiry(opts.Expires, now)
	if err != nil {
		return GrantInfo{}, nil, nil, err
	}
	if opts.All == (len(opts.Records) > 0) {
		return GrantInfo{}, nil, nil, &InputError{Field: FieldRecords, Problem: Missing, Reason: "name the records to grant, or all of them"}
	}
	grantee, recipient, issuer, who, err := w.resolveGrantTarget(opts)
	if err != nil {
		return GrantInfo{}, nil, nil, err
	}
	if opts.All {
		if infos, err = w.ListRecords(ctx); err != nil {
			return GrantInfo{}, nil, nil, err
		}
	} else {
		seen := map[string]bool{}
		for _, ref := range opts.Records {
			info, err := w.Record(ctx, ref)
			if err != nil {
				return GrantInfo{}, nil, nil, err
			}
			if !seen[info.ID] {
				seen[info.ID] = true
				infos = append(infos, info)
			}
		}
	}
	// Minimum necessary: grant only what the scopes and the named
	// sensitive categories allow, deriving filtered copies where needed.
	mn, err := w.minimumNecessary(ctx, infos, scopes, opts.AllowSensitive, who, opts.WholeRecord, !opts.All)
	if err != nil {
		return GrantInfo{}, nil, nil, err
	}
	infos = mn.out
	if opts.All && !mn.whole {
		// Some records had to be filtered or left out, so "all records"
		// (which would also cover records added later, unfiltered) becomes
		// the explicit list.
		opts.All = false
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
	g := consent.Grant{Grantee: grantee, All: opts.All, Scopes: scopes, Purpose: opts.Purpose, NotBefore: now.Unix(),
		Issuer: issuer, Role: opts.Role, TimeBox: int64(opts.TimeBox / time.Second)}
	if !expires.IsZero() {
		g.Expires = expires.Unix()
	}
	for _, info := range infos {
		if !opts.All {
			g.Records = append(g.Records, info.ID)
		}
		key, err := w.RecordKey(ctx, info.ID)
		if err != nil {
			return GrantInfo{}, nil, nil, err
		}
		wrapped, err := wrapKey(key, recipient)
		if err != nil {
			return GrantInfo{}, nil, nil, fmt.Errorf("wrapping the key of record %s: %w", info.ID, err)
		}
		g.Keys = append(g.Keys, consent.WrappedKey{Record: info.ID, Key: wrapped})
	}
	if err := g.Validate(); err != nil {
		return GrantInfo{}, nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}

	l, s, err := w.openLedger(true)
	if err != nil {
		return GrantInfo{}, nil, nil, err
	}
	defer l.Close()
	for _, info := range infos {
		if _, err := w.anchor(l.Ledger, s, info); err != nil {
			return GrantInfo{}, nil, nil, err
		}
	}
	e, err := l.Append(s, now, consent.KindGrant, &g)
	if err != nil {
		return GrantInfo{}, nil, nil, fmt.Errorf("writing the grant: %w", err)
	}
	var out GrantInfo
	l.View(func(v *consent.View) {
		gi, _ := v.Grant(e.Hash())
		out = w.grantInfo(v, gi, now)
	})
	out.Derived, out.Excluded, out.Whole = mn.derived, mn.excluded, mn.released
	return out, recipient, infos, nil
}

// wrapKey encrypts the record key (its AGE-SECRET-KEY string) to recipient.
func wrapKey(key *age.X25519Identity, recipient *age.X25519Recipient) ([]byte, error) {
	var buf bytes.Buffer
	wc, err := age.Encrypt(&buf, recipient)
	if err != nil {
		return nil, err
	}
	if _, err := wc.Write([]byte(key.String())); err != nil {
		return nil, err
	}
	if err := wc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// resolveGrantTarget finds whom a grant reaches: a grantee, or a role
// under an issuer (then the grantee is the role ID). who names it for
// labels.
func (w *Wallet) resolveGrantTarget(opts GrantOptions) (grantee consent.ID, recipient *age.X25519Recipient, issuer consent.ID, who string, err error) {
	if opts.Role == "" {
		if opts.Issuer != "" || opts.TimeBox != 0 {
			return "", nil, "", "", &InputError{Field: FieldIssuer, Problem: Conflict, With: FieldRole, Reason: "an issuer or a time box without a role"}
		}
		grantee, recipient, err = w.resolveGrantee(opts.To)
		return grantee, recipient, "", opts.To, err
	}
	if opts.To != "" {
		return "", nil, "", "", &InputError{Field: FieldGrantee, Problem: Conflict, With: FieldRole, Reason: "a grant names a grantee or a role, not both"}
	}
	if err := consent.ValidateCredentialRole(opts.Role); err != nil {
		return "", nil, "", "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if strings.TrimSpace(opts.Issuer) == "" {
		return "", nil, "", "", &InputError{Field: FieldIssuer, Problem: Missing, Reason: "a role grant needs the credential issuer"}
	}
	if issuer, err = w.resolveID(opts.Issuer); err != nil {
		return "", nil, "", "", err
	}
	if opts.TimeBox < 0 || opts.TimeBox > consent.MaxTimeBox*time.Second || opts.TimeBox > 0 && opts.TimeBox < time.Minute {
		return "", nil, "", "", &InputError{Field: FieldTimeBox, Problem: Rejected, Value: opts.TimeBox.String(),
			Reason: fmt.Sprintf("time box %s is out of range", opts.TimeBox)}
	}
	if opts.TimeBox > 0 && !consent.PurposeCovers(consent.PurposeEmergency, opts.Purpose) {
		return "", nil, "", "", fmt.Errorf("an emergency grant is for purpose %s: %w", consent.PurposeEmergency, ErrInvalid)
	}
	grantee, recipient, err = w.roleRecipient(issuer, opts.Role)
	return grantee, recipient, issuer, opts.Role + " credentialed by " + opts.Issuer, err
}

// resolveGrantee finds the grantee's ID and age recipient: from the
// contacts, else from the grantee's identity entry in the ledger.
func (w *Wallet) resolveGrantee(to string) (consent.ID, *age.X25519Recipient, error) {
	if strings.TrimSpace(to) == "" {
		return "", nil, &InputError{Field: FieldGrantee, Problem: Missing, Reason: "no grantee"}
	}
	var id consent.ID
	var recipient string
	c, err := w.Resolve(to)
	switch {
	case err == nil:
		id, recipient = c.Card.ID, c.Card.AgeRecipient
	case errors.Is(err, ErrNotFound):
		pid, perr := consent.ParseID(to)
		if perr != nil {
			return "", nil, err
		}
		id = pid
		if id == w.ID() {
			return "", nil, fmt.Errorf("a grant to yourself: %w", ErrInvalid)
		}
		l, _, lerr := w.openLedger(false)
		if lerr != nil {
			return "", nil, lerr
		}
		l.View(func(v *consent.View) { recipient = v.AgeRecipient(pid) }) // the newest age-key entry's, else the identity entry's
		l.Close()
		if recipient == "" {
			return "", nil, &NotFoundError{Kind: KindIdentity, Ref: pid.Short()}
		}
	default:
		return "", nil, err
	}
	if id == w.ID() {
		return "", nil, fmt.Errorf("a grant to yourself: %w", ErrInvalid)
	}
	// A grantee that rotated its age key since its card (agekey.go).
	if l, _, err := w.openLedger(false); err == nil {
		l.View(func(v *consent.View) { recipient = recipientOf(v, id, recipient) })
		l.Close()
	}
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		return "", nil, fmt.Errorf("the grantee's age recipient is not an X25519 recipient: %w", ErrInvalid)
	}
	return id, r, nil
}

var durationRE = regexp.MustCompile(`^([0-9]{1,5})([hdw])$`)

// ParseExpiry turns the --expires value into a time (zero for ""): a
// duration from now in hours, days or weeks ("12h", "30d", "2w"), a date
// ("2026-12-31", valid through the end of that day, UTC) or an RFC 3339
// time. It must lie in the future.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if m := durationRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		t = now.Add(time.Duration(n) * unit)
	} else if d, err := time.Parse("2006-01-02", s); err == nil {
		t = d.AddDate(0, 0, 1)
	} else if d, err := time.Parse(time.RFC3339, s); err == nil {
		t = d
	} else {
		return time.Time{}, &InputError{Field: FieldExpiry, Problem: Malformed, Value: s,
			Reason: fmt.Sprintf("expiry %q is not a duration, a date or a time", s)}
	}
	if !t.After(now) {
		return time.Time{}, &InputError{Field: FieldExpiry, Problem: Rejected, Value: s, Reason: fmt.Sprintf("expiry %q is in the past", s)}
	}
	return t.UTC().Truncate(time.Second), nil
}

// grantInfo describes one grant, reading the contact book for its names;
// listings read the book once and call grantInfoWith.
func (w *Wallet) grantInfo(v *consent.View, g *consent.GrantInfo, now time.Time) GrantInfo {
	return w.grantInfoWith(v, g, now, w.contactBook())
}

func (w *Wallet) grantInfoWith(v *consent.View, g *consent.GrantInfo, now time.Time, book *contactBook) GrantInfo {
	p, _ := consent.LookupPurpose(g.Purpose)
	gi := GrantInfo{
		ID: g.ID, Author: g.Author, AuthorName: book.nameOf(g.Author), Grantee: g.Grantee, GranteeName: book.nameOf(g.Grantee),
		Records: g.Records, All: g.All, Scopes: g.Scopes, Purpose: p,
		Created: consent.TimeOf(g.Time), NotBefore: consent.TimeOf(g.NotBefore),
		WrappedKeys: len(g.Keys), Given: g.Author == w.ID(),
		Role: g.Role, Issuer: g.Issuer, IssuerName: book.nameOf(g.Issuer), TimeBox: time.Duration(g.TimeBox) * time.Second,
	}
	if g.Expires != 0 {
		gi.Expires = consent.TimeOf(g.Expires)
	}
	gi.Status, gi.VoidReason = grantStatus(v, g, now) // grant_status.go
	return gi
}

// status is the state of a grant or credential at now: revoked, expired
// (expires is 0 for never), not yet valid, or active.
func status(revoked bool, notBefore, expires int64, now time.Time) string {
	t := now.Unix()
	switch {
	case revoked:
		return GrantRevoked
	case expires != 0 && t >= expires:
		return GrantExpired
	case t < notBefore:
		return GrantNotYetValid
	}
	return GrantActive
}

// Grants lists the grants the wallet made and the grants made to it that
// the local ledger holds, oldest first.
func (w *Wallet) Grants(ctx context.Context) ([]GrantInfo, error) {
	p, err := w.ListGrants(ctx, GrantsOptions{})
	return p.Grants, err
}

// GrantsOptions select what ListGrants lists.
type GrantsOptions struct {
	// Limit, above 0, lists only the newest Limit grants; 0 lists all.
	Limit int
}

// GrantsPage is what ListGrants found.
type GrantsPage struct {
	// Grants are the grants listed, oldest first (by time, then ID).
	Grants []GrantInfo
	// Older counts the grants left out by the limit, all older than
	// those listed.
	Older int
}

// ListGrants lists the grants the wallet made and the grants made to it
// that the local ledger holds, newest first up to opts.Limit, and returns
// them oldest first. The contact book is read once. Its cost follows the
// page and the grants made to the wallet, not the wallet's own history:
// the grants it made are read newest first, as far as the page goes
// (View.GrantsBy), and counted (View.GrantCountBy).
func (w *Wallet) ListGrants(ctx context.Context, opts GrantsOptions) (GrantsPage, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return GrantsPage{}, err
	}
	defer l.Close()
	now := w.Now()
	book := w.contactBook()
	page := GrantsPage{Grants: []GrantInfo{}}
	l.View(func(v *consent.View) {
		me := w.ID()
		// The grants made to the wallet (to it, or to a role it holds a
		// credential for), but those it made itself: listed with those.
		received := w.grantsReaching(v)
		made, stop := iter.Pull(v.GrantsBy(me))
		defer stop()
		total := v.GrantCountBy(me) + len(received)
		next, ok := made()
		for (ok || len(received) > 0) && (opts.Limit <= 0 || len(page.Grants) < opts.Limit) {
			var g *consent.GrantInfo
			if ok && (len(received) == 0 || newerGrant(next, received[0])) {
				g = next
				next, ok = made()
			} else {
				g, received = received[0], received[1:]
			}
			page.Grants = append(page.Grants, w.grantInfoWith(v, g, now, book))
		}
		page.Older = total - len(page.Grants)
	})
	slices.Reverse(page.Grants)
	return page, nil
}

// grantsReaching returns the grants that reach the wallet and that it did
// not make, newest first.
func (w *Wallet) grantsReaching(v *consent.View) []*consent.GrantInfo {
	me := w.ID()
	var out []*consent.GrantInfo
	seen := map[consent.Hash]bool{}
	add := func(to consent.ID, keep func(*consent.GrantInfo) bool) {
		for g := range v.GrantsTo(to) {
			if g.Author != me && !seen[g.ID] && keep(g) {
				seen[g.ID] = true
				out = append(out, g)
			}
		}
	}
	add(me, func(*consent.GrantInfo) bool { return true })
	for _, c := range v.CredentialsOf(me) {
		add(c.RoleID, func(g *consent.GrantInfo) bool { return c.Reaches(&g.Grant) })
	}
	slices.SortFunc(out, func(a, b *consent.GrantInfo) int {
		if newerGrant(a, b) {
			return -1
		}
		return 1
	})
	return out
}

// newerGrant reports whether a comes after b in the order grants are
// listed in (by time, then ID).
func newerGrant(a, b *consent.GrantInfo) bool {
	if a.Time != b.Time {
		return a.Time > b.Time
	}
	return bytes.Compare(a.ID[:], b.ID[:]) > 0
}

// findGrant resolves a grant ID or unique prefix (at least MinGrantPrefix
// hex digits) among the grants in v.
func findGrant(v *consent.View, ref string) (*consent.GrantInfo, error) {
	return findByPrefix(v.Grants(), func(g *consent.GrantInfo) consent.Hash { return g.ID }, ref, KindGrant)
}

// findByPrefix resolves an entry ID or unique prefix (at least
// MinGrantPrefix hex digits) among items of the given kind.
func findByPrefix[T any](items []T, id func(T) consent.Hash, ref string, kind Kind) (T, error) {
	var zero T
	ref = strings.ToLower(strings.TrimSpace(ref))
	if len(ref) < MinGrantPrefix || len(ref) > 64 || strings.Trim(ref, "0123456789abcdef") != "" {
		return zero, &InputError{Field: refField[kind], Problem: Malformed, Value: ref,
			Reason: fmt.Sprintf("%s %q: want %d to 64 hex digits of its ID", kind, ref, MinGrantPrefix)}
	}
	var match []T
	for _, it := range items {
		if strings.HasPrefix(id(it).String(), ref) {
			match = append(match, it)
		}
	}
	switch len(match) {
	case 0:
		return zero, &NotFoundError{Kind: kind, Ref: ref}
	case 1:
		return match[0], nil
	}
	return zero, &AmbiguousError{Kind: kind, Ref: ref, Matches: len(match)}
}

// GrantShow describes one grant (ID or unique prefix).
func (w *Wallet) GrantShow(ctx context.Context, ref string) (GrantInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return GrantInfo{}, err
	}
	defer l.Close()
	var out GrantInfo
	l.View(func(v *consent.View) {
		var g *consent.GrantInfo
		if g, err = findGrant(v, ref); err == nil {
			out = w.grantInfo(v, g, w.Now())
		}
	})
	return out, err
}

// GrantFHIR renders one grant as a FHIR R4 Consent resource.
func (w *Wallet) GrantFHIR(ctx context.Context, ref string) ([]byte, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []byte
	l.View(func(v *consent.View) {
		var g *consent.GrantInfo
		if g, err = findGrant(v, ref); err == nil {
			// A void grant (grant_status.go) is in force nowhere: inactive.
			out, err = consent.GrantFHIR(g, v.Revoked(g.ID) || voidReason(v, g) != "", w.Now(), w.NameOf(g.Grantee))
		}
	})
	return out, err
}

// Revoke signs the revocation of one of the wallet's grants. Peers stop
// serving at once; what the grantee already imported cannot be recalled.
// With a network, it returns once a peer holds the revocation.
func (w *Wallet) Revoke(ctx context.Context, ref string) (GrantInfo, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if !w.HasNetwork() {
		return w.revokeLocal(ref)
	}
	var gi GrantInfo
	signed, err := w.signAndPublish(ctx, func() (err error) {
		gi, err = w.revokeLocal(ref)
		return err
	})
	if signed && err != nil {
		return gi, fmt.Errorf("the revocation is signed but not yet on the network: %w", err)
	}
	return gi, err
}

func (w *Wallet) revokeLocal(ref string) (GrantInfo, error) {
	l, s, err := w.openLedger(true)
	if err != nil {
		return GrantInfo{}, err
	}
	defer l.Close()
	var g *consent.GrantInfo
	var revoked bool
	l.View(func(v *consent.View) {
		if g, err = findGrant(v, ref); err == nil {
			revoked = v.Revoked(g.ID)
		}
	})
	if err != nil {
		return GrantInfo{}, err
	}
	if g.Author != w.ID() {
		who := w.NameOf(g.Author)
		if who == "" {
			who = g.Author.Short()
		}
		return GrantInfo{}, fmt.Errorf("grant %s was made by %s; only its author can revoke it: %w", g.ID.String()[:12], who, ErrDenied)
	}
	if revoked {
		return GrantInfo{}, fmt.Errorf("grant %s is already revoked: %w", g.ID.String()[:12], ErrExists)
	}
	if _, err := l.Append(s, w.Now(), consent.KindRevoke, &consent.RevokeBody{Grant: g.ID}); err != nil {
		return GrantInfo{}, fmt.Errorf("writing the revocation: %w", err)
	}
	var out GrantInfo
	l.View(func(v *consent.View) { out = w.grantInfo(v, g, w.Now()) })
	return out, nil
}
