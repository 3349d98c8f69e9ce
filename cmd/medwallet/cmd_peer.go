package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/peer"
	"github.com/medwallet/medwallet/p2p/witness"
)

type peerOptions struct {
	listen    []string
	data      string
	bootstrap []string
	mdns      bool
	dht       bool
	addrFile  string
	logLevel  string
	clockSkew time.Duration
	gapMiB    int
	limits    peerLimitOptions
	ops       peerOpsOptions // --config, --metrics (peer_metrics.go)
	storage   storageFlags
	gc        gcFlags
	budget    [2]int // ledger budget per author and hour: entries, MiB
	// verifyLedger: re-check every stored ledger signature before starting.
	verifyLedger bool
	witness      bool
	witnessN     int
	reach        peerReachOptions
	shl          peerSHLOptions // --shl-* (cmd_share_peer.go)
}

// peerReachOptions are the flags of reachability across NATs
// (docs/network.md, "Peers behind NAT").
type peerReachOptions struct {
	relays               []string
	relayService         bool
	budgetMiB            int
	budgetDuration       time.Duration
	announce, noAnnounce []string
	portMap              bool
	reachability         string
	wait                 time.Duration
}

// peerLimitOptions are the connection and memory limits (docs/network.md).
type peerLimitOptions struct {
	knownFile                  string
	maxConns, perIP, memoryMiB int
}

func newPeerCommand(g *globalOptions) *cobra.Command {
	var o peerOptions
	cmd := &cobra.Command{
		Use:   "peer [--listen MULTIADDR...] [--data DIR] [--bootstrap MULTIADDR...]",
		Short: "Run a peer: store encrypted shares, keep the ledger, enforce consent",
		Long: `Run a long-lived medwallet peer. It stores encrypted shares and manifests in
bbolt under --data, keeps and gossips the consent ledger, decides every
share request with the patient's consent and logs each decision on the
ledger before it sends a byte. It prints its multiaddrs on stdout, logs
(without PHI) on stderr, and stops cleanly on SIGINT or SIGTERM; a restart
on the same --data keeps its identity and everything it stored.`,
		Example: `  medwallet peer --data /var/lib/medwallet-peer --listen /ip4/0.0.0.0/tcp/4001 --listen /ip4/0.0.0.0/udp/4001/quic-v1
  medwallet peer --data ./p2 --bootstrap /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...
  medwallet peer --data /var/lib/medwallet-peer --listen /ip4/0.0.0.0/tcp/4001 --relay-service --relay-budget-mib 8
  medwallet peer --data ./home --relay /ip4/198.51.100.7/tcp/4001/p2p/12D3KooW... --addr-file home.addr`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPeer(cmd.Context(), o, g) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.listen, "listen", nil, "multiaddr to listen on (repeatable; default all interfaces, TCP and QUIC, random ports)")
	f.StringVar(&o.data, "data", "", "data directory (default HOME/peer)")
	f.StringArrayVar(&o.bootstrap, "bootstrap", nil, "multiaddr with /p2p/ID of a peer to stay connected to (repeatable)")
	f.BoolVar(&o.mdns, "mdns", true, "discover peers on the local network with mDNS")
	f.BoolVar(&o.dht, "dht", true, "run the Kademlia DHT to find peers in larger networks")
	f.StringVar(&o.addrFile, "addr-file", "", "also write the multiaddrs to this file once listening")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.DurationVar(&o.clockSkew, "max-clock-skew", ledgersync.DefaultMaxClockSkew, "refuse ledger entries dated further ahead of this peer's clock")
	f.IntVar(&o.gapMiB, "ledger-gap-mib", ledgersync.DefaultMaxGapBytes>>20, "MiB of ledger entries held while they wait for a missing predecessor, across all authors")
	f.IntVar(&o.budget[0], "ledger-budget-entries", ledgersync.DefaultBulkBudget.Entries, "new ledger entries an author may send this peer an hour (known peers and catch-up are exempt)")
	f.IntVar(&o.budget[1], "ledger-budget-mib", ledgersync.DefaultBulkBudget.Bytes>>20, "MiB of new ledger entries an author may send this peer an hour")
	f.StringVar(&o.limits.knownFile, "known-peers", "", "network file whose peers are known peers (as --bootstrap ones are): never trimmed, with limits of their own; not dialled")
	f.IntVar(&o.limits.maxConns, "max-conns", 0, "inbound connections from strangers, all together (0: scaled to the machine)")
	f.IntVar(&o.limits.perIP, "max-conns-per-ip", node.DefaultMaxConnsPerIP, "connections from one IPv4 address or IPv6 /56 (127.0.0.1 and ::1 are not limited)")
	f.IntVar(&o.limits.memoryMiB, "max-memory-mib", 0, "MiB strangers together may make the peer reserve for streams (0: an eighth of the machine's memory)")
	f.BoolVar(&o.verifyLedger, "verify-ledger", false, "re-check every signature and chain of the stored ledger before starting (start-up trusts its own disk otherwise)")
	f.BoolVar(&o.witness, "witness", true, "witness feed checkpoints: cosign them for wallets (/medwallet/witness/1.0.0)")
	f.IntVar(&o.witnessN, "witness-max-logs", witness.DefaultMaxLogs, "feeds this peer keeps a witnessed checkpoint of (about 1 KiB of disk each); new feeds beyond it are refused busy")
	f.StringArrayVar(&o.reach.relays, "relay", nil, "multiaddr with /p2p/ID of a relay to reserve a slot on while this peer is not publicly reachable (repeatable; the relays of --known-peers are used too)")
	f.BoolVar(&o.reach.relayService, "relay-service", false, "run the circuit relay v2 service for peers behind NAT (on a publicly reachable peer)")
	f.IntVar(&o.reach.budgetMiB, "relay-budget-mib", int(node.DefaultRelayBudget.Bytes>>20), "with --relay-service: MiB one relayed connection may carry each way before the relay resets it")
	f.DurationVar(&o.reach.budgetDuration, "relay-budget-duration", node.DefaultRelayBudget.Duration, "with --relay-service: how long one relayed connection may last")
	f.StringArrayVar(&o.reach.announce, "announce", nil, "multiaddr to announce besides the listen addresses, such as a public address forwarded here (repeatable)")
	f.StringArrayVar(&o.reach.noAnnounce, "no-announce", nil, "multiaddr prefix (or /ip4/A/ipcidr/N) of addresses never to announce (repeatable)")
	f.BoolVar(&o.reach.portMap, "port-map", true, "ask the router for a port mapping (UPnP, NAT-PMP)")
	f.StringVar(&o.reach.reachability, "reachability", "auto", "auto (AutoNAT finds out), public or private (behind NAT: use the relays at once)")
	f.DurationVar(&o.reach.wait, "relay-wait", 15*time.Second, "with relays: how long to wait for a relay reservation before printing the addresses (0: do not wait); the address file is rewritten when they change")
	addStorageFlags(cmd, &o.storage)
	addGCFlags(cmd, &o.gc)
	addPeerOps(cmd, &o.ops)
	addPeerSHLFlags(cmd, &o.shl)
	cmd.AddCommand(newPeerUsageCommand(g))
	return cmd
}

