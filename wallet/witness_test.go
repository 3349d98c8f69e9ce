package wallet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/p2p/witness"
)

// After each publish, three of the devnet's four peers cosign a checkpoint
// of the wallet's feed; the export carries it and audits clean, and the
// wallet's own audit reports it. A witness that cosigned a smaller size is
// brought forward by a consistency proof.
func TestPublishWitnessesTheFeed(t *testing.T) {
	ctx, netPath := startDevnet(t)
	w := rotateWallet(t, netPath, "Alice", "patient")
	anchor := func(label string) {
		l, signer, err := w.openLedger(true)
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.Append(signer, w.Now(), consent.KindAnchor, &consent.AnchorBody{Record: "00112233445566778899aabbccddeeff",
			Manifest: consent.HashBytes([]byte(label))})
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, label := range []string{"one", "two"} {
		anchor(label)
		if err := w.publishFeed(ctx); err != nil {
			t.Fatal(err)
		}
		certs, notes, err := w.witnessedCheckpoints()
		if err != nil || len(certs) != 1 || len(notes) != 1 {
			t.Fatalf("after publish %d: %v, %d certs, %d notes", i+1, err, len(certs), len(notes))
		}
		sc, err := consent.OpenCheckpoint(notes[0], certs[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Size != uint64(i+2) || len(sc.Cosigners) != DefaultWitnesses {
			t.Fatalf("after publish %d: size %d, %d cosigners", i+1, sc.Size, len(sc.Cosigners))
		}
	}
	var buf bytes.Buffer
	if _, err := w.ExportLedger(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte(consent.ExportMagicCheckpoints)) {
		t.Fatal("the export carries no checkpoints")
	}
	rep, err := AuditExport(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Checkpoints) != 1 || rep.Checkpoints[0].Author != w.ID() || rep.Checkpoints[0].Size != 3 {
		t.Fatalf("export audit: %+v %+v", rep.Findings, rep.Checkpoints)
	}
	local, err := w.AuditLedger(ctx)
	if err != nil || !local.OK() || len(local.Checkpoints) != 1 {
		t.Fatalf("local audit: %v %+v", err, local)
	}
}

// A witness that cosigned another branch of the wallet's feed (a second
// device, a stolen key) answers conflict; the wallet keeps that note as
// evidence, and its audit reports the fork with both checkpoints.
func TestWitnessConflictBecomesEvidence(t *testing.T) {
	ctx, netPath := startDevnet(t)
	w := rotateWallet(t, netPath, "Alice", "patient")
	w.cfg.Witnesses = 4
	l, signer, err := w.openLedger(true)
	if err != nil {
		t.Fatal(err)
	}
	var head consent.Head
	l.View(func(v *consent.View) { head = v.Head(w.ID()) })
	// The other branch: an anchor at seq 2 that this wallet never holds.
	other, err := consent.NewEntry(signer, head, w.Now(), consent.KindAnchor, &consent.AnchorBody{
		Record: "00112233445566778899aabbccddeeff", Manifest: consent.HashBytes([]byte("elsewhere"))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(signer, w.Now(), consent.KindAnchor, &consent.AnchorBody{Record: "00112233445566778899aabbccddeeff",
		Manifest: consent.HashBytes([]byte("here"))})
	var feed []*consent.Entry
	l.View(func(v *consent.View) { feed = v.Feed(w.ID()) })
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := consent.DeriveCheckpointKey(signer)
	root, _ := consent.NewTree([]consent.Hash{feed[0].Hash(), other.Hash()}).Root(2)
	forged, _ := key.Sign(2, root)

	// The other branch reaches one witness first.
	n, err := netfile.Read(netPath)
	if err != nil {
		t.Fatal(err)
	}
	_, eph, _ := ed25519.GenerateKey(nil)
	c, err := client.Dial(ctx, eph, n.Peers[:1])
	if err != nil {
		t.Fatal(err)
	}
	resp, err := witness.Submit(ctx, c.Host(), c.Reachable()[0], &witness.Request{Note: forged, Key: key.Public()})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	forgedCosigned := consent.AddCosignatures(forged, resp.Cosignature)

	res, err := w.Witness(ctx, feed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts != 1 || len(res.Cosigners) != 3 {
		t.Fatalf("witnessing: %+v", res)
	}
	rep, err := w.AuditLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Forks) != 1 || len(rep.Forks[0].Evidence) != 2 {
		t.Fatalf("audit: %+v %+v", rep.Findings, rep.Forks)
	}
	found := false
	for _, e := range rep.Forks[0].Evidence {
		found = found || e.Note == string(forgedCosigned)
	}
	if !found {
		t.Fatalf("the witness's note is not in the evidence: %+v", rep.Forks[0].Evidence)
	}
}

// With more peers than witnesses, the peers that hold the wallet's shares
// and manifests are asked last: a record of 2+1 shares on a devnet of 8
// peers, with its manifest copies on the share holders
// (Client.PutManifest), leaves 5 peers that hold none of it, and the 3
// witnesses are among them. (Before manifest copies followed the shares,
// they could land on three other peers, leaving only two outside.)
func TestWitnessesOutsideTheServingSet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 8, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	w := rotateWallet(t, dn.NetworkPath(), "Alice", "patient")
	info, err := w.AddRecord(ctx, bytes.NewReader([]byte("a small record")), AddRecordOptions{Label: "note", K: 2, N: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	serving := map[string]bool{}
	for _, s := range info.Shares {
		for _, p := range c.Holders(ctx, s) {
			serving[p.String()] = true
		}
	}
	shareHolders := len(serving)
	for _, p := range c.Reachable() {
		if cs, _ := manifests.ListFor(ctx, c.Host(), p, w.ID(), info.ID, ""); len(cs) > 0 {
			if !serving[p.String()] && shareHolders >= ManifestReplicas {
				t.Errorf("a manifest copy is on %s, which holds no share", p)
			}
			serving[p.String()] = true
		}
	}
	if len(serving) < 3 || len(serving) > 5 {
		t.Fatalf("%d serving peers", len(serving))
	}
	_, notes, err := w.witnessedCheckpoints()
	if err != nil || len(notes) != 1 {
		t.Fatalf("%v, %d notes", err, len(notes))
	}
	certs, _, _ := w.witnessedCheckpoints()
	sc, err := consent.OpenCheckpoint(notes[0], certs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Cosigners) != 3 {
		t.Fatalf("%d cosigners", len(sc.Cosigners))
	}
	// The wallet ranks by what it placed (placement.json): a put it gave
	// up on may still land on a slow peer, which then holds a share the
	// wallet does not know of, so the property is checked against the
	// placement, and the holders found above only bound its size.
	placed, err := w.servingSet(nil)
	if err != nil || len(placed) == 0 {
		t.Fatalf("placement: %v, %d peers", err, len(placed))
	}
	for _, cs := range sc.Cosigners {
		if slices.Contains(placed, cs.Witness) {
			t.Errorf("witness %s is in the wallet's serving set %v (holders found: %v)", cs.Witness.Short(), placed, serving)
		}
	}
}

// A witness that answers ok with a cosignature that does not verify is
// not kept: the wallet's checkpoint and its audit stay clean.
func TestBogusCosignatureNotKept(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	// The bogus witness answers with its cosignature of another note: the
	// right key and format, a signature that does not verify.
	_, priv, _ := ed25519.GenerateKey(nil)
	sk, _ := crypto.UnmarshalEd25519PrivateKey(priv)
	bogus, err := libp2p.New(libp2p.Identity(sk), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer bogus.Close()
	bogusSigner, _ := consent.NewKeySigner(priv)
	otherKey, _ := consent.DeriveCheckpointKey(bogusSigner)
	otherNote, _ := otherKey.Sign(1, consent.Hash{})
	line, err := consent.Cosign(otherNote, bogusSigner, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bogus.SetStreamHandler(witness.ID, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(s, 1))
		_ = wire.Write(s, witness.Response{Code: witness.CodeOK, Cosignature: line})
	})
	cfg := memConfig(t)
	cfg.Network = dn.NetworkPath()
	cfg.Witnesses = 2
	if err := netfile.Write(cfg.Network, netfile.Network{Peers: append(dn.Addrs(),
		bogus.Addrs()[0].String()+"/p2p/"+bogus.ID().String())}); err != nil {
		t.Fatal(err)
	}
	w, err := Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := w.openLedger(true)
	if err != nil {
		t.Fatal(err)
	}
	var feed []*consent.Entry
	l.View(func(v *consent.View) { feed = v.Feed(w.ID()) })
	l.Close()
	res, err := w.Witness(ctx, feed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cosigners) != 1 || res.Cosigners[0] == bogus.ID().String() {
		t.Fatalf("cosigners %v", res.Cosigners)
	}
	rep, err := w.AuditLedger(ctx)
	if err != nil || !rep.OK() || len(rep.Checkpoints) != 1 || len(rep.Checkpoints[0].Cosigners) != 1 {
		t.Fatalf("audit: %v %+v", err, rep)
	}
}
