package wallet

// Recovery on a new machine (StartRecovery, FinishRecovery), and the
// owner's side of it (RefuseRecovery).
//
// The new machine makes a fresh Ed25519 key (the requester: it signs the
// request on a feed of its own, since it holds no identity yet) and a
// fresh age key (the pieces come encrypted to it), both kept in the
// keyring until the recovery finishes. It fetches the owner's signed,
// sealed identity from the peers (anyone may: it opens only with the
// guardians' pieces) to learn the current guardian set, and pushes a
// recovery start naming it. The request code is the start entry's hash,
// shortened. Guardians approve on their own wallets (guardian.go); the
// new machine pulls their approvals, checks every piece against the
// commitments the owner signed, rebuilds the secret from threshold pieces,
// unseals the identity and stores it in its keyring: the same identity.
// It then marks the recovery complete on the owner's feed.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/cloudflare/circl/secretsharing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/wallet/keystore"
)

const (
	recoveryFile      = "recovery.json"
	recoverySecretPfx = "recovery/"
)

// pendingRecovery is recovery.json: public facts of a recovery this home
// started (its secrets are in the keyring).
type pendingRecovery struct {
	Version        int          `json:"version"`
	Owner          consent.ID   `json:"owner"`
	Requester      consent.ID   `json:"requester"`
	Request        consent.Hash `json:"request"`
	Set            consent.Hash `json:"set"`
	Started        time.Time    `json:"started"`
	Delay          int64        `json:"delay,omitempty"`
	KeyringBackend string       `json:"keyring_backend"`
}

// recoverySecret is the keyring item of a pending recovery.
type recoverySecret struct {
	Version     int    `json:"version"`
	Ed25519Seed string `json:"ed25519_seed"`
	AgeIdentity string `json:"age_identity"`
}

// RecoverOptions describe a recovery to start.
type RecoverOptions struct {
	// Owner is the ID of the identity to recover.
	Owner string
	// Delay is the waiting period during which the owner can refuse, and
	// before which guardians do not approve.
	Delay time.Duration
}

// RecoveryProgress says how far a pending recovery is.
type RecoveryProgress struct {
	RecoveryRequestInfo
	// Done is set once the identity is back.
	Done bool `json:"done"`
}

// ErrRecoveryPending reports a recovery that does not have enough
// approvals yet.
var ErrRecoveryPending = errors.New("not enough guardian approvals yet")

// recoveryKeystore opens the keystore of a home that has no wallet yet.
func recoveryKeystore(cfg Config, backend string) (keystore.Keystore, string, error) {
	w := &Wallet{cfg: cfg, backend: backend}
	ks, err := w.keystore()
	if err != nil {
		return nil, "", err
	}
	return ks, w.backend, nil
}

// latestBlob fetches owner's sealed identity from the peers and returns
// the newest one that verifies.
func latestBlob(ctx context.Context, c *client.Client, owner consent.ID) (*recoveryBlob, error) {
	copies, err := c.ListManifestsFor(ctx, owner, consent.SealedIdentityRecord(owner), owner)
	if err != nil {
		return nil, &NetworkError{Op: OpPull, Err: err}
	}
	var best *recoveryBlob
	for _, cp := range copies {
		b, err := openBlobHeader(cp.Envelope, owner)
		if err != nil {
			continue
		}
		if best == nil || b.Time > best.Time {
			best = b
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no peer holds a sealed identity of %s (has it set up guardians?): %w", owner.Short(), ErrNotFound)
	}
	return best, nil
}

// StartRecovery starts recovering the identity cfg.Home will hold. The
// home must hold no wallet and no other pending recovery; it needs a
// network file.
func StartRecovery(ctx context.Context, cfg Config, o RecoverOptions) (RecoveryRequestInfo, error) {
	var out RecoveryRequestInfo
	owner, err := consent.ParseID(o.Owner)
	if err != nil {
		return out, fmt.Errorf("the identity to recover must be an ID (%w): %w", err, ErrInvalid)
	}
	if o.Delay < 0 || o.Delay > consent.MaxRecoveryDelay*time.Second {
		return out, fmt.Errorf("the waiting period must be 0 to %v: %w", consent.MaxRecoveryDelay*time.Second, ErrInvalid)
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, stateFile)); err == nil {
		return out, &ExistsError{Kind: KindWallet, Ref: cfg.Home}
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, recoveryFile)); err == nil {
		return out, fmt.Errorf("a recovery is already pending here ('recover --finish' goes on with it): %w", ErrExists)
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return out, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return out, err
	}
	ageID, err := age.GenerateX25519Identity()
	if err != nil {
		return out, err
	}
	signer, err := consent.NewKeySigner(key)
	if err != nil {
		return out, err
	}
	c, err := dialKey(ctx, cfg, key)
	if err != nil {
		return out, err
	}
	defer c.Close()
	blob, err := latestBlob(ctx, c, owner)
	if err != nil {
		return out, err
	}
	now := cfg.now()
	e, err := consent.NewEntry(signer, consent.Head{}, now, consent.KindRecovery, &consent.RecoveryBody{
		Op: consent.RecoveryStart, Owner: owner, Set: blob.Set, Recipient: ageID.Recipient().String(), Delay: int64(o.Delay / time.Second)})
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	ks, backend, err := recoveryKeystore(cfg, "")
	if err != nil {
		return out, err
	}
	sec, _ := json.Marshal(recoverySecret{Version: 1, Ed25519Seed: base64.StdEncoding.EncodeToString(key.Seed()), AgeIdentity: ageID.String()})
	if err := ks.Set(recoverySecretPfx+string(signer.ID()), sec); err != nil {
		return out, fmt.Errorf("storing the recovery keys in the keyring: %w", err)
	}
	pr := pendingRecovery{Version: 1, Owner: owner, Requester: signer.ID(), Request: e.Hash(), Set: blob.Set,
		Started: now.UTC().Truncate(time.Second), Delay: int64(o.Delay / time.Second), KeyringBackend: backend}
	b, _ := json.MarshalIndent(pr, "", "  ")
	if err := fsutil.WriteFileNew(filepath.Join(cfg.Home, recoveryFile), append(b, '\n'), 0o600); err != nil {
		_ = ks.Remove(recoverySecretPfx + string(signer.ID()))
		return out, err
	}
	if _, err := c.Push(ctx, []*consent.Entry{e}); err != nil {
		// No peer holds the request: nothing is pending, start again.
		_ = os.Remove(filepath.Join(cfg.Home, recoveryFile))
		_ = ks.Remove(recoverySecretPfx + string(signer.ID()))
		return out, &NetworkError{Op: OpPublish, Err: err}
	}
	return pr.info(blob.Threshold, 0), nil
}

