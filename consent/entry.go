package consent

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Kind says what an entry's body holds. Numbers are part of the wire format.
type Kind uint8

// Entry kinds. Unknown kinds are refused.
const (
	KindIdentity     Kind = 1  // IdentityBody: the author's age recipient and role
	KindAnchor       Kind = 2  // AnchorBody: hash of an encrypted record manifest
	KindGrant        Kind = 3  // Grant: consent to a grantee
	KindRevoke       Kind = 4  // RevokeBody: withdraws one of the author's grants
	KindAccess       Kind = 5  // AccessBody: a decision on a signed request
	KindEquivocation Kind = 6  // EquivocationProof: two entries with one author and seq
	KindCredential   Kind = 7  // CredentialBody: the author vouches for a subject's role
	KindBreakGlass   Kind = 8  // BreakGlassBody: the author declares an emergency access
	KindReview       Kind = 9  // ReviewBody: the owner reviews an emergency access
	KindServe        Kind = 10 // ServeBody: the author's serving peers
	KindLink         Kind = 12 // LinkBody: opens a sub-feed of a parent about a subject
	KindDevice       Kind = 19 // DeviceBody: opens a device feed the owner enrolled (device.go)
	KindDeviceRevoke Kind = 20 // DeviceRevokeBody: the owner withdraws a device
	// KindShl (22) and KindShlAccess (23): SMART Health Links, shl.go.
	// KindAgeKey (24): the identity's new age recipient, agekey.go.
)

