package consent

// Guardians and recovery (kinds 16 to 18): an owner names guardians who
// each hold an encrypted piece of a recovery secret (guardian-set); a new
// machine asks them to recover the owner's identity, the owner may refuse
// within a waiting period, and the owner marks a recovery complete
// (recovery); each guardian hands its piece over, re-encrypted to the new
// machine (recovery-approval). The pieces are age ciphertext: the ledger
// never holds a piece in the clear.

import (
	"fmt"
	"slices"
	"strings"
)

// The guardian kinds.
const (
	KindGuardianSet      Kind = 16 // GuardianSetBody: the owner's guardians and their encrypted pieces
	KindRecovery         Kind = 17 // RecoveryBody: a recovery request, or the owner's refusal or completion of one
	KindRecoveryApproval Kind = 18 // RecoveryApprovalBody: a guardian's piece for a request
)

// Limits of the guardian bodies.
const (
	// MaxGuardians bounds the guardians of one set.
	MaxGuardians = 16
	// MaxPieceSize bounds one encrypted piece.
	MaxPieceSize = 2048
	// MaxRecoveryDelay bounds a recovery's waiting period (seconds).
	MaxRecoveryDelay = 30 * 24 * 3600
	// CommitmentSize is the size of one Feldman commitment (a
	// ristretto255 element).
	CommitmentSize = 32
)

// Recovery operations (RecoveryBody.Op).
const (
	RecoveryStart    = "start"    // by the requester (a fresh key on the new machine)
	RecoveryRefuse   = "refuse"   // by the owner, within the waiting period
	RecoveryComplete = "complete" // by the owner, once recovered
)

// GuardianPiece is one guardian's piece of a set: its Shamir index and
// the piece, age ciphertext to the guardian.
type GuardianPiece struct {
	Guardian ID     `cbor:"1,keyasint" json:"guardian"`
	Index    uint64 `cbor:"2,keyasint" json:"index"`
	Piece    []byte `cbor:"3,keyasint" json:"-"`
}

// GuardianSetBody is the body of a guardian-set entry in the owner's home
// feed. Set is a random ID; Threshold of the Guardians (sorted by ID,
// unique, Shamir indexes 1 to n in any order) together rebuild the
// recovery secret. Commitments are the Feldman commitments of the sharing
// (Threshold ristretto255 elements), so that a bad piece is found before
// use. Blob is the SHA-256 of the owner's identity encrypted under the
// secret, stored on the owner's peers. The latest guardian-set entry of
// an owner replaces the ones before (rotation).
type GuardianSetBody struct {
	Set         Hash            `cbor:"1,keyasint" json:"set"`
	Threshold   uint64          `cbor:"2,keyasint" json:"threshold"`
	Guardians   []GuardianPiece `cbor:"3,keyasint" json:"guardians"`
	Commitments [][]byte        `cbor:"4,keyasint" json:"-"`
	Blob        Hash            `cbor:"5,keyasint" json:"blob"`
}

// Validate checks the body's shape.
func (b *GuardianSetBody) Validate() error {
	n := len(b.Guardians)
	switch {
	case b.Set.IsZero():
		return malformed("guardian-set body: no set ID")
	case b.Blob.IsZero():
		return malformed("guardian-set body: no blob hash")
	case n == 0 || n > MaxGuardians:
		return malformed("guardian-set body: %d guardians, want 1 to %d", n, MaxGuardians)
	case b.Threshold == 0 || b.Threshold > uint64(n):
		return malformed("guardian-set body: threshold %d of %d guardians", b.Threshold, n)
	case uint64(len(b.Commitments)) != b.Threshold:
		return malformed("guardian-set body: %d commitments for threshold %d", len(b.Commitments), b.Threshold)
	}
	for _, c := range b.Commitments {
		if len(c) != CommitmentSize {
			return malformed("guardian-set body: a commitment is not %d bytes", CommitmentSize)
		}
	}
	seen := make(map[uint64]bool, n)
	for i, g := range b.Guardians {
		if _, err := cachedPublicKey(g.Guardian); err != nil {
			return malformed("guardian-set body: guardian %d: %v", i, err)
		}
		if i > 0 && b.Guardians[i-1].Guardian >= g.Guardian {
			return malformed("guardian-set body: guardians are not sorted and unique")
		}
		if g.Index == 0 || g.Index > uint64(n) || seen[g.Index] {
			return malformed("guardian-set body: piece indexes must be 1 to %d, each once", n)
		}
		seen[g.Index] = true
		if len(g.Piece) == 0 || len(g.Piece) > MaxPieceSize {
			return malformed("guardian-set body: piece %d is empty or over %d bytes", i, MaxPieceSize)
		}
	}
	return nil
}

