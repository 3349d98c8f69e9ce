package wallet

// Guardians: a recovery secret split among guardians with Shamir's scheme
// (SetGuardians, Guardians), and a guardian's side of a recovery
// (RecoveryRequests, ApproveRecovery).
//
// The secret is a random ristretto255 scalar s; the recovery key is
// SHA-256("medwallet recovery key v1\n" || s), and it seals the identity
// (the very bytes a key export protects: exportPlain) with
// XChaCha20-Poly1305 into a blob the owner signs and stores on its peers
// (p2p/manifests, under a record ID derived from the owner's ID, so a new
// blob replaces the old). s is split with
// github.com/cloudflare/circl/secretsharing (threshold T: any T pieces
// rebuild it, fewer reveal nothing); each piece is age-encrypted to its
// guardian and published in a guardian-set entry (consent kind 16) with
// the Feldman commitments of the sharing. No piece is ever in the clear
// outside a guardian's or the new machine's memory.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
)

const (
	recoveryKeyContext = "medwallet recovery key v1\n"
	recoveryBlobFormat = "medwallet-recovery-blob-v1"
	recoveryBlobSigCtx = "medwallet recovery blob v1\n"
	guardianPieceFmt   = "medwallet-guardian-piece-v1"
	// maxRecoveryBlob bounds a blob read from a peer.
	maxRecoveryBlob = 256 << 10
)

// The kinds of what guardians and recoveries look up (NotFoundError).
const (
	KindGuardianSet Kind = "guardian set"
	KindRecovery    Kind = "recovery request"
)

// guardianBlobFile is HOME/guardian-blob: the current sealed identity.
const guardianBlobFile = "guardian-blob"

