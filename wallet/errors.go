package wallet

// The typed errors of the package.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/medwallet/medwallet/p2p/client"
)

// Sentinel errors that the CLI maps to exit codes (see docs/cli.md). Every
// typed error below unwraps to one of them (or to none, for exit code 1).
var (
	// ErrNotFound: a wallet, contact, record, grant or key that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: something that would be overwritten.
	ErrExists = errors.New("already exists")
	// ErrDenied: a consent decision that refused access.
	ErrDenied = errors.New("denied")
	// ErrInvalid: input that is malformed or fails a check.
	ErrInvalid = errors.New("invalid input")
	// ErrVerify: data that fails verification (signatures, chains, audit).
	ErrVerify = errors.New("verification failed")
)

// The typed errors below carry facts, never advice: which input, which
// record, which limit. The wallet speaks no user interface, so none of them
// names a flag or a command; cmd/medwallet and the TUI turn them into
// wording and hints of their own.

// Field names a piece of input a use case takes. A user interface maps it to
// its own control (a flag, a form field).
type Field string

// The inputs an InputError can name.
const (
	FieldCard            Field = "card"             // an identity card to add as a contact
	FieldCategory        Field = "category"         // a sensitive category to allow
	FieldCredential      Field = "credential"       // a credential ID or prefix
	FieldEmergency       Field = "emergency"        // an emergency (break-glass) import
	FieldEmergencyAccess Field = "emergency access" // an emergency access (its break-glass ID or prefix)
	FieldExpiry          Field = "expiry"           // a grant's expiry
	FieldGrant           Field = "grant"            // a grant ID or prefix
	FieldGrantee         Field = "grantee"          // who receives a grant
	FieldIssuer          Field = "issuer"           // a credential issuer
	FieldOutcome         Field = "outcome"          // the outcome of a review
	FieldPatient         Field = "patient"          // the patient of an emergency import
	FieldPurpose         Field = "purpose"          // a purpose of use
	FieldReason          Field = "reason"           // the stated reason of an emergency access
	FieldRecord          Field = "record"           // a record ID or prefix
	FieldRecords         Field = "records"          // the records a grant covers
	FieldResult          Field = "result"           // a result's name or LOINC code (record trend)
	FieldRole            Field = "role"             // a credential role
	FieldScope           Field = "scope"            // a SMART scope
	FieldShares          Field = "shares"           // the erasure-coding parameters k and n
	FieldSince           Field = "since"            // the start of an accounting
	FieldTimeBox         Field = "time box"         // the longest emergency access
)

// Problem says what is wrong with an input.
type Problem int

// The problems an InputError can report.
const (
	// Missing: the input was needed and not given.
	Missing Problem = iota + 1
	// Malformed: the input was given but could not be understood.
	Malformed
	// Rejected: the input was understood but is not allowed here (out of
	// range, in the past, matching nothing, in the wrong state).
	Rejected
	// Conflict: the input was given together with With, or without it,
	// and the two do not go together.
	Conflict
)

// InputError reports an input that is missing, malformed, rejected or in
// conflict with another. It is ErrInvalid.
type InputError struct {
	Field   Field
	Problem Problem
	Value   string // the value given, if any
	With    Field  // for a Conflict: the other input
	Reason  string // what is wrong, in plain words
	Err     error  // the check that failed, if any
}

func (e *InputError) Error() string {
	var b strings.Builder
	if e.Reason != "" {
		b.WriteString(e.Reason)
		b.WriteString(": ")
	}
	b.WriteString(ErrInvalid.Error())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *InputError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.Err}
}

// Kind names what a NotFoundError, AmbiguousError or ExistsError is about.
type Kind string

// The kinds of things a wallet looks up.
const (
	KindContact         Kind = "contact"
	KindCredential      Kind = "credential"
	KindEmergencyAccess Kind = "emergency access to your records"
	KindEmergencyPolicy Kind = "emergency policy"
	KindGrant           Kind = "grant"
	KindIdentity        Kind = "identity" // an actor with neither a contact nor an identity entry
	KindKey             Kind = "key"      // the wallet's secrets in the keyring
	KindRecord          Kind = "record"
	KindResult          Kind = "result" // a numeric result in the records (record trend)
	KindWallet          Kind = "wallet"
)

// refField is the input that names a thing of kind k by its ID or prefix.
var refField = map[Kind]Field{
	KindGrant:           FieldGrant,
	KindCredential:      FieldCredential,
	KindEmergencyAccess: FieldEmergencyAccess,
	KindRecord:          FieldRecord,
}

// NotFoundError reports something looked up and not found. It is
// ErrNotFound (and ErrNoWallet for KindWallet).
type NotFoundError struct {
	Kind Kind
	Ref  string // the name, ID or prefix looked for; the home directory for KindWallet
	// Owner is whose it would be: the issuer of a credential, the patient
	// of an emergency policy; the keyring backend for KindKey.
	Owner string
}

func (e *NotFoundError) Error() string {
	switch {
	case e.Kind == KindWallet:
		return fmt.Sprintf("%v: %s", ErrNoWallet, e.Ref)
	case e.Kind == KindKey:
		return fmt.Sprintf("the %s keyring holds no key for this wallet: %v", e.Owner, ErrNotFound)
	case e.Kind == KindIdentity:
		return fmt.Sprintf("no contact and no identity entry for %s: %v", e.Ref, ErrNotFound)
	case e.Kind == KindCredential && e.Owner != "":
		return fmt.Sprintf("%s has issued no %s credential on the ledger: %v", e.Owner, e.Ref, ErrNotFound)
	case e.Kind == KindEmergencyPolicy:
		return fmt.Sprintf("patient %s has no active emergency policy on the ledger: %v", e.Owner, ErrNotFound)
	}
	return fmt.Sprintf("no %s %q: %v", e.Kind, e.Ref, ErrNotFound)
}