// Piece returns guardian's piece of the set.
func (b *GuardianSetBody) Piece(guardian ID) (GuardianPiece, bool) {
	for _, g := range b.Guardians {
		if g.Guardian == guardian {
			return g, true
		}
	}
	return GuardianPiece{}, false
}

// RecoveryBody is the body of a recovery entry. A start is signed by a
// fresh key on the new machine (the requester) and names the Owner to
// recover, the owner's guardian Set it asks, the age Recipient (a fresh
// key of the new machine) the pieces go to, and the waiting period Delay
// in seconds (0: none). A refuse or a complete is signed by the owner and
// names the start entry's hash (Request).
type RecoveryBody struct {
	Op        string `cbor:"1,keyasint" json:"op"`
	Owner     ID     `cbor:"2,keyasint,omitempty" json:"owner,omitempty"`
	Set       Hash   `cbor:"3,keyasint,omitzero" json:"set,omitzero"`
	Recipient string `cbor:"4,keyasint,omitempty" json:"recipient,omitempty"`
	Delay     int64  `cbor:"5,keyasint,omitempty" json:"delay,omitempty"`
	Request   Hash   `cbor:"6,keyasint,omitzero" json:"request,omitzero"`
}

// Validate checks the body's shape.
func (b *RecoveryBody) Validate() error {
	switch b.Op {
	case RecoveryStart:
		if _, err := cachedPublicKey(b.Owner); err != nil {
			return malformed("recovery body: owner: %v", err)
		}
		if b.Set.IsZero() {
			return malformed("recovery body: a start names no guardian set")
		}
		if !strings.HasPrefix(b.Recipient, "age1") || len(b.Recipient) > 256 {
			return malformed("recovery body: recipient is not an age recipient")
		}
		if b.Delay < 0 || b.Delay > MaxRecoveryDelay {
			return malformed("recovery body: delay %d outside 0 to %d seconds", b.Delay, MaxRecoveryDelay)
		}
		if !b.Request.IsZero() {
			return malformed("recovery body: a start names a request")
		}
	case RecoveryRefuse, RecoveryComplete:
		if b.Request.IsZero() || b.Owner != "" || !b.Set.IsZero() || b.Recipient != "" || b.Delay != 0 {
			return malformed("recovery body: a %s names its request only", b.Op)
		}
	default:
		return malformed("recovery body: unknown operation %q", b.Op)
	}
	return nil
}

// RecoveryApprovalBody is the body of a recovery-approval entry, in a
// guardian's home feed: the guardian's piece of the Set for the start
// entry Request, age ciphertext to the request's recipient.
type RecoveryApprovalBody struct {
	Request Hash   `cbor:"1,keyasint" json:"request"`
	Set     Hash   `cbor:"2,keyasint" json:"set"`
	Piece   []byte `cbor:"3,keyasint" json:"-"`
}

// Validate checks the body's shape.
func (b *RecoveryApprovalBody) Validate() error {
	if b.Request.IsZero() || b.Set.IsZero() {
		return malformed("recovery-approval body: no request or set")
	}
	if len(b.Piece) == 0 || len(b.Piece) > MaxPieceSize {
		return malformed("recovery-approval body: piece is empty or over %d bytes", MaxPieceSize)
	}
	return nil
}