// refreshGuardianBlob puts the current sealed identity on the reachable
// peers when one of them holds another (a peer that was down during a
// rotation still holds the old one, which the old pieces open).
func (w *Wallet) refreshGuardianBlob(ctx context.Context, c *client.Client) error {
	env, err := os.ReadFile(filepath.Join(w.cfg.Home, guardianBlobFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	copies, err := c.ListManifestsFor(ctx, w.ID(), consent.SealedIdentityRecord(w.ID()), w.ID())
	if err != nil {
		return &NetworkError{Op: OpPull, Err: err}
	}
	stale := len(copies) == 0
	for _, cp := range copies {
		stale = stale || !bytes.Equal(cp.Envelope, env)
	}
	if !stale {
		return nil
	}
	if _, err := c.PutManifest(ctx, consent.SealedIdentityRecord(w.ID()), w.ID(), env, len(c.Reachable())); err != nil {
		return &NetworkError{Op: OpPublish, Err: err}
	}
	return nil
}

// recoveryGroup is the group whose scalar field the secret is shared in.
var recoveryGroup = group.Ristretto255

// GuardianOptions describe a guardian set.
type GuardianOptions struct {
	// Threshold is how many guardians together can recover the identity;
	// 0 (rotate only) keeps the current one.
	Threshold int
	// Guardians are contact names or IDs; empty (rotate only) keeps the
	// current ones.
	Guardians []string
}

// GuardianInfo is one guardian of a set.
type GuardianInfo struct {
	ID    consent.ID `json:"id"`
	Name  string     `json:"name,omitempty"`
	Index int        `json:"index"`
}

// GuardianSetInfo describes the wallet's guardian set.
type GuardianSetInfo struct {
	Set       string         `json:"set"`
	Threshold int            `json:"threshold"`
	Guardians []GuardianInfo `json:"guardians"`
	Time      time.Time      `json:"time"`
	// Replaced is the set this one replaced (rotation), if any.
	Replaced string `json:"replaced,omitempty"`
	// Peers is how many peers took the sealed identity, of Configured.
	Peers      int `json:"peers,omitempty"`
	Configured int `json:"configured,omitempty"`
}

// recoveryBlob is what the owner signs and stores on its peers: the
// identity sealed under the recovery key, and what a new machine needs to
// check the guardians' pieces (it cannot read the owner's feed).
type recoveryBlob struct {
	Format      string       `json:"format"`
	Owner       consent.ID   `json:"owner"`
	Set         consent.Hash `json:"set"`
	Threshold   int          `json:"threshold"`
	Guardians   []consent.ID `json:"guardians"`
	Commitments [][]byte     `json:"commitments"`
	Time        int64        `json:"time"`
	Nonce       []byte       `json:"nonce"`
	Sealed      []byte       `json:"sealed"`
}

// signedBlob is the stored envelope: the blob's JSON and the owner's
// signature over recoveryBlobSigCtx || Body.
type signedBlob struct {
	Body []byte `json:"body"`
	Sig  []byte `json:"sig"`
}

// guardianPiece is the plaintext of a piece (age-encrypted to a guardian
// in the set entry, then to the new machine in an approval).
type guardianPiece struct {
	Format string       `json:"format"`
	Owner  consent.ID   `json:"owner"`
	Set    consent.Hash `json:"set"`
	Index  uint64       `json:"index"`
	Value  []byte       `json:"value"`
}

// recoveryKey derives the sealing key from the shared secret.
func recoveryKey(s group.Scalar) ([]byte, error) {
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	k := sha256.Sum256(append([]byte(recoveryKeyContext), b...))
	return k[:], nil
}

func blobAD(owner consent.ID, set consent.Hash) []byte {
	return []byte(recoveryBlobFormat + "\n" + string(owner) + "\n" + set.String())
}

// sealBlob seals plain (the identity) under key and signs the result.
func sealBlob(b recoveryBlob, key, plain []byte, priv ed25519.PrivateKey) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	b.Nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(b.Nonce); err != nil {
		return nil, err
	}
	b.Sealed = aead.Seal(nil, b.Nonce, plain, blobAD(b.Owner, b.Set))
	body, _ := json.Marshal(b)
	sig := ed25519.Sign(priv, append([]byte(recoveryBlobSigCtx), body...))
	env, _ := json.Marshal(signedBlob{Body: body, Sig: sig})
	return env, nil
}

// openBlobHeader checks the owner's signature on an envelope and returns
// the blob (still sealed).
func openBlobHeader(env []byte, owner consent.ID) (*recoveryBlob, error) {
	if len(env) > maxRecoveryBlob {
		return nil, fmt.Errorf("the sealed identity is too large: %w", ErrVerify)
	}
	var sb signedBlob
	if err := json.Unmarshal(env, &sb); err != nil {
		return nil, fmt.Errorf("the sealed identity is malformed: %w", ErrVerify)
	}
	pub, err := owner.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !ed25519.Verify(pub, append([]byte(recoveryBlobSigCtx), sb.Body...), sb.Sig) {
		return nil, fmt.Errorf("the sealed identity is not signed by %s: %w", owner.Short(), ErrVerify)
	}
	var b recoveryBlob
	if err := json.Unmarshal(sb.Body, &b); err != nil || b.Format != recoveryBlobFormat || b.Owner != owner ||
		b.Threshold < 1 || len(b.Commitments) != b.Threshold {
		return nil, fmt.Errorf("the sealed identity is malformed: %w", ErrVerify)
	}
	return &b, nil
}

// unseal opens the blob with the rebuilt secret.
func (b *recoveryBlob) unseal(s group.Scalar) ([]byte, error) {
	key, err := recoveryKey(s)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, b.Nonce, b.Sealed, blobAD(b.Owner, b.Set))
	if err != nil {
		return nil, fmt.Errorf("the pieces do not open the sealed identity: %w", ErrVerify)
	}
	return plain, nil
}

// commitments decodes the Feldman commitments.
func decodeCommitments(cs [][]byte) (secretsharing.SecretCommitment, error) {
	out := make(secretsharing.SecretCommitment, len(cs))
	for i, c := range cs {
		e := recoveryGroup.NewElement()
		if err := e.UnmarshalBinary(c); err != nil {
			return nil, fmt.Errorf("a commitment is malformed: %w", ErrVerify)
		}
		out[i] = e
	}
	return out, nil
}

