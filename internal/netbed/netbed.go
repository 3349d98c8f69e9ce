//go:build linux

package netbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a skip for want of
// namespaces into a failure: CI sets it to 1.
const RequireEnv = "MEDWALLET_REQUIRE_NETNS"

// prefix starts the name of every namespace a bed creates.
const prefix = "mwnb"

// cmdTimeout bounds every ip and nft command a bed runs.
const cmdTimeout = 20 * time.Second

// Internet is the range of the bed's public addresses (see the package doc).
var Internet = netip.MustParsePrefix("11.99.0.0/16")

// NATKind is how a NAT maps ports.
type NATKind int

const (
	// Cone is a home router as Linux builds one: masquerade that keeps the
	// source port where it is free, so one inside address and port is one
	// outside address and port whatever the destination (endpoint-
	// independent mapping). Conntrack lets in only replies from the
	// endpoint a mapping was made for (address- and port-dependent
	// filtering). Hole punching works through it.
	Cone NATKind = iota
	// Symmetric masquerades with fully random ports: every new
	// destination gets a new outside port, so the address a relay observes
	// is useless to anyone else, and hole punching fails.
	Symmetric
)

func (k NATKind) String() string {
	switch k {
	case Cone:
		return "cone"
	case Symmetric:
		return "symmetric"
	}
	return "NATKind(" + strconv.Itoa(int(k)) + ")"
}

// masquerade is the nft statement of each kind. Plain masquerade keeps the
// source port unless another mapping holds it; `persistent` would only pin
// the outside address, which a one-address router has anyway.
func (k NATKind) masquerade() string {
	if k == Symmetric {
		return "masquerade random,fully-random"
	}
	return "masquerade"
}

// Check says why no bed can be built here, or nil when one can.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	for _, c := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s is not installed (iproute2, nftables): %w", c, err)
		}
	}
	ns := fmt.Sprintf("%s%d-probe", prefix, os.Getpid())
	if err := run(nil, "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	defer run(nil, "ip", "netns", "del", ns)
	if err := run(nil, "ip", "netns", "exec", ns, "nft", "list", "ruleset"); err != nil {
		return fmt.Errorf("cannot run nft in a network namespace: %w", err)
	}
	return nil
}

var checked struct {
	once sync.Once
	err  error
}

// Need skips tb when no bed can be built here, and fails it instead when
// $MEDWALLET_REQUIRE_NETNS is 1.
func Need(tb testing.TB) {
	tb.Helper()
	checked.once.Do(func() { checked.err = Check() })
	if checked.err == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s=1 but no network namespaces here: %v", RequireEnv, checked.err)
	}
	tb.Skipf("no network namespaces here (%v); run as root with iproute2 and nftables, as .ci/run does", checked.err)
}

// Bed is a set of namespaces: one internet, its hosts, NATs and their LANs.
type Bed struct {
	tb   testing.TB
	name string // prefix of its namespaces: mwnb<pid>-<n>

	mu      sync.Mutex
	nss     []string // in creation order
	inet    string
	publics int
	nats    int
	closed  bool
}

var beds atomic.Int32

// New builds the internet of a new bed and deletes it at the end of tb.
// It first sweeps the namespaces left by test processes that are gone.
func New(tb testing.TB) *Bed {
	tb.Helper()
	Need(tb)
	if err := Sweep(); err != nil {
		tb.Logf("netbed: sweeping old namespaces: %v", err)
	}
	b := &Bed{tb: tb, name: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), beds.Add(1))}
	tb.Cleanup(b.Close)
	inet, err := b.newNS("inet")
	if err != nil {
		tb.Fatal(err)
	}
	b.inet = inet
	if err := b.ipn(inet, "link", "add", "br0", "type", "bridge"); err != nil {
		tb.Fatal(err)
	}
	if err := b.ipn(inet, "link", "set", "br0", "up"); err != nil {
		tb.Fatal(err)
	}
	return b
}

// Host is one namespace with one address: a machine of the bed.
type Host struct {
	Name string
	NS   string     // its namespace, for ip netns exec
	IP   netip.Addr // public, or private on its NAT's LAN
	NAT  *NAT       // the NAT it sits behind, nil when public
}

// NAT is a router between a LAN and the bed's internet.
type NAT struct {
	Host            // the router itself; IP is its public (WAN) address
	Kind    NATKind //
	LAN     netip.Prefix
	gateway netip.Addr
	hosts   int
}

// Public adds a host on the internet with the next public address.
func (b *Bed) Public(name string) *Host {
	b.tb.Helper()
	b.mu.Lock()
	b.publics++
	ip := netip.AddrFrom4([4]byte{11, 99, 0, byte(9 + b.publics)})
	b.mu.Unlock()
	h, err := b.attach(name, ip)
	if err != nil {
		b.tb.Fatal(err)
	}
	return h
}

// attach makes a namespace with one veth (eth0) on the internet's bridge
// and address ip.
func (b *Bed) attach(name string, ip netip.Addr) (*Host, error) {
	ns, err := b.newNS(name)
	if err != nil {
		return nil, err
	}
	if err := b.wire(b.inet, ns, "eth0", ip, Internet.Bits()); err != nil {
		return nil, fmt.Errorf("netbed: %s on the internet: %w", name, err)
	}
	return &Host{Name: name, NS: ns, IP: ip}, nil
}

