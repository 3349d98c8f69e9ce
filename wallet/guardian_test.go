package wallet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/cloudflare/circl/secretsharing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
)

// guardianWallet makes a wallet on the devnet whose clock runs skew off
// the real one.
func guardianWallet(t *testing.T, netPath, name string, skew time.Duration) *Wallet {
	t.Helper()
	cfg := memConfig(t)
	cfg.Network = netPath
	cfg.Witnesses = -1
	cfg.Now = func() time.Time { return time.Now().Add(skew) }
	w, err := Init(cfg, name, "patient")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// newMachine is the config of an empty home on the devnet, its clock
// skew off.
func newMachine(t *testing.T, netPath string, skew time.Duration) Config {
	cfg := memConfig(t)
	cfg.Network = netPath
	cfg.Witnesses = -1
	cfg.Now = func() time.Time { return time.Now().Add(skew) }
	return cfg
}

// TestGuardianDelayRefuseRotate: within a waiting period guardians do not
// approve; the owner's refusal stops a recovery for good; once the waiting
// period is over an unrefused recovery completes; after a rotation, the
// old set's pieces (even all of them, rebuilt into the old secret) open
// nothing, and a request of the old set cannot be approved or finished.
//
// The waiting period runs on the clocks of the wallets: the owner and the
// requesters of the first two requests live two hours in the past, so
// that a one-hour waiting period is over for the guardians, who live now.
func TestGuardianDelayRefuseRotate(t *testing.T) {
	ctx, dn := newDevnet(t, devnet.Options{Peers: 3, SyncInterval: time.Second})
	net := dn.NetworkPath()
	past := -2 * time.Hour
	alice := guardianWallet(t, net, "Alice", past)
	bob := guardianWallet(t, net, "Bob", 0)
	carol := guardianWallet(t, net, "Carol", 0)
	dan := guardianWallet(t, net, "Dan", 0)
	for _, g := range []*Wallet{bob, carol, dan} {
		if _, err := alice.AddContact(g.Card().Name, g.Card().String()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.SetGuardians(ctx, GuardianOptions{Threshold: 2, Guardians: []string{"Bob", "Carol", "Dan"}}, false); err != nil {
		t.Fatal(err)
	}
	start := func(cfg Config, delay time.Duration) RecoveryRequestInfo {
		t.Helper()
		r, err := StartRecovery(ctx, cfg, RecoverOptions{Owner: string(alice.ID()), Delay: delay})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	approve := func(g *Wallet, code string, want error) {
		t.Helper()
		if _, err := g.ApproveRecovery(ctx, code, nil); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("%s approves: %v, want %v", g.Card().Name, err, want)
		}
	}

	// 1. A request in its waiting period (started now, one hour): no
	// guardian approves it yet; the owner sees it and may refuse it.
	waiting := start(newMachine(t, net, 0), time.Hour)
	approve(bob, waiting.Code, ErrRecoveryClosed)
	rs, err := alice.RecoveryRequests(ctx)
	if err != nil || len(rs) != 1 || rs[0].Status != RecoveryWaiting {
		t.Fatalf("the owner sees %+v, %v; want one waiting request", rs, err)
	}

	// 2. Refused within its waiting period: never approved, never finished,
	// even after the period is over.
	refusedCfg := newMachine(t, net, past)
	refused := start(refusedCfg, time.Hour)
	if _, err := alice.RefuseRecovery(ctx, refused.Code); err != nil {
		t.Fatal(err)
	}
	approve(bob, refused.Code, ErrRecoveryClosed)
	approve(carol, refused.Code, ErrRecoveryClosed)
	if _, p, err := FinishRecovery(ctx, refusedCfg); !errors.Is(err, ErrRecoveryPending) || p.Approvals != 0 {
		t.Fatalf("a refused recovery finishes: %+v, %v", p, err)
	}

	// 3. Not refused, waiting period over: two approvals bring Alice back.
	okCfg := newMachine(t, net, past)
	ok := start(okCfg, time.Hour)
	approve(bob, ok.Code, nil)
	approve(dan, ok.Code, nil)
	w, p, err := FinishRecovery(ctx, okCfg)
	if err != nil || !p.Done || w.ID() != alice.ID() {
		t.Fatalf("recovery: %+v, %v", p, err)
	}
	// Too late to refuse it now.
	if _, err := alice.RefuseRecovery(ctx, ok.Code); !errors.Is(err, ErrRecoveryClosed) {
		t.Fatalf("a refusal after the waiting period: %v", err)
	}

	// 4. Rotation. Keep the old set, and every old piece in the clear (as
	// a guardian could), then rotate to Carol and Dan only.
	old, err := alice.currentGuardianSet()
	if err != nil {
		t.Fatal(err)
	}
	var oldShares []secretsharing.Share
	for _, g := range []*Wallet{bob, carol, dan} {
		oldShares = append(oldShares, openPiece(t, g, old))
	}
	c0, err := alice.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldCopies, err := c0.ListManifestsFor(ctx, alice.ID(), consent.SealedIdentityRecord(alice.ID()), alice.ID())
	c0.Close()
	if err != nil || len(oldCopies) == 0 {
		t.Fatalf("no sealed identity before the rotation: %v", err)
	}
	staleCfg := newMachine(t, net, 0)
	stale := start(staleCfg, 0) // asks the old set
	approve(bob, stale.Code, nil)
	if _, err := alice.SetGuardians(ctx, GuardianOptions{Threshold: 2, Guardians: []string{"Carol", "Dan"}}, true); err != nil {
		t.Fatal(err)
	}
	// The old secret, rebuilt from every old piece, opens no blob the
	// peers hold.
	oldSecret, err := secretsharing.Recover(uint(old.Threshold-1), oldShares)
	if err != nil {
		t.Fatal(err)
	}
	c, err := alice.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	copies, err := c.ListManifestsFor(ctx, alice.ID(), consent.SealedIdentityRecord(alice.ID()), alice.ID())
	c.Close()
	if err != nil || len(copies) == 0 {
		t.Fatalf("no sealed identity on the peers: %v", err)
	}
	for _, cp := range copies {
		b, err := openBlobHeader(cp.Envelope, alice.ID())
		if err != nil {
			t.Fatal(err)
		}
		if b.Set == old.Set {
			t.Fatal("a peer still holds the old set's sealed identity")
		}
		if _, err := b.unseal(oldSecret); !errors.Is(err, ErrVerify) {
			t.Fatalf("the old secret opens the new sealed identity: %v", err)
		}
	}
	// A peer that missed the rotation (here: the old copy put back on one
	// peer) gets the new one at the owner's next sync.
	c1, err := alice.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.PutManifest(ctx, consent.SealedIdentityRecord(alice.ID()), alice.ID(), oldCopies[0].Envelope, 1); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := alice.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := c2.ListManifestsFor(ctx, alice.ID(), consent.SealedIdentityRecord(alice.ID()), alice.ID())
	c2.Close()
	if err != nil || len(after) != 1 {
		t.Fatalf("after a sync the peers hold %d different sealed identities (%v), want 1", len(after), err)
	}
	if b, _ := openBlobHeader(after[0].Envelope, alice.ID()); b == nil || b.Set == old.Set {
		t.Fatal("the old sealed identity survived the sync")
	}
	// The request of the old set: no more approvals, no recovery.
	approve(carol, stale.Code, ErrRecoveryClosed)
	if _, _, err := FinishRecovery(ctx, staleCfg); !errors.Is(err, ErrRecoveryClosed) {
		t.Fatalf("a request of the old set finishes: %v", err)
	}
	// Bob, no longer a guardian, does not even see a new request (the
	// peers no longer let him read it); Carol and Dan approve it.
	newCfg := newMachine(t, net, 0)
	fresh := start(newCfg, 0)
	approve(bob, fresh.Code, ErrNotFound)
	approve(carol, fresh.Code, nil)
	approve(dan, fresh.Code, nil)
	if w, _, err := FinishRecovery(ctx, newCfg); err != nil || w.ID() != alice.ID() {
		t.Fatalf("recovery through the new set: %v", err)
	}
}

// openPiece decrypts g's piece of set, as a guardian can.
func openPiece(t *testing.T, g *Wallet, set *consent.GuardianSetInfo) secretsharing.Share {
	t.Helper()
	id, err := g.Identity()
	if err != nil {
		t.Fatal(err)
	}
	gp, _ := set.Piece(g.ID())
	b, err := decryptWith(gp.Piece, id.Age, 4096)
	if err != nil {
		t.Fatal(err)
	}
	p, err := decodePiece(b, set.Owner, set.Set)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := decodeCommitments(set.Commitments)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.share(int(set.Threshold), commit)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGuardianPiecesBelowThreshold: fewer pieces than the threshold do
// not rebuild the secret, a forged piece is caught by the commitments, a
// blob not signed by its owner is refused, and any threshold of pieces
// opens the sealed identity: the key export's bytes.
func TestGuardianPiecesBelowThreshold(t *testing.T) {
	alice, err := Init(memConfig(t), "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := alice.Identity()
	plain, err := alice.exportPlain()
	if err != nil {
		t.Fatal(err)
	}
	secret := recoveryGroup.RandomNonZeroScalar(rand.Reader)
	ss := secretsharing.New(rand.Reader, 2, secret) // threshold 3
	shares := ss.Share(5)
	var commits [][]byte
	for _, c := range ss.CommitSecret() {
		b, _ := c.MarshalBinaryCompress()
		commits = append(commits, b)
	}
	key, _ := recoveryKey(secret)
	set := consent.HashBytes([]byte("set"))
	env, err := sealBlob(recoveryBlob{Format: recoveryBlobFormat, Owner: alice.ID(), Set: set, Threshold: 3, Commitments: commits, Time: 1}, key, plain, id.Signing)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := openBlobHeader(env, alice.ID())
	if err != nil {
		t.Fatal(err)
	}
	commit, _ := decodeCommitments(blob.Commitments)
	if _, err := secretsharing.Recover(2, shares[:2]); err == nil {
		t.Fatal("two pieces of a threshold-3 sharing rebuild a secret")
	}
	// Two pieces and a forged third: the commitments catch the forgery.
	forged := recoveryGroup.RandomScalar(rand.Reader)
	fv, _ := forged.MarshalBinary()
	if _, err := (&guardianPiece{Index: 3, Value: fv}).share(3, commit); !errors.Is(err, ErrVerify) {
		t.Fatalf("a forged piece: %v", err)
	}
	// Any three open it, to the key export's bytes.
	for _, pick := range [][]int{{0, 1, 2}, {4, 2, 0}, {1, 3, 4}} {
		var got []secretsharing.Share
		for _, i := range pick {
			v, _ := shares[i].Value.MarshalBinary()
			s, err := (&guardianPiece{Index: uint64(i + 1), Value: v}).share(3, commit)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		rebuilt, err := secretsharing.Recover(2, got)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := blob.unseal(rebuilt)
		if err != nil || !bytes.Equal(opened, plain) {
			t.Fatalf("pieces %v: %v", pick, err)
		}
	}
	// A blob signed by someone else is refused.
	mallory, _ := Init(memConfig(t), "Mallory", "patient")
	mid, _ := mallory.Identity()
	forgedEnv, _ := sealBlob(recoveryBlob{Format: recoveryBlobFormat, Owner: alice.ID(), Set: set, Threshold: 3, Commitments: commits, Time: 2}, key, plain, mid.Signing)
	if _, err := openBlobHeader(forgedEnv, alice.ID()); !errors.Is(err, ErrVerify) {
		t.Fatalf("a blob signed by another key: %v", err)
	}
}
