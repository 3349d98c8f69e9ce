package attack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

// bin is the medwallet binary TestMain builds (or $MEDWALLET_ATTACK_BIN);
// empty under -short.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	if b := os.Getenv("MEDWALLET_ATTACK_BIN"); b != "" {
		// A binary built elsewhere (a release, another branch).
		bin = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "medwallet-attack-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "medwallet")
	build := exec.Command("go", "build", "-o", bin, "github.com/medwallet/medwallet/cmd/medwallet")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "attack: building medwallet:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needBinary skips under -short: the suite starts processes.
func needBinary(t testing.TB) {
	t.Helper()
	if bin == "" {
		t.Skip("-short: the adversarial suite starts peer processes")
	}
}

const (
	numPeers   = 5
	passphrase = "attack-suite keyring pass"
	// cliTimeout bounds every honest CLI command: generous, a deadline and
	// not a timing assertion.
	cliTimeout = 3 * time.Minute
	// recordSize is the honest record: 1 MiB, as in the figures.
	recordSize = 1 << 20
	scopeAll   = "patient/*.rs"
	purpose    = "TREAT"
)

// peerProc is one `medwallet peer` process. Its key and TCP port are fixed
// before it first starts, so a restart keeps its address and every peer
// can name every other as a bootstrap peer from the start.
type peerProc struct {
	name  string
	dir   string // --data
	port  int
	id    peer.ID
	addr  string // /ip4/127.0.0.1/tcp/PORT/p2p/ID
	logf  string // its stderr, appended across restarts
	extra []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *peerProc) info() peer.AddrInfo {
	ai, err := peer.AddrInfoFromString(p.addr)
	if err != nil {
		panic(err)
	}
	return *ai
}

// user is a wallet driven through the CLI.
type user struct {
	name string
	home string
	id   consent.ID
}

// testnet is five peers, a patient (Alice), a clinician (Bob), both CLI
// wallets, and Carol, a grantee whose key the test holds so that it can
// ask each peer directly whether it serves her (a revocation probe).
type testnet struct {
	t       testing.TB
	dir     string
	peers   []*peerProc
	netFile string

	alice, bob *user
	carol      *grantee

	record     string // Alice's 1 MiB record
	recBytes   []byte
	bobGrant   string
	carolGrant string
	revoked    bool
	imports    int

	// carolShare is, for each peer, one share of the record it holds.
	carolShare map[peer.ID]vault.ShareID

	// forgers, if set, lists the strangers that forged access entries:
	// the log check makes sure no output names them.
	forgers func() []consent.ID
}

// grantee is a party the test holds the keys of.
type grantee struct {
	priv   ed25519.PrivateKey
	signer *consent.KeySigner
	age    *age.X25519Identity
	host   host.Host
}

func (g *grantee) id() consent.ID { return g.signer.ID() }

// netOptions tune a network for one case.
type netOptions struct {
	// peerArgs are extra flags for every peer.
	peerArgs []string
}

