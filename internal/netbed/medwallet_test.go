//go:build linux

package netbed_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/netbed"
)

const (
	passphrase = "netbed keyring pass"
	// port is every peer's TCP and QUIC port: each host is its own
	// machine, so they need not differ.
	port = 4001
	// cliTimeout bounds every CLI command: a deadline, not a timing
	// assertion.
	cliTimeout = 90 * time.Second
	// upTimeout bounds a peer's start.
	upTimeout = 60 * time.Second
)

// world is a bed with medwallet peers and wallets on its hosts.
type world struct {
	t   testing.TB
	bed *netbed.Bed
	dir string
	// extraEnv is added to the environment of every process
	// ($MEDWALLET_NETBED_ENV, space-separated: GOLOG_LOG_LEVEL=... to
	// debug libp2p).
	extraEnv []string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	if bin == "" {
		// No binary: Need skips (or fails under the CI gate) for the
		// reason no bed can be built, or -short skipped the build.
		netbed.Need(t)
		t.Skip("-short: the test bed starts peer processes")
	}
	w := &world{t: t, bed: netbed.New(t), dir: t.TempDir(), extraEnv: strings.Fields(os.Getenv("MEDWALLET_NETBED_ENV"))}
	return w
}

// env is the whole environment of a medwallet process: the file keyring
// with its passphrase from the environment, as the other process suites.
func (w *world) env(extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + w.dir,
		"MEDWALLET_KEYRING_BACKEND=file",
		"MEDWALLET_PASSPHRASE=" + passphrase,
		"DBUS_SESSION_BUS_ADDRESS=disabled:",
		"NO_COLOR=1",
	}, append(extra, w.extraEnv...)...)
}

// mwPeer is one `medwallet peer` on a host. Its key is made before it
// starts, so its ID (and a public peer's address) is known up front.
type mwPeer struct {
	name string
	host *netbed.Host
	dir  string
	id   string
	args []string
	// listen replaces the default listen addresses (all interfaces,
	// TCP and QUIC, port 4001).
	listen []string
	proc   *netbed.Proc
	// started is when it was last started.
	started time.Time
}

func (p *mwPeer) addrFile() string { return p.dir + ".addr" }

// direct is the peer's own TCP and QUIC addresses (a public peer's).
func (p *mwPeer) direct() []string {
	return []string{
		fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", p.host.IP, port, p.id),
		fmt.Sprintf("/ip4/%s/udp/%d/quic-v1/p2p/%s", p.host.IP, port, p.id),
	}
}

// newPeer prepares a peer on h; args are its flags beyond the data
// directory, listen addresses and address file.
func (w *world) newPeer(h *netbed.Host, name string, args ...string) *mwPeer {
	t := w.t
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := consent.NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	p := &mwPeer{name: name, host: h, dir: filepath.Join(w.dir, name), id: string(s.ID()), args: args}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "peer.key"), priv.Seed(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start starts p; wait with waitUp.
func (w *world) start(p *mwPeer) {
	w.t.Helper()
	os.Remove(p.addrFile())
	listen := p.listen
	if listen == nil {
		listen = []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port), fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port)}
	}
	args := []string{"peer", "--data", p.dir, "--mdns=false", "--dht=false", "--addr-file", p.addrFile(), "--log-level", "debug"}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	args = append(args, p.args...)
	p.started = time.Now()
	p.proc = p.host.Start(w.t, w.env(), p.dir+".log", bin, args...)
	w.t.Cleanup(func() {
		if w.t.Failed() {
			w.t.Logf("--- last lines of %s's log ---\n%s", p.name, p.proc.Tail(25))
		}
	})
}

// addrs is what p last wrote to its address file.
func (p *mwPeer) addrs() []string {
	b, err := os.ReadFile(p.addrFile())
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// waitAddr waits until p's address file holds an address that ok accepts
// and returns it; p must be running.
func (w *world) waitAddr(p *mwPeer, d time.Duration, what string, ok func(string) bool) string {
	t := w.t
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, a := range p.addrs() {
			if ok(a) {
				return a
			}
		}
		if !p.proc.Running() {
			t.Fatalf("peer %s exited:\n%s", p.name, p.proc.Tail(25))
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer %s: no %s in %v (addresses %q):\n%s", p.name, what, d, p.addrs(), p.proc.Tail(25))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitUp waits until p listens (its address file is written).
func (w *world) waitUp(p *mwPeer) {
	w.t.Helper()
	w.waitAddr(p, upTimeout, "address", func(string) bool { return true })
}

// user is a wallet on a host, driven through the CLI.
type user struct {
	name    string
	host    *netbed.Host
	home    string
	id      string
	netFile string // its network file
}

func (w *world) newUser(ctx context.Context, h *netbed.Host, name, role string) *user {
	t := w.t
	t.Helper()
	u := &user{name: name, host: h, home: filepath.Join(w.dir, strings.ReplaceAll(strings.ToLower(name), " ", "-"))}
	u.netFile = u.home + ".network.json"
	w.mustRun(ctx, u, "init", "--name", name, "--role", role)
	var who struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(w.mustRun(ctx, u, "whoami", "--json")), &who); err != nil {
		t.Fatal(err)
	}
	u.id = who.ID
	return u
}

// network is a network file (docs/format.md): peers, and the relays a
// peer behind NAT reserves a slot on.
type network struct {
	Version int      `json:"version"`
	Peers   []string `json:"peers"`
	Relays  []string `json:"relays,omitempty"`
}

// setNetwork writes u's network file.
func (w *world) setNetwork(u *user, n network) {
	w.t.Helper()
	n.Version = 1
	b, err := json.Marshal(n)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(u.netFile, b, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// exitError is a CLI command that ran and failed.
type exitError struct {
	code   int
	stderr string
	err    error
}

func (e *exitError) Error() string { return fmt.Sprintf("%v\n%s", e.err, e.stderr) }

// run runs the CLI as u on u's host and returns its stdout. A command that
// exits non-zero gives an *exitError.
func (w *world) run(ctx context.Context, u *user, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	cmd := u.host.Command(ctx, bin, args...)
	cmd.Env = w.env("MEDWALLET_HOME="+u.home, "MEDWALLET_NETWORK="+u.netFile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), &exitError{code: ee.ExitCode(), stderr: errb.String(),
			err: fmt.Errorf("%s: medwallet %s: %w", u.name, strings.Join(args, " "), err)}
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s: medwallet %s: %w\n%s", u.name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (w *world) mustRun(ctx context.Context, u *user, args ...string) string {
	w.t.Helper()
	out, err := w.run(ctx, u, args...)
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// exchangeCards makes a and b each other's contacts.
func (w *world) exchangeCards(ctx context.Context, a, b *user) {
	w.t.Helper()
	ca := w.mustRun(ctx, a, "whoami", "--card")
	cb := w.mustRun(ctx, b, "whoami", "--card")
	w.mustRun(ctx, a, "contact", "add", b.name, cb)
	w.mustRun(ctx, b, "contact", "add", a.name, ca)
}