func (e *NotFoundError) Unwrap() error {
	if e.Kind == KindWallet {
		return ErrNoWallet
	}
	return ErrNotFound
}

// AmbiguousError reports an ID prefix that several things start with. It
// is ErrInvalid.
type AmbiguousError struct {
	Kind    Kind
	Ref     string
	Matches int
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s %q: %v: %d IDs start with it", e.Kind, e.Ref, ErrInvalid, e.Matches)
}

func (e *AmbiguousError) Unwrap() error { return ErrInvalid }

// ExistsError reports something that is already there and would be
// replaced. It is ErrExists.
type ExistsError struct {
	Kind Kind
	Ref  string // the name; the home directory for KindWallet
}

func (e *ExistsError) Error() string {
	if e.Kind == KindWallet {
		return fmt.Sprintf("a wallet already exists in %s: %v", e.Ref, ErrExists)
	}
	return fmt.Sprintf("%s %q: %v", e.Kind, e.Ref, ErrExists)
}

func (e *ExistsError) Unwrap() error { return ErrExists }

// Why access was refused, besides the reasons of a consent decision.
const (
	// DenyNoCredential: the wallet holds no credential from an issuer the
	// patient's emergency policy trusts.
	DenyNoCredential = "no trusted credential"
	// DenyEmergencyGrant: an emergency grant is reached only by breaking
	// the glass, never imported like an ordinary grant.
	DenyEmergencyGrant = "emergency grant"
)

// DeniedError reports access that was refused: by a peer's consent
// decision (Reason is then a consent.Reason), or by the wallet before it
// asked (one of the Deny constants). It is ErrDenied.
type DeniedError struct {
	Reason  string
	Record  string // the record refused, if any
	Grant   string // the grant (short ID), if any
	Patient string // the patient (short ID), if any
}

func (e *DeniedError) Error() string {
	switch e.Reason {
	case DenyNoCredential:
		return fmt.Sprintf("you hold no credential from an issuer that patient %s's emergency policy trusts: %v", e.Patient, ErrDenied)
	case DenyEmergencyGrant:
		return fmt.Sprintf("grant %s is an emergency grant: %v", e.Grant, ErrDenied)
	}
	if e.Record != "" {
		return fmt.Sprintf("record %s: %v: %s", e.Record, ErrDenied, e.Reason)
	}
	return fmt.Sprintf("%v: %s", ErrDenied, e.Reason)
}

func (e *DeniedError) Unwrap() error { return ErrDenied }

// PeersError reports too few peers answering for what was asked. It is
// client.ErrNoPeers.
type PeersError struct {
	Answered   int // peers that answered
	Configured int // peers in the network file
	Needed     int // peers the operation needs
	// K is set when Needed comes from a record's coding parameters: an add
	// places every share on a distinct peer and needs k+1 of them.
	K int
}

func (e *PeersError) Error() string {
	if e.K > 0 {
		return fmt.Sprintf("%v: %d of %d peers answer, and k=%d needs at least %d distinct peers",
			client.ErrNoPeers, e.Answered, e.Configured, e.K, e.Needed)
	}
	return fmt.Sprintf("%v: %d of %d configured peers answered, %d needed", client.ErrNoPeers, e.Answered, e.Configured, e.Needed)
}

func (e *PeersError) Unwrap() error { return client.ErrNoPeers }

// Operations a NetworkError can name.
const (
	OpStoreShares = "storing the record's shares"
	OpPublish     = "publishing to the network"
	OpPull        = "fetching the ledger from the network"
)

// NetworkError reports the peers failing in the middle of an operation (a
// peer that went away, a reset stream, every peer refusing). Err keeps the
// detail.
type NetworkError struct {
	Op  string
	Err error
}

func (e *NetworkError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *NetworkError) Unwrap() error { return e.Err }

// AuditError reports an audit that found problems: the count of each kind
// of finding and the first one. It is ErrVerify.
type AuditError struct {
	Counts []string // e.g. "2 violation", in a fixed order
	Where  string   // the author#seq of the first finding, if any
	Detail string   // the first finding
}

func (e *AuditError) Error() string {
	where := ""
	if e.Where != "" {
		where = " in " + e.Where
	}
	return fmt.Sprintf("audit failed: %s; first%s: %s: %v", strings.Join(e.Counts, ", "), where, e.Detail, ErrVerify)
}

func (e *AuditError) Unwrap() error { return ErrVerify }

// RecordError is a failure about one record (not a lookup): Err says what.
type RecordError struct {
	Record string // the full record ID
	Err    error
}

func (e *RecordError) Error() string { return "record " + e.Record + ": " + e.Err.Error() }
func (e *RecordError) Unwrap() error { return e.Err }

// LedgerFile is the local ledger's file name in the wallet's directory.
const LedgerFile = ledgerFile

// ErrBadLedger reports a local ledger that does not verify. It is also
// ErrVerify.
var ErrBadLedger = errors.New("the local ledger does not verify")
