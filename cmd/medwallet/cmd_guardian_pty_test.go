//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// TestGuardianApproveAsks: on a terminal, 'guardian approve' shows who and
// what and approves only on "y"; "n" approves nothing (exit 4).
func TestGuardianApproveAsks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Peers: 2, Dir: t.TempDir(), SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	dir := t.TempDir()
	net := dn.NetworkPath()
	if out, err := medwalletCmd(ctx, dir, "--network", net, "init", "--name", "Carol").CombinedOutput(); err != nil {
		t.Fatalf("init: %v: %s", err, out)
	}
	carol, err := wallet.Open(wallet.Config{Home: filepath.Join(dir, "home")})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := wallet.Init(wallet.Config{Home: filepath.Join(dir, "alice"), Keystore: keystore.NewMemory(), Network: net, Witnesses: -1}, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact("Carol", carol.Card().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetGuardians(ctx, wallet.GuardianOptions{Threshold: 1, Guardians: []string{"Carol"}}, false); err != nil {
		t.Fatal(err)
	}
	if out, err := medwalletCmd(ctx, dir, "--network", net, "contact", "add", "Alice", alice.Card().String()).CombinedOutput(); err != nil {
		t.Fatalf("contact add: %v: %s", err, out)
	}
	newCfg := wallet.Config{Home: filepath.Join(dir, "new"), Keystore: keystore.NewMemory(), Network: net, Witnesses: -1}
	r, err := wallet.StartRecovery(ctx, newCfg, wallet.RecoverOptions{Owner: string(alice.ID())})
	if err != nil {
		t.Fatal(err)
	}
	approve := func(answer string) ([]byte, error) {
		t.Helper()
		cmd := medwalletCmd(ctx, dir, "--network", net, "guardian", "approve", r.Code)
		ptmx, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		if _, err := io.WriteString(ptmx, answer+"\n"); err != nil {
			t.Fatal(err)
		}
		out := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(ptmx)
			out <- b
		}()
		werr := cmd.Wait()
		select {
		case b := <-out:
			return b, werr
		case <-time.After(10 * time.Second):
			t.Fatal("the terminal was not closed")
		}
		return nil, werr
	}
	b, err := approve("n")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitDenied || !bytes.Contains(b, []byte("Recovery of Alice")) || !bytes.Contains(b, []byte("not approved")) {
		t.Fatalf("answering n: %v\n%s", err, b)
	}
	if _, p, err := wallet.FinishRecovery(ctx, newCfg); !errors.Is(err, wallet.ErrRecoveryPending) || p.Approvals != 0 {
		t.Fatalf("after a declined approval: %+v, %v", p, err)
	}
	if b, err := approve("y"); err != nil || !bytes.Contains(b, []byte("approved the recovery of Alice")) {
		t.Fatalf("answering y: %v\n%s", err, b)
	}
	if w, _, err := wallet.FinishRecovery(ctx, newCfg); err != nil || w.ID() != alice.ID() {
		t.Fatalf("after the approval: %v", err)
	}
}