// peerJSON is the --json shape of a started peer.
type peerJSON struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	Data  string   `json:"data"`
}

func runPeer(ctx context.Context, o peerOptions, g *globalOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError{fmt.Errorf("bad --log-level %q", o.logLevel)}
	}
	if o.clockSkew <= 0 {
		return usageError{fmt.Errorf("bad --max-clock-skew %v: want a positive duration", o.clockSkew)}
	}
	if o.gapMiB < 1 || o.gapMiB > 1<<20 {
		return usageError{fmt.Errorf("bad --ledger-gap-mib %d: want 1 to %d", o.gapMiB, 1<<20)}
	}
	if o.witnessN < 1 {
		return usageError{fmt.Errorf("bad --witness-max-logs %d: want at least 1", o.witnessN)}
	}
	if o.budget[0] < 1 || o.budget[1] < 1 || o.budget[1] > 1<<20 {
		return usageError{fmt.Errorf("bad --ledger-budget-entries %d or --ledger-budget-mib %d: want at least 1 (MiB at most %d)", o.budget[0], o.budget[1], 1<<20)}
	}
	limits, known, fileRelays, err := o.limits.resolve()
	if err != nil {
		return err
	}
	reach, err := o.reach.resolve(fileRelays)
	if err != nil {
		return err
	}
	storage, err := o.storage.limits()
	if err != nil {
		return err
	}
	gc, err := o.gc.config()
	if err != nil {
		return err
	}
	shl, err := o.shl.config()
	if err != nil {
		return err
	}
	domain, err := o.gc.domain()
	if err != nil {
		return err
	}
	if o.data == "" {
		o.data = filepath.Join(g.home, "peer")
	}
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	if o.verifyLedger {
		if err := verifyPeerLedger(o.data, log); err != nil {
			return err
		}
	}
	m, err := o.ops.startMetrics(ctx, log)
	if err != nil {
		return err
	}
	p, err := peer.Start(ctx, peer.Config{
		Metrics: m,
		DataDir: o.data, Listen: o.listen, Bootstrap: o.bootstrap, MDNS: o.mdns, DHT: o.dht, Logger: log,
		MaxClockSkew: o.clockSkew, GapBytes: o.gapMiB << 20,
		Budget: ledgersync.HourlyBudget(o.budget[0], o.budget[1]<<20),
		Limits: limits, Known: known, Storage: storage,
		NoWitness: !o.witness, WitnessMaxLogs: o.witnessN, Reach: reach, GC: gc, SHL: shl, Domain: domain,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	addrs := p.Addrs()
	if len(reach.Relays) > 0 && reach.Reachability != network.ReachabilityPublic && o.reach.wait > 0 {
		addrs = waitRelayAddr(ctx, p, o.reach.wait, log)
	}
	if o.addrFile != "" {
		if err := fsutil.WriteFileAtomic(o.addrFile, []byte(strings.Join(addrs, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	go watchAddrs(ctx, p, addrs, o.addrFile, log)
	if err := g.emit(peerJSON{ID: string(p.ID()), Addrs: addrs, Data: o.data}, func(out io.Writer) {
		for _, a := range addrs {
			fmt.Fprintln(out, a)
		}
	}); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return p.Close()
}

// resolve checks the limit flags and reads the known peers' network
// file: its peers, and its relays.
func (o peerLimitOptions) resolve() (node.Limits, []string, []string, error) {
	for _, f := range []struct {
		name string
		v    int
	}{{"--max-conns", o.maxConns}, {"--max-conns-per-ip", o.perIP}, {"--max-memory-mib", o.memoryMiB}} {
		if f.v < 0 || f.v > 1<<20 {
			return node.Limits{}, nil, nil, usageError{fmt.Errorf("bad %s %d: want 0 to %d", f.name, f.v, 1<<20)}
		}
	}
	l := node.Limits{MaxConns: o.maxConns, MaxConnsPerIP: o.perIP, Memory: int64(o.memoryMiB) << 20}
	if o.knownFile == "" {
		return l, nil, nil, nil
	}
	n, err := netfile.Read(o.knownFile)
	if err != nil {
		return l, nil, nil, fmt.Errorf("--known-peers: %w", err)
	}
	return l, n.Peers, n.Relays, nil
}

// resolve checks the reachability flags; fileRelays are the relays of the
// known peers' network file.
func (o peerReachOptions) resolve(fileRelays []string) (node.Reach, error) {
	r := node.Reach{RelayService: o.relayService, PortMap: o.portMap}
	if o.budgetMiB < 1 || o.budgetMiB > 1<<20 {
		return r, usageError{fmt.Errorf("bad --relay-budget-mib %d: want 1 to %d", o.budgetMiB, 1<<20)}
	}
	if o.budgetDuration < time.Second {
		return r, usageError{fmt.Errorf("bad --relay-budget-duration %v: want 1s or more", o.budgetDuration)}
	}
	r.RelayBudget = node.RelayBudget{Bytes: int64(o.budgetMiB) << 20, Duration: o.budgetDuration}
	switch o.reachability {
	case "auto":
	case "public":
		r.Reachability = network.ReachabilityPublic
	case "private":
		r.Reachability = network.ReachabilityPrivate
	default:
		return r, usageError{fmt.Errorf("bad --reachability %q: want auto, public or private", o.reachability)}
	}
	relays, err := netfile.ParseRelays(append(slices.Clone(o.relays), fileRelays...))
	if err != nil {
		return r, usageError{fmt.Errorf("bad --relay: %w", err)}
	}
	r.Relays = relays
	for _, f := range []struct {
		name string
		in   []string
		out  *[]ma.Multiaddr
	}{{"--announce", o.announce, &r.Announce}, {"--no-announce", o.noAnnounce, &r.NoAnnounce}} {
		for _, s := range f.in {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return r, usageError{fmt.Errorf("bad %s %q: %w", f.name, s, err)}
			}
			*f.out = append(*f.out, a)
		}
	}
	return r, nil
}

// waitRelayAddr waits, for at most d, until the peer announces a relay
// address (a relay reserved a slot for it), and returns its addresses.
func waitRelayAddr(ctx context.Context, p *peer.Peer, d time.Duration, log *slog.Logger) []string {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	for {
		addrs := p.Addrs()
		if slices.ContainsFunc(addrs, func(a string) bool { return strings.Contains(a, "/p2p-circuit/") }) {
			return addrs
		}
		select {
		case <-ctx.Done():
			return addrs
		case <-end.C:
			log.Warn("no relay reserved a slot yet; the address file is rewritten when one does", "waited", d)
			return addrs
		case <-t.C:
		}
	}
}

// watchAddrs rewrites the address file, and logs, when the peer's
// addresses change: a relay address comes once a relay reserved a slot
// for the peer, a mapped port once the router mapped it.
func watchAddrs(ctx context.Context, p *peer.Peer, last []string, addrFile string, log *slog.Logger) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addrs := p.Addrs()
		if slices.Equal(addrs, last) {
			continue
		}
		last = addrs
		log.Info("addresses changed", "addrs", fmt.Sprint(addrs))
		if addrFile != "" {
			if err := fsutil.WriteFileAtomic(addrFile, []byte(strings.Join(addrs, "\n")+"\n"), 0o600); err != nil {
				log.Warn("rewriting the address file failed", "err", err)
			}
		}
	}
}