// newNetwork starts five peers and sets up the honest parties: Alice adds
// a 1 MiB record and grants it to Bob and to Carol. Everything is torn
// down by t.Cleanup, also when the test fails.
func newNetwork(t testing.TB, o netOptions) *testnet {
	t.Helper()
	needBinary(t)
	n := &testnet{t: t, dir: t.TempDir()}
	setup := time.Now()
	n.netFile = filepath.Join(n.dir, "network.json")
	ports := freePorts(t, numPeers)
	for i := range numPeers {
		n.peers = append(n.peers, n.newPeerProc(fmt.Sprintf("p%d", i+1), ports[i], o.peerArgs))
	}
	t.Cleanup(n.killAll)
	var nf netfile.Network
	for _, p := range n.peers {
		nf.Peers = append(nf.Peers, p.addr)
	}
	if err := netfile.Write(n.netFile, nf); err != nil {
		t.Fatal(err)
	}
	for _, p := range n.peers {
		n.start(p)
	}
	for _, p := range n.peers {
		n.waitUp(p)
	}
	up := time.Since(setup)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n.alice = n.newUser(ctx, "Alice", "patient")
	n.bob = n.newUser(ctx, "Dr Bob", "clinician")
	n.carol = newGrantee(t)
	bobCard := n.mustRun(ctx, n.bob, "whoami", "--card")
	aliceCard := n.mustRun(ctx, n.alice, "whoami", "--card")
	n.mustRun(ctx, n.alice, "contact", "add", "Bob", strings.TrimSpace(bobCard))
	n.mustRun(ctx, n.bob, "contact", "add", "Alice", strings.TrimSpace(aliceCard))
	card, err := consent.NewCard(n.carol.priv, n.carol.age.Recipient().String(), "Carol", "clinician", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n.mustRun(ctx, n.alice, "contact", "add", "Carol", card.String())

	n.recBytes = make([]byte, recordSize)
	rand.Read(n.recBytes)
	recFile := filepath.Join(n.dir, "record.bin")
	if err := os.WriteFile(recFile, n.recBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	n.record = strings.TrimSpace(n.mustRun(ctx, n.alice, "record", "add", recFile, "--label", "scan"))
	added := time.Since(setup)
	n.bobGrant = n.grant(ctx, "Bob")
	n.carolGrant = n.grant(ctx, "Carol")
	n.findCarolShares(ctx)
	t.Logf("network set up in %v (peers up %v, record added %v)", time.Since(setup).Round(time.Millisecond),
		up.Round(time.Millisecond), added.Round(time.Millisecond))
	return n
}

// grant has Alice grant the record to a contact and returns the grant ID.
func (n *testnet) grant(ctx context.Context, to string) string {
	return strings.TrimSpace(n.mustRun(ctx, n.alice, "grant", "--to", to, "--record", n.record,
		"--scope", scopeAll, "--purpose", purpose))
}

// newPeerProc makes a peer process's directory and key (not started):
// name is also its directory under n.dir, port its TCP port on loopback.
func (n *testnet) newPeerProc(name string, port int, extra []string) *peerProc {
	t := n.t
	t.Helper()
	p := &peerProc{name: name, dir: filepath.Join(n.dir, name), port: port, extra: extra}
	p.logf = p.dir + ".log"
	priv := newKey(t)
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "peer.key"), priv.Seed(), 0o600); err != nil {
		t.Fatal(err)
	}
	p.id = peerID(t, priv)
	p.addr = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p.port, p.id)
	return p
}

