package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/medwallet/medwallet/internal/testutil"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/p2p/serving"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

// TestMain checks that no test leaks a goroutine. The reach benchmark
// imports the wallet, and with it 99designs/keyring, whose init connects
// to the D-Bus session bus when there is one (as under scripts/test.sh):
// that connection's reader is the library's, made at import, not a leak
// of ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/godbus/dbus.(*Conn).inWorker"))
}

type actor struct {
	key    ed25519.PrivateKey
	signer *consent.KeySigner
	c      *Client
}

func newActor(t *testing.T, d *devnet.Devnet) *actor {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	s, _ := consent.NewKeySigner(key)
	c, err := Dial(context.Background(), key, d.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &actor{key: key, signer: s, c: c}
}

func startDevnet(t *testing.T, n int) *devnet.Devnet {
	t.Helper()
	d, err := devnet.Start(context.Background(), devnet.Options{Peers: n, Dir: t.TempDir(), SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestSealGrantFetchAcrossPeers(t *testing.T) {
	ctx := context.Background()
	d := startDevnet(t, 6)
	addrs := d.Addrs()
	patient, clinician := newActor(t, d), newActor(t, d)
	if err := patient.c.Require(6); err != nil {
		t.Fatal(err)
	}

	data := make([]byte, 5<<20+123)
	rand.Read(data)
	m, err := vault.Seal(ctx, bytes.NewReader(data), patient.c.ShareSink(), vault.SealOptions{
		Params: vault.Params{K: 4, N: 6, StripeSize: 1 << 20}, Owner: patient.key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	// Distinct peers hold the six shares, one each.
	holders := map[string]bool{}
	for _, s := range m.Shares {
		hs := patient.c.Holders(ctx, s.ID)
		if len(hs) != 1 {
			t.Fatalf("share held by %d peers, want 1", len(hs))
		}
		if holders[hs[0].String()] {
			t.Fatal("two shares of one record on one peer")
		}
		holders[hs[0].String()] = true
	}

	// Grant the clinician, pushed through one peer and gossiped to all.
	record := m.RecordID.String()
	gl, _ := consent.OpenLedger(consent.NewMemStore())
	g, err := gl.Append(patient.signer, time.Now(), consent.KindGrant, &consent.Grant{
		Grantee: clinician.signer.ID(), Records: []string{record}, Scopes: []string{"patient/*.rs"},
		Purpose: "TREAT", NotBefore: time.Now().Add(-time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := patient.c.Push(ctx, []*consent.Entry{g}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the grant reaches every peer", func() bool {
		for _, p := range d.Peers {
			found := false
			p.Ledger.View(func(v *consent.View) { _, found = v.Grant(g.Hash()) })
			if !found {
				return false
			}
		}
		return true
	})

	access := Access{Owner: patient.signer.ID(), Record: record, Scope: "patient/*.rs", Purpose: "TREAT"}
	var out bytes.Buffer
	if err := vault.Open(ctx, m, clinician.c.Getter(access), &out, vault.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("fetched record differs")
	}

	// A stranger is denied by every peer it asks.
	stranger := newActor(t, d)
	sg := stranger.c.Getter(Access{Owner: patient.signer.ID(), Record: record, Scope: "patient/*.rs", Purpose: "TREAT"})
	if err := vault.Open(ctx, m, sg, &bytes.Buffer{}, vault.OpenOptions{}); err == nil {
		t.Fatal("a stranger opened the record")
	}
	if len(sg.Denials) == 0 {
		t.Fatal("no denial recorded for the stranger")
	}
	for _, de := range sg.Denials {
		if de.Reason != consent.ReasonWrongGrantee {
			t.Fatalf("stranger denied with %s, want wrong-grantee", de.Reason)
		}
	}

	// Two peers down (n-k): the record still opens, byte for byte.
	d.Peers[0].Close()
	d.Peers[1].Close()
	c2, err := Dial(ctx, clinician.key, addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	out.Reset()
	if err := vault.Open(ctx, m, c2.Getter(access), &out, vault.OpenOptions{}); err != nil {
		t.Fatalf("with two peers down: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("fetched record differs with two peers down")
	}
	// A third peer down: fewer than k shares, a clear error.
	d.Peers[2].Close()
	c3, _ := Dial(ctx, clinician.key, addrs)
	defer c3.Close()
	err = vault.Open(ctx, m, c3.Getter(access), &bytes.Buffer{}, vault.OpenOptions{})
	if !errors.Is(err, vault.ErrNotEnoughShares) {
		t.Fatalf("with three peers down: %v, want ErrNotEnoughShares", err)
	}
}

func TestRevocationStopsEveryPeer(t *testing.T) {
	ctx := context.Background()
	d := startDevnet(t, 5)
	patient, clinician := newActor(t, d), newActor(t, d)
	data := make([]byte, 64<<10)
	rand.Read(data)
	m, err := vault.Seal(ctx, bytes.NewReader(data), patient.c.ShareSink(), vault.SealOptions{
		Params: vault.Params{K: 3, N: 5}, Owner: patient.key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	record := m.RecordID.String()
	gl, _ := consent.OpenLedger(consent.NewMemStore())
	g, _ := gl.Append(patient.signer, time.Now(), consent.KindGrant, &consent.Grant{
		Grantee: clinician.signer.ID(), Records: []string{record}, Scopes: []string{"patient/*.rs"},
		Purpose: "TREAT", NotBefore: time.Now().Add(-time.Minute).Unix()})
	r, _ := gl.Append(patient.signer, time.Now(), consent.KindRevoke, &consent.RevokeBody{Grant: g.Hash()})
	if _, err := patient.c.Push(ctx, []*consent.Entry{g, r}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the revocation reaches every peer", func() bool {
		for _, p := range d.Peers {
			revoked := false
			p.Ledger.View(func(v *consent.View) { revoked = v.Revoked(g.Hash()) })
			if !revoked {
				return false
			}
		}
		return true
	})
	access := Access{Owner: patient.signer.ID(), Record: record, Scope: "patient/*.rs", Purpose: "TREAT"}
	for i, s := range m.Shares {
		for _, p := range clinician.c.Holders(ctx, s.ID) {
			req, _ := clinician.c.SignRequest(access)
			_, err := shares.Get(ctx, clinician.c.Host(), p, s.ID, req)
			var de *shares.DeniedError
			if !errors.As(err, &de) || de.Reason != consent.ReasonRevoked {
				t.Fatalf("share %d after revocation: %v, want a revoked denial", i, err)
			}
		}
	}
}

// testFeed returns n chained anchors of s's feed, dated in the last hour.
func testFeed(t testing.TB, s consent.Signer, n int) []*consent.Entry {
	t.Helper()
	var out []*consent.Entry
	var head consent.Head
	start := time.Now().Add(-time.Hour)
	for i := range n {
		e, err := consent.NewEntry(s, head, start.Add(time.Duration(i)*time.Millisecond), consent.KindAnchor,
			&consent.AnchorBody{Record: fmt.Sprintf("%032x", i), Manifest: consent.HashBytes(fmt.Appendf(nil, "m%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		head = consent.Head{Seq: e.Seq, Hash: e.Hash(), Time: e.Time}
	}
	return out
}

// A pull from several peers that hold the same feed fetches each entry
// once, in batches: a later peer is asked only for what the earlier ones
// lacked; and a pull from a held seq fetches only what follows it.
func TestPullAsksEachPeerOnlyForWhatItLacks(t *testing.T) {
	ctx := context.Background()
	d := startDevnet(t, 3)
	patient := newActor(t, d)
	feed := testFeed(t, patient.signer, 650)
	// Peers keep the feeds of the patients they serve: the patient
	// enrols them first, as its wallet does.
	for _, p := range patient.c.Reachable() {
		if err := serving.Enrol(ctx, patient.c.Host(), p, serving.Secret{1}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := patient.c.Push(ctx, feed); err != nil || len(ok) != 3 {
		t.Fatalf("push took by %d peers: %v", len(ok), err)
	}
	// The reader is the patient's other device: only the patient and the
	// parties its entries name read its feed.
	rc, err := Dial(ctx, patient.key, d.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	reader := &actor{key: patient.key, signer: patient.signer, c: rc}
	have := map[consent.ID]uint64{}
	got, batches, biggest := 0, 0, 0
	err = reader.c.PullInto(ctx, have, func(es []*consent.Entry) error {
		got += len(es)
		batches++
		biggest = max(biggest, len(es))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(feed) || have[patient.signer.ID()] != uint64(len(feed)) {
		t.Fatalf("pulled %d entries (have %d) from 3 peers holding %d", got, have[patient.signer.ID()], len(feed))
	}
	if biggest > pullCommit || batches < 1 {
		t.Errorf("%d batches, the biggest of %d entries", batches, biggest)
	}
	have = map[consent.ID]uint64{patient.signer.ID(): 600}
	es, err := reader.c.Pull(ctx, have)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 50 || es[0].Seq != 601 {
		t.Fatalf("pull from seq 600 got %d entries", len(es))
	}
}