var kindNames = map[Kind]string{
	KindIdentity:     "identity",
	KindAnchor:       "anchor",
	KindGrant:        "grant",
	KindRevoke:       "revoke",
	KindAccess:       "access",
	KindEquivocation: "equivocation",
	KindCredential:   "credential",
	KindBreakGlass:   "break-glass",
	KindReview:       "review",
	KindServe:        "serve",
	KindLink:         "link",

	KindRepairGrant:      "repair-grant",  // repair.go
	KindRepairRevoke:     "repair-revoke", // repair.go
	KindRetire:           "retire",        // retire.go
	KindGuardianSet:      "guardian-set",  // guardian.go
	KindRecovery:         "recovery",
	KindRecoveryApproval: "recovery-approval",
	KindDevice:           "device",
	KindDeviceRevoke:     "device-revoke",
	KindShl:              "shl",
	KindShlAccess:        "shl-access",
	KindAgeKey:           "age-key", // agekey.go
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Limits of the wire format.
const (
	// MaxEntrySize bounds the encoding of one entry (a grant carrying many
	// wrapped record keys is the largest).
	MaxEntrySize = 1 << 20
	// MaxRequestSize bounds the encoding of one request.
	MaxRequestSize = 4096
)

// entryContext separates entry signatures from every other signature made
// with an identity key (cards, requests).
const entryContext = "medwallet ledger entry v1\n"

// Entry is one signed, chained ledger entry. Its encoding is the canonical
// CBOR map documented in the package comment; Hash is the SHA-256 of that
// encoding, signature included, and serves as the entry's ID.
type Entry struct {
	Author ID     `cbor:"1,keyasint"`
	Seq    uint64 `cbor:"2,keyasint"` // 1 for the first entry of a feed
	Prev   Hash   `cbor:"3,keyasint"` // Hash of the author's entry Seq-1; zero for Seq 1
	Time   int64  `cbor:"4,keyasint"` // Unix seconds, never earlier than Prev's
	Kind   Kind   `cbor:"5,keyasint"`
	Body   []byte `cbor:"6,keyasint"` // canonical CBOR of the kind's body type
	Sig    []byte `cbor:"7,keyasint,omitempty"`
}

// Typed errors. Each concrete error type below wraps one of these, so
// callers test with errors.Is and read the evidence with errors.As.
var (
	ErrMalformed     = errors.New("malformed")
	ErrUnknownKind   = errors.New("unknown entry kind")
	ErrBadSignature  = errors.New("bad signature")
	ErrWrongPrev     = errors.New("wrong previous hash")
	ErrGap           = errors.New("gap in feed")
	ErrReordered     = errors.New("entries out of order")
	ErrWrongAuthor   = errors.New("entry by another author")
	ErrTimeBackwards = errors.New("time goes backwards")
	ErrDuplicate     = errors.New("duplicate entry")
	ErrEquivocation  = errors.New("equivocation")
	ErrTooLarge      = errors.New("too large")
)

// EntryError locates a problem in one entry. It wraps one of the Err* values.
type EntryError struct {
	Author ID
	Seq    uint64
	Err    error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("ledger entry %s#%d: %v", e.Author.Short(), e.Seq, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// ChainError reports an entry whose Prev does not match its predecessor.
type ChainError struct {
	Author    ID
	Seq       uint64
	Want, Got Hash
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("ledger entry %s#%d: %v: want %s, got %s", e.Author.Short(), e.Seq, ErrWrongPrev, e.Want, e.Got)
}

func (e *ChainError) Unwrap() error { return ErrWrongPrev }

// SeqError reports an entry that does not come next in its feed: a gap
// (Got > Want) or entries out of order (Reordered).
type SeqError struct {
	Author    ID
	Want, Got uint64
	Reordered bool
}

func (e *SeqError) Error() string {
	return fmt.Sprintf("feed %s: %v: want seq %d, got %d", e.Author.Short(), e.Unwrap(), e.Want, e.Got)
}

func (e *SeqError) Unwrap() error {
	if e.Reordered {
		return ErrReordered
	}
	return ErrGap
}

// AuthorError reports an entry found in another author's feed.
type AuthorError struct {
	Feed, Author ID
	Seq          uint64
}

func (e *AuthorError) Error() string {
	return fmt.Sprintf("feed %s: %v %s (seq %d)", e.Feed.Short(), ErrWrongAuthor, e.Author.Short(), e.Seq)
}

func (e *AuthorError) Unwrap() error { return ErrWrongAuthor }

// EquivocationError reports two different, validly signed entries with the
// same author and seq. Proof is self-contained: anyone can check it with
// VerifyEquivocation.
type EquivocationError struct {
	Proof *EquivocationProof
}

func (e *EquivocationError) Error() string {
	return fmt.Sprintf("author %s: %v at seq %d", e.Proof.Author().Short(), ErrEquivocation, e.Proof.Seq())
}

func (e *EquivocationError) Unwrap() error { return ErrEquivocation }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Head is the position of the last accepted entry of a feed. The zero Head
// is the empty feed.
type Head struct {
	Seq  uint64 `cbor:"1,keyasint" json:"seq"`
	Hash Hash   `cbor:"2,keyasint" json:"hash"`
	Time int64  `cbor:"-" json:"-"` // not on the wire: only used locally to keep time monotonic
}

// Encode returns the canonical encoding of e.
func (e *Entry) Encode() []byte {
	b, err := Marshal(e)
	if err != nil {
		// A struct of strings, integers and byte strings always encodes.
		panic(err)
	}
	return b
}

// Hash returns the SHA-256 of the full encoding: the entry's ID.
func (e *Entry) Hash() Hash { return HashBytes(e.Encode()) }

// Head returns the head of a feed whose last entry is e.
func (e *Entry) Head() Head { return Head{Seq: e.Seq, Hash: e.Hash(), Time: e.Time} }

// SignedMessage returns the bytes the author signs: the context string
// "medwallet ledger entry v1\n", then the canonical encoding of the entry
// without its signature (key 7).
func (e *Entry) SignedMessage() []byte {
	c := *e
	c.Sig = nil
	b, err := Marshal(&c)
	if err != nil {
		panic(err)
	}
	return append([]byte(entryContext), b...)
}

// NewEntry builds, checks and signs the entry that follows head in the
// signer's feed. body is the kind's body value (e.g. *Grant); t is clamped
// so that time never goes backwards within the feed.
func NewEntry(s Signer, head Head, t time.Time, kind Kind, body any) (*Entry, error) {
	b, err := Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %v body: %w", kind, err)
	}
	sec := t.Unix()
	if sec < head.Time {
		sec = head.Time
	}
	e := &Entry{Author: s.ID(), Seq: head.Seq + 1, Prev: head.Hash, Time: sec, Kind: kind, Body: b}
	if err := e.checkFields(); err != nil {
		return nil, err
	}
	sig, err := s.Sign(e.SignedMessage())
	if err != nil {
		return nil, fmt.Errorf("sign ledger entry: %w", err)
	}
	e.Sig = sig
	return e, nil
}

// DecodeEntry strictly decodes one canonical entry and checks its fields and
// body (not its signature: see VerifyEntry).
func DecodeEntry(b []byte) (*Entry, error) {
	e, _, err := decodeEntry(b)
	return e, err
}

// decodeEntry is DecodeEntry; it also returns the decoded body.
func decodeEntry(b []byte) (*Entry, any, error) {
	if len(b) > MaxEntrySize {
		return nil, nil, fmt.Errorf("ledger entry: %w (%d bytes)", ErrTooLarge, len(b))
	}
	var e Entry
	if err := Unmarshal(b, &e); err != nil {
		return nil, nil, fmt.Errorf("ledger entry: %w: %w", ErrMalformed, err)
	}
	body, err := e.checkFieldsBody()
	if err != nil {
		return nil, nil, err
	}
	return &e, body, nil
}

// checkFields checks everything but the signature.
func (e *Entry) checkFields() error {
	_, err := e.checkFieldsBody()
	return err
}

// checkFieldsBody is checkFields; it also returns the decoded body.
func (e *Entry) checkFieldsBody() (any, error) {
	fail := func(err error) error { return &EntryError{Author: e.Author, Seq: e.Seq, Err: err} }
	if _, err := cachedPublicKey(e.Author); err != nil {
		return nil, fail(malformed("author: %v", err))
	}
	if e.Seq == 0 {
		return nil, fail(malformed("seq is 0"))
	}
	if e.Seq == 1 && !e.Prev.IsZero() {
		return nil, fail(malformed("first entry has a previous hash"))
	}
	if e.Seq > 1 && e.Prev.IsZero() {
		return nil, fail(malformed("previous hash is missing"))
	}
	if e.Time <= 0 {
		return nil, fail(malformed("time is missing"))
	}
	body, err := decodeBody(e.Kind, e.Body)
	if err != nil {
		return nil, fail(err)
	}
	return body, nil
}

// VerifyEntry checks e's fields, body and signature on their own (not its
// place in a feed: see CheckNext and VerifyFeed). The signature is checked
// under ZIP-215, as VerifyBatch checks it. An entry that passes is
// remembered for a while (by hash), so that View.Ingest and Ledger.Ingest
// of the same entry do not check its signature again.
func VerifyEntry(e *Entry) error {
	if err := e.verify(); err != nil {
		return err
	}
	memoAdd(e.Hash())
	return nil
}

// verify is VerifyEntry without the memo.
func (e *Entry) verify() error {
	if err := e.checkFields(); err != nil {
		return err
	}
	return e.verifySig()
}

func (e *Entry) verifySig() error {
	sigChecks.Add(1)
	if !verifySig(e.Author, e.SignedMessage(), e.Sig) {
		return &EntryError{Author: e.Author, Seq: e.Seq, Err: ErrBadSignature}
	}
	return nil
}

// DecodedBody returns e's body decoded into its kind's type: *IdentityBody,
// *AnchorBody, *Grant, *RevokeBody, *AccessBody, *EquivocationProof,
// *CredentialBody, *BreakGlassBody or *ReviewBody.
func (e *Entry) DecodedBody() (any, error) { return decodeBody(e.Kind, e.Body) }

// CheckNext verifies that e is a valid, validly signed entry that extends a
// feed of author whose head is head (the zero Head for an empty feed).
// It is how a replica accepts a single new entry.
func CheckNext(author ID, head Head, e *Entry) error {
	if e.Author != author {
		return &AuthorError{Feed: author, Author: e.Author, Seq: e.Seq}
	}
	if err := VerifyEntry(e); err != nil {
		return err
	}
	return checkLink(head, e)
}

func checkLink(head Head, e *Entry) error {
	switch {
	case e.Seq > head.Seq+1:
		return &SeqError{Author: e.Author, Want: head.Seq + 1, Got: e.Seq}
	case e.Seq <= head.Seq:
		if e.Seq == head.Seq && e.Hash() == head.Hash {
			return &EntryError{Author: e.Author, Seq: e.Seq, Err: ErrDuplicate}
		}
		return &SeqError{Author: e.Author, Want: head.Seq + 1, Got: e.Seq, Reordered: true}
	case e.Prev != head.Hash:
		return &ChainError{Author: e.Author, Seq: e.Seq, Want: head.Hash, Got: e.Prev}
	case e.Time < head.Time:
		return &EntryError{Author: e.Author, Seq: e.Seq, Err: ErrTimeBackwards}
	}
	return nil
}

// VerifyFeed verifies a whole feed: entries must all be by author, validly
// signed, numbered 1, 2, 3... and chained. Two different entries with the
// same seq yield an *EquivocationError carrying the proof. It returns the
// feed's head.
func VerifyFeed(author ID, entries []*Entry) (Head, error) {
	return verifyFeed(author, entries, true)
}

// verifyFeed is VerifyFeed; with checkSigs false it trusts that every entry
// already passed VerifyEntry.
func verifyFeed(author ID, entries []*Entry, checkSigs bool) (Head, error) {
	// Look for equivocation and misordering first: they explain a chain
	// failure better than the chain failure does.
	bySeq := make(map[uint64]*Entry, len(entries))
	var maxSeq uint64
	inOrder := true
	for i, e := range entries {
		if e.Author != author {
			return Head{}, &AuthorError{Feed: author, Author: e.Author, Seq: e.Seq}
		}
		if checkSigs {
			if err := VerifyEntry(e); err != nil {
				return Head{}, err
			}
		}
		if o, ok := bySeq[e.Seq]; ok {
			if o.Hash() == e.Hash() {
				return Head{}, &EntryError{Author: author, Seq: e.Seq, Err: ErrDuplicate}
			}
			p, err := NewEquivocationProof(o, e)
			if err != nil {
				return Head{}, err
			}
			return Head{}, &EquivocationError{Proof: p}
		}
		bySeq[e.Seq] = e
		maxSeq = max(maxSeq, e.Seq)
		if e.Seq != uint64(i)+1 {
			inOrder = false
		}
	}
	if !inOrder && maxSeq == uint64(len(entries)) {
		// Every seq 1..n is present exactly once, in the wrong order.
		for i, e := range entries {
			if e.Seq != uint64(i)+1 {
				return Head{}, &SeqError{Author: author, Want: uint64(i) + 1, Got: e.Seq, Reordered: true}
			}
		}
	}
	var head Head
	for _, e := range entries {
		if err := checkLink(head, e); err != nil {
			return Head{}, err
		}
		head = e.Head()
	}
	return head, nil
}

// Public keys parsed from IDs, cached: base58 and protobuf decoding cost
// as much as a tenth of a signature check.
var keyCache struct {
	sync.Mutex
	m map[ID]ed25519.PublicKey
}

func cachedPublicKey(id ID) (ed25519.PublicKey, error) {
	keyCache.Lock()
	pub, ok := keyCache.m[id]
	keyCache.Unlock()
	if ok {
		return pub, nil
	}
	pub, err := id.PublicKey()
	if err != nil {
		return nil, err
	}
	keyCache.Lock()
	if keyCache.m == nil || len(keyCache.m) >= 4096 {
		keyCache.m = make(map[ID]ed25519.PublicKey)
	}
	keyCache.m[id] = pub
	keyCache.Unlock()
	return pub, nil
}