// decodeGuardianBody decodes the bodies of kinds 16 to 18.
func decodeGuardianBody(k Kind, b []byte) (any, error) {
	var v interface{ Validate() error }
	switch k {
	case KindGuardianSet:
		v = &GuardianSetBody{}
	case KindRecovery:
		v = &RecoveryBody{}
	case KindRecoveryApproval:
		v = &RecoveryApprovalBody{}
	default:
		return nil, fmt.Errorf("%w %d", ErrUnknownKind, k)
	}
	if err := Unmarshal(b, v); err != nil {
		return nil, malformed("%s body: %v", k, err)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

// GuardianSetInfo is an owner's guardian set as the view holds it.
type GuardianSetInfo struct {
	ID    Hash // the entry's hash
	Owner ID
	Seq   uint64
	Time  int64
	GuardianSetBody
}

// Guards reports whether guardian is one of the set's guardians.
func (s *GuardianSetInfo) Guards(guardian ID) bool {
	_, ok := s.Piece(guardian)
	return ok
}

// RecoveryInfo is a recovery request as the view holds it, with what the
// owner said about it.
type RecoveryInfo struct {
	ID        Hash // the start entry's hash
	Requester ID
	Time      int64
	RecoveryBody
	// Refused is the time of the owner's first refusal within the
	// waiting period (0: none); Completed that of its first completion.
	Refused, Completed int64
}

// Ready is when guardians may hand their pieces over: the start's time
// plus its waiting period.
func (r *RecoveryInfo) Ready() int64 { return r.Time + r.Delay }

// RecoveryApprovalInfo is a guardian's approval as the view holds it.
type RecoveryApprovalInfo struct {
	ID       Hash
	Guardian ID
	Time     int64
	RecoveryApprovalBody
}

// recoveryIndex is what the view knows of guardians and recoveries. It
// keeps the entries themselves (they are few), and is saved as their
// encodings (state.go) and rebuilt from them.
type recoveryIndex struct {
	entries   [][]byte
	sets      map[ID]*GuardianSetInfo          // owner -> latest set
	requests  map[Hash]*RecoveryInfo           // start entry -> request
	byOwner   map[ID][]Hash                    // owner -> its requests, in arrival order
	requester map[ID][]Hash                    // requester -> its requests
	marks     map[Hash][]recoveryMark          // request -> the owners' refusals and completions
	approvals map[Hash][]*RecoveryApprovalInfo // request -> approvals
}

type recoveryMark struct {
	author ID
	op     string
	time   int64
}

func (v *View) recovery() *recoveryIndex {
	if v.rec == nil {
		v.rec = &recoveryIndex{
			sets: map[ID]*GuardianSetInfo{}, requests: map[Hash]*RecoveryInfo{}, byOwner: map[ID][]Hash{},
			requester: map[ID][]Hash{}, marks: map[Hash][]recoveryMark{}, approvals: map[Hash][]*RecoveryApprovalInfo{},
		}
	}
	return v.rec
}

// acceptGuardian records an accepted entry of kinds 16 to 18. A guardian
// set names its guardians as parties of the owner (Names): they read the
// owner's feed and the owner's peers keep theirs (their approvals).
func (v *View) acceptGuardian(e *Entry, h Hash, body any) {
	x := v.recovery()
	x.entries = append(x.entries, e.Encode())
	author := v.intern(e.Author)
	switch b := body.(type) {
	case *GuardianSetBody:
		if old, ok := x.sets[author]; !ok || old.Seq < e.Seq {
			x.sets[author] = &GuardianSetInfo{ID: h, Owner: author, Seq: e.Seq, Time: e.Time, GuardianSetBody: *b}
		}
		for _, g := range b.Guardians {
			v.noteGrantor(author, v.intern(g.Guardian))
		}
	case *RecoveryBody:
		if b.Op == RecoveryStart {
			x.requests[h] = &RecoveryInfo{ID: h, Requester: author, Time: e.Time, RecoveryBody: *b}
			x.byOwner[b.Owner] = append(x.byOwner[b.Owner], h)
			x.requester[author] = append(x.requester[author], h)
			return
		}
		x.marks[b.Request] = append(x.marks[b.Request], recoveryMark{author: author, op: b.Op, time: e.Time})
	case *RecoveryApprovalBody:
		x.approvals[b.Request] = append(x.approvals[b.Request], &RecoveryApprovalInfo{ID: h, Guardian: author, Time: e.Time, RecoveryApprovalBody: *b})
	}
}

// recoveryState is what state.go saves: the entries, in acceptance order.
func (v *View) recoveryState() [][]byte {
	if v.rec == nil {
		return nil
	}
	return v.rec.entries
}

// restoreRecovery rebuilds the index from saved entries.
func (v *View) restoreRecovery(encs [][]byte) error {
	for _, b := range encs {
		e, body, err := decodeEntry(b)
		if err != nil {
			return fmt.Errorf("%w: recovery entry: %v", ErrStateCorrupt, err)
		}
		v.acceptGuardian(e, HashBytes(b), body)
	}
	return nil
}

// GuardianSet returns owner's latest guardian set.
func (v *View) GuardianSet(owner ID) (*GuardianSetInfo, bool) {
	if v.rec == nil {
		return nil, false
	}
	s, ok := v.rec.sets[owner]
	return s, ok
}

// GuardedBy returns the owners whose latest guardian set names guardian,
// sorted.
func (v *View) GuardedBy(guardian ID) []ID {
	if v.rec == nil {
		return nil
	}
	var out []ID
	for o, s := range v.rec.sets {
		if s.Guards(guardian) {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// Recovery returns the recovery request started by entry id, with the
// owner's refusal (only one dated within the waiting period counts) and
// completion.
func (v *View) Recovery(id Hash) (*RecoveryInfo, bool) {
	if v.rec == nil {
		return nil, false
	}
	r, ok := v.rec.requests[id]
	if !ok {
		return nil, false
	}
	out := *r
	for _, m := range v.rec.marks[id] {
		if m.author != r.Owner {
			continue
		}
		switch {
		case m.op == RecoveryRefuse && m.time <= r.Ready() && (out.Refused == 0 || m.time < out.Refused):
			out.Refused = m.time
		case m.op == RecoveryComplete && (out.Completed == 0 || m.time < out.Completed):
			out.Completed = m.time
		}
	}
	return &out, true
}

// Recoveries returns the recovery requests naming owner, oldest first.
func (v *View) Recoveries(owner ID) []*RecoveryInfo {
	if v.rec == nil {
		return nil
	}
	out := make([]*RecoveryInfo, 0, len(v.rec.byOwner[owner]))
	for _, h := range v.rec.byOwner[owner] {
		r, _ := v.Recovery(h)
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *RecoveryInfo) int { return int(a.Time - b.Time) })
	return out
}

// PendingRecoveries returns the recovery requests naming owner that are
// pending at now (Unix seconds), oldest first: asking the owner's current
// guardian set, neither refused nor completed, and less than grace
// seconds past their waiting period; only those whose requester counts
// (nil: all). Peers cap them (p2p/peer, docs/network.md "Recovery
// requests from strangers").
func (v *View) PendingRecoveries(owner ID, now, grace int64, counts func(ID) bool) []*RecoveryInfo {
	set, ok := v.GuardianSet(owner)
	var out []*RecoveryInfo
	for _, r := range v.Recoveries(owner) {
		if ok && r.Set == set.Set && r.Refused == 0 && r.Completed == 0 && now < r.Ready()+grace &&
			(counts == nil || counts(r.Requester)) {
			out = append(out, r)
		}
	}
	return out
}

// AllRecoveries returns every recovery request the view holds, oldest
// first.
func (v *View) AllRecoveries() []*RecoveryInfo {
	if v.rec == nil {
		return nil
	}
	out := make([]*RecoveryInfo, 0, len(v.rec.requests))
	for h := range v.rec.requests {
		r, _ := v.Recovery(h)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *RecoveryInfo) int {
		if a.Time != b.Time {
			return int(a.Time - b.Time)
		}
		return cmpHash(a.ID, b.ID)
	})
	return out
}

// RecoveryApprovals returns the approvals that count for request: one per
// guardian (its first), by a guardian of the set the request names, for
// that set, which must still be the owner's latest.
func (v *View) RecoveryApprovals(request Hash) []*RecoveryApprovalInfo {
	r, ok := v.Recovery(request)
	if !ok {
		return nil
	}
	set, ok := v.GuardianSet(r.Owner)
	if !ok || set.Set != r.Set {
		return nil
	}
	var out []*RecoveryApprovalInfo
	seen := map[ID]bool{}
	for _, a := range v.rec.approvals[request] {
		if a.Set != set.Set || !set.Guards(a.Guardian) || seen[a.Guardian] {
			continue
		}
		seen[a.Guardian] = true
		out = append(out, a)
	}
	return out
}

// RecoveryMayRead reports whether reader may read author's feed because
// of a recovery: author started a recovery of reader, or of an owner
// reader guards (the owner's devices and guardians see requests); or
// author is a guardian who approved a request reader started (the new
// machine fetches the pieces).
func (v *View) RecoveryMayRead(reader, author ID) bool {
	if v.rec == nil {
		return false
	}
	for _, h := range v.rec.requester[author] {
		r := v.rec.requests[h]
		if r.Owner == reader {
			return true
		}
		if s, ok := v.rec.sets[r.Owner]; ok && s.Guards(reader) {
			return true
		}
	}
	for _, h := range v.rec.requester[reader] {
		for _, a := range v.rec.approvals[h] {
			if a.Guardian == author {
				return true
			}
		}
	}
	return false
}

// ApprovalsFor returns the approvals of request for the set it names, the
// first of each author, whatever the view knows of the owner's guardian
// set: the new machine, which cannot read the owner's feed, checks each
// piece against the commitments the owner signed (wallet/recover.go).
func (v *View) ApprovalsFor(request Hash) []*RecoveryApprovalInfo {
	r, ok := v.Recovery(request)
	if !ok {
		return nil
	}
	var out []*RecoveryApprovalInfo
	seen := map[ID]bool{}
	for _, a := range v.rec.approvals[request] {
		if a.Set != r.Set || seen[a.Guardian] {
			continue
		}
		seen[a.Guardian] = true
		out = append(out, a)
	}
	return out
}