// share turns a decrypted piece into a Shamir share, checked against the
// commitments of the sharing (threshold t).
func (p *guardianPiece) share(t int, commit secretsharing.SecretCommitment) (secretsharing.Share, error) {
	v := recoveryGroup.NewScalar()
	if err := v.UnmarshalBinary(p.Value); err != nil || p.Index == 0 {
		return secretsharing.Share{}, fmt.Errorf("a piece is malformed: %w", ErrVerify)
	}
	s := secretsharing.Share{ID: recoveryGroup.NewScalar().SetUint64(p.Index), Value: v}
	if !secretsharing.Verify(uint(t-1), s, commit) {
		return secretsharing.Share{}, fmt.Errorf("a piece does not match the guardian set: %w", ErrVerify)
	}
	return s, nil
}

func decodePiece(b []byte, owner consent.ID, set consent.Hash) (*guardianPiece, error) {
	var p guardianPiece
	if err := json.Unmarshal(b, &p); err != nil || p.Format != guardianPieceFmt || p.Owner != owner || p.Set != set {
		return nil, fmt.Errorf("a piece is malformed or of another set: %w", ErrVerify)
	}
	return &p, nil
}

// RequestCode is the short code of a recovery request (the start entry's
// hash): 80 bits, 16 base32 characters in groups of four, read over the
// phone to a guardian.
func RequestCode(h consent.Hash) string {
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:10])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalCode upper-cases a typed code and drops spaces and dashes.
func normalCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, code)
}

