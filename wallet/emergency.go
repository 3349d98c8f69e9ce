package wallet

// Emergency access: the patient's break-glass policy (EnableEmergency),
// the clinician's break-glass import, and the patient's view and review of
// emergency accesses (EmergencyAccesses, Review).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/ledgersync"
)

// Emergency access ("break-glass"). The patient records an emergency
// policy: a role grant for emergency treatment, to clinicians credentialed
// for a role (emergency-physician by default) by an issuer the patient
// trusts, limited to some records or resource types, with a time box. In
// an emergency, such a clinician declares it on the ledger (a break-glass
// entry with the reason, encrypted to the patient) and imports; each peer
// checks the policy, the credential and the time box, and logs its
// decision on the ledger before it releases a share. The patient sees it
// at once in 'medwallet log --watch' and reviews it afterwards.

// DefaultEmergencyRole is the role an emergency policy trusts by default.
const DefaultEmergencyRole = "emergency-physician"

// DefaultTimeBox is an emergency policy's default time box.
const DefaultTimeBox = 4 * time.Hour

// MaxReasonLen bounds a break-glass reason and a review note.
const MaxReasonLen = 1000

// EmergencyOptions describe an emergency policy.
type EmergencyOptions struct {
	// Issuer is the credential issuer trusted (contact name or ID).
	Issuer string
	// Role is the credential role trusted ("" means DefaultEmergencyRole).
	Role string
	// Records limits the policy to some records; none means all.
	Records []string
	// Categories limits it to FHIR resource types (AllergyIntolerance,
	// MedicationRequest, Condition...): FHIR records are reduced to those
	// resources (minimum necessary). None means every type.
	Categories []string
	// Max is the time box ("0" means DefaultTimeBox).
	Max time.Duration
	// Expires ends the policy (as for grants; "" never).
	Expires string
	// AllowSensitive names sensitive categories the policy may carry.
	AllowSensitive []string
}

// EnableEmergency records an emergency policy on the ledger: an
// emergency role grant. It returns the grant.
func (w *Wallet) EnableEmergency(ctx context.Context, o EmergencyOptions) (GrantInfo, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if o.Role == "" {
		o.Role = DefaultEmergencyRole
	}
	if o.Max == 0 {
		o.Max = DefaultTimeBox
	}
	if o.Max%time.Second != 0 {
		return GrantInfo{}, fmt.Errorf("time box %s is not a whole number of seconds: %w", o.Max, ErrInvalid)
	}
	scopes := []string{"patient/*.rs"}
	if len(o.Categories) > 0 {
		scopes = scopes[:0]
		for _, c := range o.Categories {
			for _, t := range strings.Split(c, ",") {
				if t = strings.TrimSpace(t); t != "" {
					scopes = append(scopes, "patient/"+t+".rs")
				}
			}
		}
	}
	return w.Grant(ctx, GrantOptions{
		Role: o.Role, Issuer: o.Issuer, Records: o.Records, All: len(o.Records) == 0,
		Scopes: scopes, Purpose: consent.PurposeEmergency, TimeBox: o.Max,
		Expires: o.Expires, AllowSensitive: o.AllowSensitive,
	})
}

// checkText trims s and checks it for free text on the ledger or in a
// credential: at most max bytes, no control characters (but newlines when
// multiline).
func checkText(what, s string, max int, multiline bool) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > max {
		return "", fmt.Errorf("%s is longer than %d bytes: %w", what, max, ErrInvalid)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && !(multiline && r == '\n') {
			return "", fmt.Errorf("%s contains a control character: %w", what, ErrInvalid)
		}
	}
	return s, nil
}

// importEmergency is Import --emergency: it finds the patient's emergency
// grant this wallet reaches through a credential, signs a break-glass
// entry with the reason (encrypted to the patient and to this wallet),
// pushes it to the peers, then imports the grant's records naming it.
func (w *Wallet) importEmergency(ctx context.Context, c *client.Client, o ImportOptions) ([]ImportedRecord, error) {
	reason, err := checkText("the reason", o.Reason, MaxReasonLen, true)
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, &InputError{Field: FieldReason, Problem: Missing, Reason: "an emergency access needs a reason"}
	}
	if strings.TrimSpace(o.Patient) == "" {
		return nil, &InputError{Field: FieldPatient, Problem: Missing, Reason: "no patient named"}
	}
	patient, err := w.resolveID(o.Patient)
	if err != nil {
		return nil, err
	}
	if patient == w.ID() {
		return nil, fmt.Errorf("an emergency access to your own records: %w", ErrInvalid)
	}
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	var (
		g         *consent.GrantInfo
		roleKey   *age.X25519Identity
		policies  int
		recipient string
		rotated   string
	)
	now := w.Now().Unix()
	l.View(func(v *consent.View) {
		for _, cand := range v.Grants() {
			if cand.Author != patient || !cand.IsEmergency() || v.Revoked(cand.ID) ||
				cand.NotBefore > now || cand.Expires != 0 && now >= cand.Expires {
				continue
			}
			policies++
			if k, _ := w.heldRoleKey(v, cand, id.Opener()); k != nil {
				g, roleKey = cand, k
				break
			}
		}
		if b, ok := v.Identity(patient); ok {
			recipient = b.AgeRecipient
		}
		rotated = recipientOf(v, patient, "") // agekey.go
	})
	l.Close()
	switch {
	case policies == 0:
		return nil, &NotFoundError{Kind: KindEmergencyPolicy, Owner: patient.Short()}
	case g == nil:
		return nil, &DeniedError{Reason: DenyNoCredential, Patient: patient.Short()}
	}
	if c, err := w.Resolve(string(patient)); err == nil {
		recipient = c.Card.AgeRecipient
	}
	if rotated != "" {
		recipient = rotated // the patient's current age key, newer than any card
	}
	pr, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		return nil, fmt.Errorf("patient %s has no usable age recipient on the ledger: %w", patient.Short(), ErrNotFound)
	}
	sealed, err := encryptTo([]byte(reason), pr, id.Age.Recipient())
	if err != nil {
		return nil, err
	}
	// Declare first: the break-glass entry is on the peers before any
	// request names it, and each peer logs its decision before releasing.
	bg, err := w.appendEntry(consent.KindBreakGlass, &consent.BreakGlassBody{Owner: patient, Grant: g.ID, Reason: sealed}, nil)
	if err != nil {
		return nil, err
	}
	// Peers refuse the break-glass entry of a requester the patient's
	// entries do not name (need to know: no credential for the role of her
	// emergency grant); the requests then go on, and the peers deny and
	// log them.
	if err := w.Publish(ctx, c); err != nil && !errors.Is(err, ledgersync.ErrNotAuthorised) {
		return nil, fmt.Errorf("the break-glass entry is signed but not on the network: %w", err)
	}
	return w.importInto(ctx, c, []importGrant{{g: g, op: opener{recipient: g.Grantee, key: roleKey, breakGlass: bg.Hash()}}}, o)
}