func (pr *pendingRecovery) info(threshold, approvals int) RecoveryRequestInfo {
	ri := RecoveryRequestInfo{ID: pr.Request.String(), Code: RequestCode(pr.Request), Owner: pr.Owner, Requester: pr.Requester,
		Started: pr.Started, Ready: pr.Started.Add(time.Duration(pr.Delay) * time.Second), Status: RecoveryOpen,
		Approvals: approvals, Threshold: threshold}
	if pr.Delay > 0 {
		ri.Status = RecoveryWaiting
	}
	return ri
}

func readPending(cfg Config) (*pendingRecovery, error) {
	b, err := os.ReadFile(filepath.Join(cfg.Home, recoveryFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &NotFoundError{Kind: KindRecovery, Ref: cfg.Home}
	}
	if err != nil {
		return nil, err
	}
	var pr pendingRecovery
	if err := json.Unmarshal(b, &pr); err != nil || pr.Version != 1 {
		return nil, fmt.Errorf("%s is damaged: %w", recoveryFile, ErrInvalid)
	}
	return &pr, nil
}

// FinishRecovery goes on with the recovery pending in cfg.Home: with
// enough approvals it restores the identity, marks the recovery complete
// on the ledger and returns the wallet; else it returns the progress and
// an error wrapping ErrRecoveryPending.
func FinishRecovery(ctx context.Context, cfg Config) (*Wallet, RecoveryProgress, error) {
	var out RecoveryProgress
	pr, err := readPending(cfg)
	if err != nil {
		return nil, out, err
	}
	out.RecoveryRequestInfo = pr.info(0, 0)
	ks, _, err := recoveryKeystore(cfg, pr.KeyringBackend)
	if err != nil {
		return nil, out, err
	}
	raw, err := ks.Get(recoverySecretPfx + string(pr.Requester))
	if err != nil {
		return nil, out, fmt.Errorf("the keys of this recovery are not in the keyring: %w", err)
	}
	var rs recoverySecret
	if json.Unmarshal(raw, &rs) != nil || rs.Version != 1 {
		return nil, out, fmt.Errorf("the keyring item of this recovery is damaged: %w", ErrInvalid)
	}
	seed, serr := base64.StdEncoding.DecodeString(rs.Ed25519Seed)
	ageID, aerr := age.ParseX25519Identity(rs.AgeIdentity)
	if serr != nil || len(seed) != ed25519.SeedSize || aerr != nil {
		return nil, out, fmt.Errorf("the keyring item of this recovery is damaged: %w", ErrInvalid)
	}
	c, err := dialKey(ctx, cfg, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, out, err
	}
	defer c.Close()
	blob, err := latestBlob(ctx, c, pr.Owner)
	if err != nil {
		return nil, out, err
	}
	out.Threshold = blob.Threshold
	if blob.Set != pr.Set {
		out.Status = RecoveryStale
		return nil, out, fmt.Errorf("%w: the owner replaced its guardian set since; start again", ErrRecoveryClosed)
	}
	entries, err := c.Pull(ctx, nil)
	if err != nil && !errors.Is(err, client.ErrNoPeers) {
		return nil, out, &NetworkError{Op: OpPull, Err: err}
	}
	v := consent.NewView()
	for _, e := range entries {
		_, _ = v.Ingest(e) // what does not verify is left out
	}
	shares, err := collectShares(v, pr, blob, ageID)
	if err != nil {
		return nil, out, err
	}
	out.Approvals = len(shares)
	if len(shares) < blob.Threshold {
		return nil, out, fmt.Errorf("%w: %d of %d", ErrRecoveryPending, len(shares), blob.Threshold)
	}
	secret, err := secretsharing.Recover(uint(blob.Threshold-1), shares)
	if err != nil {
		return nil, out, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	plain, err := blob.unseal(secret)
	if err != nil {
		return nil, out, err
	}
	card, id, err := parseExportPlain(plain)
	if err != nil {
		return nil, out, err
	}
	if card.ID != pr.Owner {
		return nil, out, fmt.Errorf("the sealed identity is not %s's: %w", pr.Owner.Short(), ErrVerify)
	}
	if cfg.Keyring.Backend == "" {
		cfg.Keyring.Backend = pr.KeyringBackend
	}
	w, err := create(cfg, card, id)
	if err != nil {
		return nil, out, err
	}
	_ = ks.Remove(recoverySecretPfx + string(pr.Requester))
	_ = os.Remove(filepath.Join(cfg.Home, recoveryFile))
	out.Done, out.Status = true, RecoveryCompleted
	// The owner's devices see it: a complete entry on the owner's feed,
	// after catching up with the feed (never fork it).
	defer w.holdLedger()()
	if err := w.catchUp(ctx); err != nil {
		return w, out, err
	}
	if err := w.appendAndPublish(ctx, consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryComplete, Request: pr.Request}, nil); err != nil {
		return w, out, fmt.Errorf("the recovery's completion: %w", err)
	}
	return w, out, nil
}

// collectShares decrypts the approvals of the pending request and keeps
// the pieces that check against the owner's commitments, one per index.
func collectShares(v *consent.View, pr *pendingRecovery, blob *recoveryBlob, me age.Identity) ([]secretsharing.Share, error) {
	commit, err := decodeCommitments(blob.Commitments)
	if err != nil {
		return nil, err
	}
	var shares []secretsharing.Share
	seen := map[uint64]bool{}
	for _, a := range v.ApprovalsFor(pr.Request) {
		if !containsID(blob.Guardians, a.Guardian) {
			continue
		}
		pp, err := decryptWith(a.Piece, me, 4096)
		if err != nil {
			continue
		}
		p, err := decodePiece(pp, pr.Owner, pr.Set)
		if err != nil || seen[p.Index] {
			continue
		}
		s, err := p.share(blob.Threshold, commit)
		if err != nil {
			continue
		}
		seen[p.Index] = true
		shares = append(shares, s)
	}
	return shares, nil
}

func containsID(ids []consent.ID, id consent.ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// RefuseRecovery refuses, as the owner, a recovery of this wallet's
// identity within its waiting period: guardians then do not approve it.
func (w *Wallet) RefuseRecovery(ctx context.Context, ref string) (RecoveryRequestInfo, error) {
	defer w.holdLedger()()
	var out RecoveryRequestInfo
	if err := w.catchUp(ctx); err != nil {
		return out, err
	}
	l, _, err := w.openLedger(false)
	if err != nil {
		return out, err
	}
	now := w.Now()
	var r *consent.RecoveryInfo
	l.View(func(v *consent.View) {
		if r, err = findRecovery(v, ref); err == nil {
			out = w.recoveryInfo(v, r, now)
		}
	})
	l.Close()
	switch {
	case err != nil:
		return out, err
	case r.Owner != w.ID():
		return out, fmt.Errorf("this recovery is of another identity; only its owner can refuse it: %w", ErrDenied)
	case out.Status == RecoveryRefused:
		return out, fmt.Errorf("this recovery is already refused: %w", ErrExists)
	case out.Status == RecoveryCompleted || now.Unix() > r.Ready():
		return out, fmt.Errorf("%w: its waiting period is over (%s); 'guardian rotate' makes its pieces useless", ErrRecoveryClosed, out.Status)
	}
	err = w.appendAndPublish(ctx, consent.KindRecovery, &consent.RecoveryBody{Op: consent.RecoveryRefuse, Request: r.ID},
		func(v *consent.View, _ *consent.Entry) {
			r2, _ := v.Recovery(r.ID)
			out = w.recoveryInfo(v, r2, now)
		})
	if err != nil {
		return out, fmt.Errorf("the refusal: %w", err)
	}
	return out, nil
}
