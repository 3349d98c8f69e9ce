// Package demo tells the medwallet story end to end on one machine: it
// creates a patient, a clinician and an insurer in a temporary directory,
// runs every use case through the same wallet functions the CLI calls, and
// checks that each step behaved as it should.
//
// The demo's keys live in memory only; nothing touches the user's keyring.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// Options configure a demo run.
type Options struct {
	// Dir is where the demo's wallets live; "" means a temporary directory
	// that is removed afterwards.
	Dir string
	// DataDir holds sample records (../shared/data in a checkout); "" uses
	// the records built into the demo.
	DataDir string
	// Out receives the narration.
	Out io.Writer
}

// ErrStep reports a step that did not behave as it should.
var ErrStep = errors.New("demo step failed")

type runner struct {
	opts Options
	dir  string
	n    int
}

func (r *runner) step(title string) {
	r.n++
	fmt.Fprintf(r.opts.Out, "\n%d. %s\n", r.n, title)
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "   "+format+"\n", args...)
}

func (r *runner) ok(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "   ok: "+format+"\n", args...)
}

func (r *runner) fail(format string, args ...any) error {
	return fmt.Errorf("%w: step %d: %s", ErrStep, r.n, fmt.Sprintf(format, args...))
}

func (r *runner) cfg(name string) wallet.Config {
	return wallet.Config{Home: filepath.Join(r.dir, name), Keystore: keystore.NewMemory()}
}

// Run plays the demo. It returns nil only if every step behaved as it should.
func Run(_ context.Context, opts Options) (err error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	r := &runner{opts: opts, dir: opts.Dir}
	if r.dir == "" {
		r.dir, err = os.MkdirTemp("", "medwallet-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(r.dir)
	}
	fmt.Fprintf(opts.Out, "medwallet demo in %s (keys in memory only)\n", r.dir)

	r.step("Three people create identities")
	alice, err := wallet.Init(r.cfg("alice"), "Alice Example", "patient")
	if err != nil {
		return err
	}
	bob, err := wallet.Init(r.cfg("bob"), "Dr Bob Jones", "clinician")
	if err != nil {
		return err
	}
	ivy, err := wallet.Init(r.cfg("insurer"), "Ivy Insurance", "insurer")
	if err != nil {
		return err
	}
	for _, w := range []*wallet.Wallet{alice, bob, ivy} {
		r.say("%-14s %-9s %s", w.Card().Name, w.Card().Role, w.ID())
	}

	r.step("They exchange signed identity cards")
	if _, err := alice.AddContact("Dr Bob", bob.Card().String()); err != nil {
		return err
	}
	if _, err := alice.AddContact("Ivy", ivy.Card().String()); err != nil {
		return err
	}
	if _, err := bob.AddContact("Alice", alice.Card().String()); err != nil {
		return err
	}
	r.ok("Alice saved Dr Bob and Ivy; Dr Bob saved Alice")
	forged := []byte(bob.Card().String())
	forged[len(forged)-5] ^= 1
	if _, err := alice.AddContact("Mallory", string(forged)); err == nil {
		return r.fail("a tampered card was accepted")
	}
	r.ok("a card with one changed character is refused")

	r.step("Alice backs up her identity and restores it on a new machine")
	var backup bytes.Buffer
	if err := alice.ExportKey(&backup, "correct horse battery staple"); err != nil {
		return err
	}
	if _, err := wallet.ImportKey(r.cfg("alice-new"), backup.Bytes(), "wrong guess"); err == nil {
		return r.fail("a wrong backup passphrase was accepted")
	}
	r.ok("a wrong backup passphrase is refused")
	restored, err := wallet.ImportKey(r.cfg("alice-new"), backup.Bytes(), "correct horse battery staple")
	if err != nil {
		return err
	}
	if restored.ID() != alice.ID() {
		return r.fail("restored ID %s differs from %s", restored.ID(), alice.ID())
	}
	r.ok("restored with the same ID %s", restored.ID().Short())

	fmt.Fprintf(opts.Out, "\nevery step behaved as it should\n")
	return nil
}