func freePorts(t testing.TB, k int) []int {
	var ls []net.Listener
	var ports []int
	for range k {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func peerID(t testing.TB, priv ed25519.PrivateKey) peer.ID {
	s, err := consent.NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.Decode(string(s.ID()))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// start starts p, which must not be running, with every other peer as a
// bootstrap peer (the operator's network list).
func (n *testnet) start(p *peerProc) {
	t := n.t
	t.Helper()
	addrFile := p.dir + ".addr"
	os.Remove(addrFile)
	args := []string{"peer", "--data", p.dir, "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.port),
		"--mdns=false", "--dht=false", "--addr-file", addrFile}
	for _, o := range n.peers {
		if o != p {
			args = append(args, "--bootstrap", o.addr)
		}
	}
	args = append(args, p.extra...)
	logw, err := os.OpenFile(p.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	dieWithParent(cmd)
	cmd.Env = n.env(nil)
	cmd.Stderr = logw
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		logw.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logw.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// waitUp waits until p listens (it writes its address file).
func (n *testnet) waitUp(p *peerProc) {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if fi, err := os.Stat(p.dir + ".addr"); err == nil && fi.Size() > 0 {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("peer %s exited at start:\n%s", p.name, tail(p.logf))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer %s did not start in 60 s:\n%s", p.name, tail(p.logf))
		}
	}
}

// restart stops p (SIGINT) and starts it again on the same data and port.
func (n *testnet) restart(p *peerProc) {
	n.t.Helper()
	p.stop()
	n.start(p)
	n.waitUp(p)
}

// stop ends p with SIGINT, then SIGKILL after 15 s.
func (p *peerProc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// kill ends p at once.
func (p *peerProc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// pid is p's process ID, 0 when it is not running.
func (p *peerProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (n *testnet) killAll() {
	for _, p := range n.peers {
		p.kill()
	}
	if n.carol != nil && n.carol.host != nil {
		n.carol.host.Close()
	}
	if n.t.Failed() {
		for _, p := range n.peers {
			n.t.Logf("--- last lines of %s's log ---\n%s", p.name, tail(p.logf))
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// env is the environment of a CLI command or peer: the file keyring with a
// passphrase from the environment, as cmd/medwallet's testscripts use.
func (n *testnet) env(u *user) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + n.dir,
		"MEDWALLET_KEYRING_BACKEND=file",
		"MEDWALLET_PASSPHRASE=" + passphrase,
		"MEDWALLET_NETWORK=" + n.netFile,
		"DBUS_SESSION_BUS_ADDRESS=disabled:",
		"NO_COLOR=1",
	}
	if u != nil {
		env = append(env, "MEDWALLET_HOME="+u.home)
	}
	return env
}

// run runs the CLI as u and returns its stdout; the error carries stderr.
func (n *testnet) run(ctx context.Context, u *user, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = n.env(u)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	if d := time.Since(start); d > time.Second && os.Getenv("MEDWALLET_ATTACK_TRACE") != "" {
		n.t.Logf("%s %s took %v", u.name, args[0], d.Round(time.Millisecond))
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", u.name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (n *testnet) mustRun(ctx context.Context, u *user, args ...string) string {
	n.t.Helper()
	out, err := n.run(ctx, u, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func (n *testnet) newUser(ctx context.Context, name, role string) *user {
	u := &user{name: name, home: filepath.Join(n.dir, strings.ReplaceAll(strings.ToLower(name), " ", "-"))}
	cheapKeyringKDF(n.t, u.home)
	n.mustRun(ctx, u, "init", "--name", name, "--role", role)
	var who struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(n.mustRun(ctx, u, "whoami", "--json")), &who); err != nil {
		n.t.Fatal(err)
	}
	u.id = consent.ID(who.ID)
	return u
}

// cheapKeyringKDF gives the file keyring a new user's init will create
// the scrypt cost cmd/medwallet's testscripts use (log2 N = 10), by writing
// its parameter file first: a keyring keeps the cost it was made with
// (wallet/keystore), and at the default cost (16) every command that opens
// the keyring spent about half a second of CPU on scrypt alone. The suite
// attacks peers, not keyrings; wallet/keystore tests the default cost.
func cheapKeyringKDF(t testing.TB, home string) {
	t.Helper()
	dir := filepath.Join(home, "keyring")
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"version": 1, "alg": "scrypt", "log_n": 10, "r": 8, "p": 1,
		"salt": base64.StdEncoding.EncodeToString(salt)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "medwallet-kdf.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newGrantee(t testing.TB) *grantee {
	priv := newKey(t)
	s, err := consent.NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return &grantee{priv: priv, signer: s, age: a, host: newHost(t, priv)}
}

// findCarolShares reads Carol's copy of the manifest and asks every peer
// which of its shares it holds.
func (n *testnet) findCarolShares(ctx context.Context) {
	t := n.t
	h := n.carol.host
	pub, err := n.alice.id.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range n.peers {
		h.Peerstore().AddAddrs(p.id, p.info().Addrs, peerstore.PermanentAddrTTL)
	}
	var m *vault.Manifest
	for _, p := range n.peers {
		copies, err := manifests.ListFor(ctx, h, p.id, n.alice.id, n.record, "")
		if err != nil || len(copies) == 0 {
			continue
		}
		if m, err = vault.DecryptManifest(copies[0].Envelope, pub, n.carol.age); err != nil {
			t.Fatalf("Carol's manifest copy: %v", err)
		}
		break
	}
	if m == nil {
		t.Fatal("no peer holds Carol's manifest copy")
	}
	n.carolShare = map[peer.ID]vault.ShareID{}
	for _, p := range n.peers {
		for _, s := range m.Shares {
			if ok, err := shares.Has(ctx, h, p.id, s.ID); err == nil && ok {
				n.carolShare[p.id] = s.ID
				break
			}
		}
	}
	if len(n.carolShare) != numPeers {
		t.Fatalf("the record's shares are on %d of %d peers", len(n.carolShare), numPeers)
	}
}

// outcome is what a peer answered Carol.
type outcome int

const (
	served  outcome = iota // it sent the share
	denied                 // a consent denial
	refused                // busy, rate-limited, unreachable: no decision
)

func (o outcome) String() string { return [...]string{"served", "denied", "refused"}[o] }

// carolGet asks p for its share of the record as Carol, with a fresh
// signed request.
func (n *testnet) carolGet(ctx context.Context, p *peerProc) (outcome, string) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	h := n.carol.host
	if err := h.Connect(ctx, p.info()); err != nil {
		return refused, err.Error()
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	req, err := consent.SignRequest(n.carol.signer, consent.Request{Requester: n.carol.id(), Owner: n.alice.id,
		Record: n.record, Scope: scopeAll, Purpose: purpose, Time: time.Now().Unix(), Nonce: nonce})
	if err != nil {
		n.t.Fatal(err)
	}
	rc, err := shares.Get(ctx, h, p.id, n.carolShare[p.id], req)
	var de *shares.DeniedError
	if errors.As(err, &de) {
		return denied, string(de.Reason)
	}
	if err != nil {
		return refused, err.Error()
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return refused, err.Error()
	}
	return served, ""
}

// waitAllDeny polls every peer as Carol until each has denied her; a peer
// that serves her after the revocation fails the test. It returns how
// long it took.
func (n *testnet) waitAllDeny(ctx context.Context, since time.Time) time.Duration {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	pending := map[*peerProc]string{}
	for _, p := range n.peers {
		pending[p] = "not asked"
	}
	for len(pending) > 0 {
		for p := range pending {
			o, why := n.carolGet(ctx, p)
			switch o {
			case denied:
				delete(pending, p)
			case served:
				t.Errorf("peer %s served the revoked grantee %v after the revocation", p.name, time.Since(since).Round(time.Millisecond))
				pending[p] = "served"
			default:
				pending[p] = why
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for p, why := range pending {
				t.Errorf("peer %s did not deny the revoked grantee within 2 min: %s", p.name, why)
			}
			t.FailNow()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(since)
}

// honest runs what must keep working during an attack: Alice's record get
// (byte-identical), Bob's import, Alice's revoke of Carol's grant (once)
// and every peer then denying Carol; and the log check. A failure is
// reported and the next check still runs.
func (n *testnet) honest(ctx context.Context) {
	t := n.t
	t.Helper()
	if d, err := n.tryRecordGet(ctx); err != nil {
		t.Errorf("honest record get failed: %v", err)
	} else {
		t.Logf("record get took %v", d.Round(time.Millisecond))
	}
	if err := n.tryImport(ctx); err != nil {
		t.Errorf("honest import failed: %v", err)
	}
	switch {
	case !n.revoked:
		start := time.Now()
		if _, err := n.run(ctx, n.alice, "revoke", n.carolGrant); err != nil {
			t.Errorf("honest revoke failed: %v", err)
			break
		}
		n.revoked = true
		t.Logf("revoke returned after %v", time.Since(start).Round(time.Millisecond))
		t.Logf("every peer denied the revoked grantee %v after the revoke started", n.waitAllDeny(ctx, start).Round(time.Millisecond))
	default:
		n.waitAllDeny(ctx, time.Now())
	}
	var forgers []consent.ID
	if n.forgers != nil {
		forgers = n.forgers()
	}
	n.checkLog(ctx, forgers)
}

// recordGet has Alice read her record back; it returns the time it took.
func (n *testnet) recordGet(ctx context.Context) time.Duration {
	n.t.Helper()
	d, err := n.tryRecordGet(ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	return d
}

func (n *testnet) tryRecordGet(ctx context.Context) (time.Duration, error) {
	out := filepath.Join(n.dir, fmt.Sprintf("get-%d.bin", time.Now().UnixNano()))
	start := time.Now()
	if _, err := n.run(ctx, n.alice, "record", "get", n.record, "--out", out); err != nil {
		return 0, err
	}
	d := time.Since(start)
	b, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	os.Remove(out)
	if !bytes.Equal(b, n.recBytes) {
		return 0, errors.New("record get returned other bytes")
	}
	return d, nil
}

// tryImport has Bob import his grant into a fresh directory.
func (n *testnet) tryImport(ctx context.Context) error {
	n.imports++
	dir := filepath.Join(n.dir, fmt.Sprintf("bob-import-%d", n.imports))
	if _, err := n.run(ctx, n.bob, "import", n.bobGrant, "--out", dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		return fmt.Errorf("import wrote %d files (%v), want 1", len(ents), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ents[0].Name()))
	if err != nil {
		return err
	}
	if !bytes.Equal(b, n.recBytes) {
		return errors.New("Bob imported other bytes")
	}
	return nil
}

// checkLog asserts that Alice's `log` and `audit disclosures` show only
// accesses decided by the network's peers, and none decided by a forger.
func (n *testnet) checkLog(ctx context.Context, forgers []consent.ID) {
	t := n.t
	t.Helper()
	ours := map[string]bool{}
	for _, p := range n.peers {
		ours[p.id.String()] = true
	}
	var log []struct {
		Decider    string `json:"decider"`
		Requester  string `json:"requester"`
		Allowed    bool   `json:"allowed"`
		Suspicious bool   `json:"suspicious"`
	}
	out, ok := n.try(ctx, n.alice, "log", "--json")
	if !ok {
		return
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Errorf("log --json: %v", err)
		return
	}
	allowed := 0
	for _, e := range log {
		if !e.Suspicious && !ours[e.Decider] && e.Decider != string(n.alice.id) {
			t.Errorf("log --json shows an access decided by %s, not a peer of the network", e.Decider)
		}
		if e.Allowed && !e.Suspicious {
			allowed++
		}
	}
	text, _ := n.try(ctx, n.alice, "log")
	for _, f := range forgers {
		if strings.Contains(text, f.Short()) || strings.Contains(text, string(f)) {
			t.Errorf("log names the forger %s", f.Short())
		}
	}
	var disc []struct {
		Decider string `json:"decider"`
	}
	dout, ok := n.try(ctx, n.alice, "audit", "disclosures", "--format", "json")
	if !ok {
		return
	}
	if err := json.Unmarshal([]byte(dout), &disc); err != nil {
		t.Errorf("audit disclosures --format json: %v", err)
		return
	}
	for _, d := range disc {
		if !ours[d.Decider] {
			t.Errorf("audit disclosures lists a disclosure decided by %s, not a peer of the network", d.Decider)
		}
	}
	for _, f := range forgers {
		for _, format := range []string{"table", "csv", "fhir"} {
			o, _ := n.try(ctx, n.alice, "audit", "disclosures", "--format", format)
			if strings.Contains(o, string(f)) || strings.Contains(o, f.Short()) {
				t.Errorf("audit disclosures --format %s names the forger %s", format, f.Short())
			}
		}
	}
	t.Logf("log: %d entries, %d allowed; %d disclosures", len(log), allowed, len(disc))
}

// try runs the CLI as u; a failure is reported (t.Errorf) and ok is false.
func (n *testnet) try(ctx context.Context, u *user, args ...string) (out string, ok bool) {
	n.t.Helper()
	out, err := n.run(ctx, u, args...)
	if err != nil {
		n.t.Errorf("%v", err)
		return out, false
	}
	return out, true
}

// usage is one peer's measured memory and disk.
type usage struct {
	hwm, rss, disk int64 // bytes
}

// measure reads every running peer's peak and current RSS and the size of
// its data directory, logs them, and checks them against the bounds.
func (n *testnet) measure(what string, maxRSS, maxDisk int64) map[string]usage {
	t := n.t
	t.Helper()
	res := map[string]usage{}
	for _, p := range n.peers {
		var u usage
		if pid := p.pid(); pid != 0 {
			u.hwm, u.rss = procMem(pid)
		}
		u.disk = diskUsage(p.dir)
		res[p.name] = u
		t.Logf("%s: peer %s: peak RSS %.1f MiB, RSS %.1f MiB, data dir %.1f MiB", what, p.name, inMiB(u.hwm), inMiB(u.rss), inMiB(u.disk))
		if maxRSS > 0 && u.hwm > maxRSS {
			t.Errorf("%s: peer %s peak RSS %.1f MiB, over the bound of %d MiB", what, p.name, inMiB(u.hwm), maxRSS>>20)
		}
		if maxDisk > 0 && u.disk > maxDisk {
			t.Errorf("%s: peer %s data dir %.1f MiB, over the bound of %d MiB", what, p.name, inMiB(u.disk), maxDisk>>20)
		}
	}
	return res
}

// procMem reads VmHWM and VmRSS of a process.
func procMem(pid int) (hwm, rss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = v << 10
		case "VmRSS:":
			rss = v << 10
		}
	}
	return hwm, rss
}

// diskUsage is what du counts: the blocks of every file under dir.
func diskUsage(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}

const mib = 1 << 20

func inMiB(b int64) float64 { return float64(b) / mib }