// SetGuardians makes a new recovery secret, shares it among the guardians
// and publishes the set; with rotate it replaces the current set (whose
// pieces then open nothing: the sealed identity is replaced on the peers),
// else it refuses when a set exists.
func (w *Wallet) SetGuardians(ctx context.Context, o GuardianOptions, rotate bool) (GuardianSetInfo, error) {
	defer w.holdLedger()()
	var out GuardianSetInfo
	if !w.HasNetwork() {
		return out, fmt.Errorf("guardians need peers to hold the sealed identity: %w", ErrNoNetwork)
	}
	if err := w.catchUp(ctx); err != nil {
		return out, err
	}
	cur, err := w.currentGuardianSet()
	if err != nil {
		return out, err
	}
	switch {
	case cur != nil && !rotate:
		return out, fmt.Errorf("guardian set %s exists; 'guardian rotate' replaces it: %w", cur.Set.String()[:12], ErrExists)
	case cur == nil && rotate:
		return out, &NotFoundError{Kind: KindGuardianSet, Ref: "guardian set"}
	}
	if rotate {
		if len(o.Guardians) == 0 {
			for _, g := range cur.Guardians {
				o.Guardians = append(o.Guardians, string(g.Guardian))
			}
		}
		if o.Threshold == 0 {
			o.Threshold = int(cur.Threshold)
		}
		out.Replaced = cur.Set.String()
	}
	type guardian struct {
		id consent.ID
		to *age.X25519Recipient
	}
	var gs []guardian
	for _, ref := range o.Guardians {
		id, to, err := w.resolveGrantee(ref)
		if err != nil {
			return out, err
		}
		if slices.ContainsFunc(gs, func(g guardian) bool { return g.id == id }) {
			return out, fmt.Errorf("guardian %q is named twice: %w", ref, ErrInvalid)
		}
		gs = append(gs, guardian{id, to})
	}
	n := len(gs)
	if n == 0 || n > consent.MaxGuardians {
		return out, fmt.Errorf("name 1 to %d guardians (%d given): %w", consent.MaxGuardians, n, ErrInvalid)
	}
	if o.Threshold < 1 || o.Threshold > n {
		return out, fmt.Errorf("threshold %d of %d guardians: want 1 to %d: %w", o.Threshold, n, n, ErrInvalid)
	}
	slices.SortFunc(gs, func(a, b guardian) int { return strings.Compare(string(a.id), string(b.id)) })
	id, err := w.Identity()
	if err != nil {
		return out, err
	}
	plain, err := w.exportPlain()
	if err != nil {
		return out, err
	}

	secret := recoveryGroup.RandomNonZeroScalar(rand.Reader)
	ss := secretsharing.New(rand.Reader, uint(o.Threshold-1), secret)
	shares := ss.Share(uint(n))
	var commits [][]byte
	for _, c := range ss.CommitSecret() {
		b, err := c.MarshalBinaryCompress()
		if err != nil {
			return out, err
		}
		commits = append(commits, b)
	}
	var set consent.Hash
	if _, err := rand.Read(set[:]); err != nil {
		return out, err
	}
	key, err := recoveryKey(secret)
	if err != nil {
		return out, err
	}
	now := w.Now()
	blob := recoveryBlob{Format: recoveryBlobFormat, Owner: w.ID(), Set: set, Threshold: o.Threshold,
		Commitments: commits, Time: now.Unix()}
	for _, g := range gs {
		blob.Guardians = append(blob.Guardians, g.id)
	}
	env, err := sealBlob(blob, key, plain, id.Signing)
	if err != nil {
		return out, err
	}
	body := &consent.GuardianSetBody{Set: set, Threshold: uint64(o.Threshold), Commitments: commits, Blob: consent.HashBytes(env)}
	for i, g := range gs {
		v, err := shares[i].Value.MarshalBinary()
		if err != nil {
			return out, err
		}
		pp, _ := json.Marshal(guardianPiece{Format: guardianPieceFmt, Owner: w.ID(), Set: set, Index: uint64(i + 1), Value: v})
		ct, err := encryptTo(pp, g.to)
		if err != nil {
			return out, err
		}
		body.Guardians = append(body.Guardians, consent.GuardianPiece{Guardian: g.id, Index: uint64(i + 1), Piece: ct})
	}
	if err := body.Validate(); err != nil {
		return out, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// The sealed identity goes to the peers first: a set whose blob no
	// peer holds would recover nothing.
	c, err := w.Dial(ctx)
	if err != nil {
		return out, err
	}
	defer c.Close()
	if out.Peers, err = c.PutManifest(ctx, consent.SealedIdentityRecord(w.ID()), w.ID(), env, len(c.Reachable())); err != nil {
		return out, &NetworkError{Op: OpPublish, Err: err}
	}
	out.Configured = c.Configured()
	// Kept here too (it is sealed), so that a sync hands it to a peer
	// that was down and still holds the one before (refreshGuardianBlob).
	if err := fsutil.WriteFileAtomic(filepath.Join(w.cfg.Home, guardianBlobFile), env, 0o600); err != nil {
		return out, err
	}
	if _, err := w.appendEntry(consent.KindGuardianSet, body, nil); err != nil {
		return out, err
	}
	if err := w.publishFeed(ctx); err != nil {
		return out, fmt.Errorf("signed but not yet on the network: %w", err)
	}
	out.Set, out.Threshold, out.Time = set.String(), o.Threshold, now.UTC()
	for i, g := range gs {
		out.Guardians = append(out.Guardians, GuardianInfo{ID: g.id, Name: w.NameOf(g.id), Index: i + 1})
	}
	return out, nil
}

// currentGuardianSet returns the wallet's latest guardian set, or nil.
func (w *Wallet) currentGuardianSet() (*consent.GuardianSetInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var cur *consent.GuardianSetInfo
	l.View(func(v *consent.View) {
		if s, ok := v.GuardianSet(w.ID()); ok {
			cur = s
		}
	})
	return cur, nil
}

// Guardians describes the wallet's current guardian set.
func (w *Wallet) Guardians(ctx context.Context) (GuardianSetInfo, error) {
	defer w.holdLedger()()
	if err := w.catchUp(ctx); err != nil {
		return GuardianSetInfo{}, err
	}
	cur, err := w.currentGuardianSet()
	if err != nil {
		return GuardianSetInfo{}, err
	}
	if cur == nil {
		return GuardianSetInfo{}, &NotFoundError{Kind: KindGuardianSet, Ref: "guardian set"}
	}
	out := GuardianSetInfo{Set: cur.Set.String(), Threshold: int(cur.Threshold), Time: consent.TimeOf(cur.Time)}
	for _, g := range cur.Guardians {
		out.Guardians = append(out.Guardians, GuardianInfo{ID: g.Guardian, Name: w.NameOf(g.Guardian), Index: int(g.Index)})
	}
	return out, nil
}

// RecoveryRequestInfo describes a recovery request.
type RecoveryRequestInfo struct {
	ID        string     `json:"id"`
	Code      string     `json:"code"`
	Owner     consent.ID `json:"owner"`
	OwnerName string     `json:"owner_name,omitempty"`
	Requester consent.ID `json:"requester"`
	Started   time.Time  `json:"started"`
	Ready     time.Time  `json:"ready"` // when guardians may approve (the end of the waiting period)
	Status    string     `json:"status"`
	Approvals int        `json:"approvals"`
	Threshold int        `json:"threshold,omitempty"`
	// ApprovedByMe is set on a guardian's wallet once it approved.
	ApprovedByMe bool `json:"approved_by_me,omitempty"`
}

// Recovery request statuses.
const (
	RecoveryWaiting   = "waiting"   // in its waiting period
	RecoveryOpen      = "open"      // guardians may approve
	RecoveryRefused   = "refused"   // the owner refused it in the waiting period
	RecoveryCompleted = "completed" // the owner's identity is back
	RecoveryStale     = "stale"     // it asks a guardian set the owner replaced
)

func (w *Wallet) recoveryInfo(v *consent.View, r *consent.RecoveryInfo, now time.Time) RecoveryRequestInfo {
	ri := RecoveryRequestInfo{ID: r.ID.String(), Code: RequestCode(r.ID), Owner: r.Owner, OwnerName: w.NameOf(r.Owner),
		Requester: r.Requester, Started: consent.TimeOf(r.Time), Ready: consent.TimeOf(r.Ready())}
	if r.Owner == w.ID() {
		ri.OwnerName = ""
	}
	set, ok := v.GuardianSet(r.Owner)
	apps := v.RecoveryApprovals(r.ID)
	ri.Approvals = len(apps)
	ri.ApprovedByMe = slices.ContainsFunc(apps, func(a *consent.RecoveryApprovalInfo) bool { return a.Guardian == w.ID() })
	if ok {
		ri.Threshold = int(set.Threshold)
	}
	switch {
	case r.Completed != 0:
		ri.Status = RecoveryCompleted
	case r.Refused != 0:
		ri.Status = RecoveryRefused
	case !ok || set.Set != r.Set:
		ri.Status = RecoveryStale
	case now.Unix() < r.Ready():
		ri.Status = RecoveryWaiting
	default:
		ri.Status = RecoveryOpen
	}
	return ri
}

// RecoveryRequests lists the recovery requests of the owners this wallet
// guards, and of this wallet itself, after pulling the ledger.
func (w *Wallet) RecoveryRequests(ctx context.Context) ([]RecoveryRequestInfo, error) {
	defer w.holdLedger()()
	if err := w.catchUp(ctx); err != nil {
		return nil, err
	}
	return w.recoveryRequests(false)
}

// ActiveRecoveries lists, from the local ledger only, the recovery
// requests still waiting or open among those RecoveryRequests lists: what
// inbox and log point out.
func (w *Wallet) ActiveRecoveries() ([]RecoveryRequestInfo, error) {
	return w.recoveryRequests(true)
}

func (w *Wallet) recoveryRequests(active bool) ([]RecoveryRequestInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	now := w.Now()
	out := []RecoveryRequestInfo{}
	l.View(func(v *consent.View) {
		for _, r := range v.AllRecoveries() {
			if s, ok := v.GuardianSet(r.Owner); r.Owner != w.ID() && !(ok && s.Guards(w.ID())) {
				continue
			}
			ri := w.recoveryInfo(v, r, now)
			if !active || ri.Status == RecoveryWaiting || ri.Status == RecoveryOpen {
				out = append(out, ri)
			}
		}
	})
	return out, nil
}

// findRecovery finds a request by its code or a prefix of its ID (at
// least 8 hex characters).
func findRecovery(v *consent.View, ref string) (*consent.RecoveryInfo, error) {
	code := normalCode(ref)
	var hits []*consent.RecoveryInfo
	for _, r := range v.AllRecoveries() {
		if normalCode(RequestCode(r.ID)) == code || len(ref) >= 8 && strings.HasPrefix(r.ID.String(), strings.ToLower(ref)) {
			hits = append(hits, r)
		}
	}
	switch len(hits) {
	case 0:
		return nil, &NotFoundError{Kind: KindRecovery, Ref: ref}
	case 1:
		return hits[0], nil
	}
	return nil, fmt.Errorf("%q matches %d recovery requests: %w", ref, len(hits), ErrInvalid)
}

// ErrRecoveryClosed reports a recovery request a guardian may not (or no
// longer) approve: refused, completed, waiting, or of a replaced set.
// It wraps ErrDenied.
var ErrRecoveryClosed = fmt.Errorf("the recovery request is closed to approvals: %w", ErrDenied)

// ApproveRecovery hands this guardian's piece to the new machine of the
// request named by code: it pulls the ledger, checks that the request
// asks the owner's current guardian set, that this wallet is one of its
// guardians, that the waiting period is over and that the owner did not
// refuse; then it asks confirm (when not nil) with the request's details,
// and only if confirm returns nil decrypts its piece, encrypts it to the
// request's recipient and publishes the approval.
func (w *Wallet) ApproveRecovery(ctx context.Context, code string, confirm func(RecoveryRequestInfo) error) (RecoveryRequestInfo, error) {
	defer w.holdLedger()()
	var out RecoveryRequestInfo
	if err := w.catchUp(ctx); err != nil {
		return out, err
	}
	id, err := w.Identity()
	if err != nil {
		return out, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return out, err
	}
	now := w.Now()
	var r *consent.RecoveryInfo
	var set *consent.GuardianSetInfo
	l.View(func(v *consent.View) {
		if r, err = findRecovery(v, code); err != nil {
			return
		}
		out = w.recoveryInfo(v, r, now)
		set, _ = v.GuardianSet(r.Owner)
	})
	l.Close()
	if err != nil {
		return out, err
	}
	who := out.OwnerName
	if who == "" {
		who = r.Owner.Short()
	}
	switch {
	case set == nil || !set.Guards(w.ID()):
		return out, fmt.Errorf("you are not a guardian of %s: %w", who, ErrDenied)
	case out.ApprovedByMe:
		return out, fmt.Errorf("you already approved this recovery of %s: %w", who, ErrExists)
	case out.Status == RecoveryWaiting:
		return out, fmt.Errorf("%w: its waiting period ends %s; approve after that", ErrRecoveryClosed, out.Ready.Format(time.RFC3339))
	case out.Status != RecoveryOpen:
		return out, fmt.Errorf("%w: it is %s", ErrRecoveryClosed, out.Status)
	}
	if confirm != nil {
		if err := confirm(out); err != nil {
			return out, err
		}
	}
	gp, _ := set.Piece(w.ID())
	pp, err := decryptWith(gp.Piece, id.Opener(), 4096)
	if err != nil {
		return out, fmt.Errorf("your piece does not open with your key: %w", ErrVerify)
	}
	p, err := decodePiece(pp, r.Owner, set.Set)
	if err != nil {
		return out, err
	}
	commit, err := decodeCommitments(set.Commitments)
	if err != nil {
		return out, err
	}
	if _, err := p.share(int(set.Threshold), commit); err != nil {
		return out, err
	}
	to, err := age.ParseX25519Recipient(r.Recipient)
	if err != nil {
		return out, fmt.Errorf("the request's recipient is not an X25519 key: %w", ErrInvalid)
	}
	ct, err := encryptTo(pp, to)
	if err != nil {
		return out, err
	}
	err = w.appendAndPublish(ctx, consent.KindRecoveryApproval, &consent.RecoveryApprovalBody{Request: r.ID, Set: set.Set, Piece: ct},
		func(v *consent.View, _ *consent.Entry) { out = w.recoveryInfo(v, r, now) })
	if err != nil {
		return out, fmt.Errorf("the approval: %w", err)
	}
	return out, nil
}

// dialKey dials the network of cfg with key (a recovery's fresh key).
func dialKey(ctx context.Context, cfg Config, key ed25519.PrivateKey) (*client.Client, error) {
	w := &Wallet{cfg: cfg, sec: &Identity{Signing: key}}
	return w.Dial(ctx)
}