// wire links namespace ns to the bridge br0 of namespace sw by a veth
// called dev in ns, with address ip/bits.
func (b *Bed) wire(sw, ns, dev string, ip netip.Addr, bits int) error {
	b.mu.Lock()
	port := fmt.Sprintf("v%d", len(b.nss))
	b.mu.Unlock()
	steps := [][]string{
		{"-n", sw, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns},
		{"-n", sw, "link", "set", port, "master", "br0", "up"},
		{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", ip, bits), "dev", dev},
		{"-n", ns, "link", "set", dev, "up"},
	}
	for _, s := range steps {
		if err := run(nil, "ip", s...); err != nil {
			return err
		}
	}
	return nil
}

// NAT adds a router of the given kind with the next public address and
// LAN 10.13.N.0/24 (the router is 10.13.N.1).
func (b *Bed) NAT(name string, kind NATKind) *NAT {
	b.tb.Helper()
	b.mu.Lock()
	b.nats++
	n := b.nats
	b.mu.Unlock()
	wan := netip.AddrFrom4([4]byte{11, 99, 1, byte(n)})
	h, err := b.attach(name, wan)
	if err != nil {
		b.tb.Fatal(err)
	}
	nat := &NAT{Host: *h, Kind: kind,
		LAN:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 13, byte(n), 0}), 24),
		gateway: netip.AddrFrom4([4]byte{10, 13, byte(n), 1})}
	if err := b.router(nat); err != nil {
		b.tb.Fatalf("netbed: NAT %s: %v", name, err)
	}
	return nat
}

// router renames the NAT's internet veth to wan, adds its LAN bridge and
// loads its ruleset.
func (b *Bed) router(n *NAT) error {
	ns := n.NS
	steps := [][]string{
		{"-n", ns, "link", "set", "eth0", "down"},
		{"-n", ns, "link", "set", "eth0", "name", "wan"},
		{"-n", ns, "link", "set", "wan", "up"},
		{"-n", ns, "link", "add", "br0", "type", "bridge"},
		{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", n.gateway, n.LAN.Bits()), "dev", "br0"},
		{"-n", ns, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := run(nil, "ip", s...); err != nil {
			return err
		}
	}
	if err := run(nil, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	// Forward the LAN out and replies in; masquerade on the way out; drop
	// anything unsolicited that reaches the router itself from the
	// internet, silently as a home router does (an RST or ICMP error would
	// abort the other side's half of a simultaneous open).
	rules := fmt.Sprintf(`table ip netbed {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" %s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "br0" oifname "wan" accept
		iifname "wan" ct state established,related accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state != { established, related } drop
	}
}
`, n.Kind.masquerade())
	return run(strings.NewReader(rules), "ip", "netns", "exec", ns, "nft", "-f", "-")
}

// Behind adds a host on the LAN of NAT n with the next address and a
// default route through n.
func (b *Bed) Behind(n *NAT, name string) *Host {
	b.tb.Helper()
	b.mu.Lock()
	n.hosts++
	a := n.gateway.As4()
	a[3] = byte(9 + n.hosts)
	b.mu.Unlock()
	ip := netip.AddrFrom4(a)
	ns, err := b.newNS(name)
	if err != nil {
		b.tb.Fatal(err)
	}
	if err := b.wire(n.NS, ns, "eth0", ip, n.LAN.Bits()); err != nil {
		b.tb.Fatalf("netbed: %s behind %s: %v", name, n.Name, err)
	}
	if err := b.ipn(ns, "route", "add", "default", "via", n.gateway.String()); err != nil {
		b.tb.Fatal(err)
	}
	return &Host{Name: name, NS: ns, IP: ip, NAT: n}
}

// newNS creates and records a namespace with its loopback up.
func (b *Bed) newNS(name string) (string, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return "", errors.New("netbed: bed closed")
	}
	ns := fmt.Sprintf("%s-%d-%s", b.name, len(b.nss), name)
	b.nss = append(b.nss, ns)
	b.mu.Unlock()
	if err := run(nil, "ip", "netns", "add", ns); err != nil {
		return "", err
	}
	if err := b.ipn(ns, "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	return ns, nil
}

func (b *Bed) ipn(ns string, args ...string) error {
	return run(nil, "ip", append([]string{"-n", ns}, args...)...)
}

// Close kills whatever still runs in the bed's namespaces and deletes
// them, last created first. It reports leftovers as test errors.
func (b *Bed) Close() {
	b.mu.Lock()
	b.closed = true
	nss := b.nss
	b.nss = nil
	b.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		if err := deleteNS(nss[i]); err != nil && !errors.Is(err, errNoNS) {
			b.tb.Errorf("netbed: %v", err)
		}
	}
}

var errNoNS = errors.New("no such namespace")

// deleteNS kills the processes in ns and deletes it.
func deleteNS(ns string) error {
	out, err := output("ip", "netns", "pids", ns)
	if err != nil {
		if !exists(ns) {
			return errNoNS
		}
		return err
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err := run(nil, "ip", "netns", "del", ns); err != nil {
		return fmt.Errorf("deleting namespace %s: %w", ns, err)
	}
	return nil
}

func exists(ns string) bool {
	_, err := os.Stat("/run/netns/" + ns)
	return err == nil
}

// Sweep deletes the namespaces of every bed whose test process is gone.
func Sweep() error {
	return sweep(func(pid int) bool {
		return pid != os.Getpid() && syscall.Kill(pid, 0) == nil
	})
}

// SweepOwn deletes the namespaces of this process's beds (on a signal or
// a test timeout, when no Cleanup will run).
func SweepOwn() error {
	return sweep(func(pid int) bool { return pid != os.Getpid() })
}

// sweep deletes the bed namespaces of every pid that keep says not to keep.
func sweep(keep func(pid int) bool) error {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return err
	}
	var errs []error
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		ns := f[0]
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(ns, prefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || keep(pid) {
			continue
		}
		if err := deleteNS(ns); err != nil && !errors.Is(err, errNoNS) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// run runs a short command (ip, nft) within cmdTimeout; the error carries
// its output.
func run(stdin *strings.Reader, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return string(out), nil
}