// EmergencyAccess is one emergency access to this wallet's records (a
// break-glass entry and the decisions that named it), with its reason.
type EmergencyAccess struct {
	consent.EmergencyAccess
	RequesterName string
	Reason        string // decrypted; "" if it does not open
	Note          string // the review note, decrypted
}

// EmergencyAccesses lists the emergency accesses to this wallet's
// records in the local ledger, oldest first.
func (w *Wallet) EmergencyAccesses(ctx context.Context) ([]EmergencyAccess, error) {
	id, err := w.Identity()
	if err != nil {
		return nil, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []EmergencyAccess
	l.View(func(v *consent.View) { out = w.emergencyAccessesIn(v, consent.EmergencyAccesses(v, w.ID()), id) })
	return out, nil
}

// emergencyAccessesIn completes eas, the emergency accesses to this
// wallet's records in v, decrypting reasons and notes with id.
func (w *Wallet) emergencyAccessesIn(v *consent.View, eas []consent.EmergencyAccess, id *Identity) []EmergencyAccess {
	out := []EmergencyAccess{}
	for _, ea := range eas {
		x := EmergencyAccess{EmergencyAccess: ea, RequesterName: w.NameOf(ea.Requester)}
		if b, ok := v.BreakGlass(ea.BreakGlass); ok {
			if p, err := decryptWith(b.Reason, id.Opener(), consent.MaxReasonSize); err == nil {
				x.Reason = string(p)
			}
		}
		if r, ok := v.Review(ea.BreakGlass); ok && len(r.Note) > 0 {
			if p, err := decryptWith(r.Note, id.Opener(), consent.MaxReasonSize); err == nil {
				x.Note = string(p)
			}
		}
		out = append(out, x)
	}
	return out
}

// Unreviewed returns the emergency accesses the patient has not reviewed.
func Unreviewed(eas []EmergencyAccess) []EmergencyAccess {
	out := []EmergencyAccess{}
	for _, ea := range eas {
		if ea.Review == "" {
			out = append(out, ea)
		}
	}
	return out
}

// Review records the patient's review of an emergency access (the
// break-glass entry ID or a unique prefix): ok, or disputed, with an
// optional note encrypted to the patient.
func (w *Wallet) Review(ctx context.Context, ref, outcome, note string) (EmergencyAccess, error) {
	defer w.holdLedger()() // its steps share one open ledger
	if outcome != consent.ReviewOK && outcome != consent.ReviewDispute {
		return EmergencyAccess{}, &InputError{Field: FieldOutcome, Problem: Malformed, Value: outcome, Reason: fmt.Sprintf("review outcome %q", outcome)}
	}
	note, err := checkText("the note", note, MaxReasonLen, true)
	if err != nil {
		return EmergencyAccess{}, err
	}
	if err := w.catchUp(ctx); err != nil {
		return EmergencyAccess{}, err
	}
	eas, err := w.EmergencyAccesses(ctx)
	if err != nil {
		return EmergencyAccess{}, err
	}
	ea, err := findByPrefix(eas, func(ea EmergencyAccess) consent.Hash { return ea.BreakGlass }, ref, KindEmergencyAccess)
	if err != nil {
		return EmergencyAccess{}, err
	}
	id, err := w.Identity()
	if err != nil {
		return EmergencyAccess{}, err
	}
	body := &consent.ReviewBody{Access: ea.BreakGlass, Outcome: outcome}
	if note != "" {
		if body.Note, err = encryptTo([]byte(note), id.Age.Recipient()); err != nil {
			return EmergencyAccess{}, err
		}
	}
	if err := w.appendAndPublish(ctx, consent.KindReview, body, nil); err != nil {
		return EmergencyAccess{}, fmt.Errorf("the review: %w", err)
	}
	ea.Review, ea.Note = outcome, note
	return ea, nil
}
