package peer

// Leases and garbage collection (docs/network.md, "Leases and garbage
// collection"): the leases protocol, owner activity on the shares
// protocol, and a collector that removes, every GCInterval, the shares and
// manifest copies whose lease expired, that nothing anchored references
// (orphans) or that their owner retired (superseded), each a grace period
// late. The collector asks the ledger what it needs (referee), and writes
// what it found to DATA/gc.json, which `medwallet peer usage` reads.

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/p2p/leases"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
)

// GCFile is the report of the collector's latest pass, in the data
// directory.
const GCFile = "gc.json"

// GCConfig is the lease length, the grace period and the collection
// interval (store's defaults where zero).
type GCConfig struct {
	Lease, Grace, Interval time.Duration
	// Off turns collection off (leases are still kept and renewed).
	Off bool
	// Authorise, if set, lets parties other than the owner renew a
	// record's leases (p2p/leases WithAuthorise): the hook for repairers
	// holding a repair grant. Nil: only the owner renews.
	Authorise leases.Authorise
}

func (c GCConfig) policy() store.Policy {
	p := store.DefaultPolicy()
	if c.Lease > 0 {
		p.Lease = c.Lease
	}
	if c.Grace > 0 {
		p.Grace = c.Grace
	}
	return p
}

// collector runs the collection passes of a peer.
type collector struct {
	p      *Peer
	policy store.Policy
	every  time.Duration
	dir    string
	leases *leases.Service

	mu      sync.Mutex
	retires map[consent.ID]*retired // per owner, read up to seq

	passMu    sync.Mutex
	collected map[string]int // by reason, since the peer started
	bytes     int64
}

// retired is what one owner's retire entries say, read up to seq.
type retired struct {
	seq     uint64
	removed map[string]time.Time
	shares  map[string]map[vault.ShareID]time.Time
}

// startGC starts the leases protocol and, unless cfg.Off, the collector.
func (p *Peer) startGC(ctx context.Context, cfg GCConfig, dir string) {
	c := &collector{p: p, policy: cfg.policy(), every: cfg.Interval, dir: dir, retires: map[consent.ID]*retired{},
		collected: map[string]int{}}
	if c.every <= 0 {
		c.every = store.DefaultGCInterval
	}
	var opts []leases.Option
	if cfg.Authorise != nil {
		opts = append(opts, leases.WithAuthorise(cfg.Authorise))
	}
	c.leases = leases.NewService(p.Host, p.Store, p.log, opts...)
	p.gc = c
	if cfg.Off {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(c.every)
		defer t.Stop()
		for {
			if _, err := c.pass(ctx, false); err != nil && ctx.Err() == nil {
				p.log.Warn("garbage collection failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (c *collector) close() {
	if c != nil && c.leases != nil {
		c.leases.Close()
	}
}

// Collect runs one collection pass now (dryRun: only counts) and returns
// its report.
func (p *Peer) Collect(ctx context.Context, dryRun bool) (store.GCReport, error) {
	return p.gc.pass(ctx, dryRun)
}

func (c *collector) pass(ctx context.Context, dryRun bool) (store.GCReport, error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	rep, err := c.p.Store.Collect(ctx, c.policy, c.referee(), dryRun)
	if err != nil {
		return rep, err
	}
	for k, n := range rep.Removed {
		c.collected[k] += n
	}
	c.bytes += rep.RemovedBytes
	rep.Collected, rep.CollectedBytes = maps.Clone(c.collected), c.bytes
	if n := rep.RemovedBytes; n > 0 || len(rep.Removed) > 0 {
		c.p.log.Info("garbage collected", "orphan", rep.Removed[store.Orphan], "superseded", rep.Removed[store.Superseded],
			"expired", rep.Removed[store.Expired], "bytes", n)
	}
	if !dryRun {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = fsutil.WriteFileAtomic(filepath.Join(c.dir, GCFile), append(b, '\n'), 0o600)
		}
		if err != nil {
			c.p.log.Warn("writing the collection report failed", "err", err)
		}
	}
	return rep, nil
}

// referee answers from the peer's ledger view what collection needs of
// one record. An owner's feed counts as known once it is on this peer,
// the owner's latest serve entry names this peer (so the wallet pushes
// its entries here, and fellow peers let it sync them) and the peer has
// caught up with the ledger since it started: a holder the owner does not
// name may miss the anchors of records it holds, so it only lets leases
// expire.
func (c *collector) referee() store.Referee {
	return refereeOf(c.p.Ledger, c.p.ID(), c.p.ready.Load(), c.retires, &c.mu, c.p.log)
}

// refereeOf answers from l for the peer self; retires caches the owners'
// retire entries read so far (guarded by mu).
func refereeOf(l *consent.Ledger, self consent.ID, ready bool, retires map[consent.ID]*retired, mu *sync.Mutex, log *slog.Logger) store.Referee {
	return func(owner consent.ID, record string) store.Record {
		var r store.Record
		var head consent.Head
		named := false
		l.View(func(v *consent.View) {
			head = v.Head(owner)
			named = slices.Contains(v.ServingPeers(owner), self)
			if a, ok := v.Anchor(owner, record); ok {
				r.Anchor = a.Manifest
			}
			if head.Seq > 0 {
				mu.Lock()
				readRetires(v, retires, owner, head.Seq, log)
				mu.Unlock()
			}
		})
		if head.Seq == 0 {
			return r
		}
		// The owner's backup and sealed identity are named by no anchor
		// (consent.IsOwnerBlob): never orphans, only their leases expire.
		r.Known = ready && named && !consent.IsOwnerBlob(owner, record)
		r.Active = time.Unix(head.Time, 0)
		mu.Lock()
		if rt := retires[owner]; rt != nil {
			r.Removed = rt.removed[record]
			r.Retired = rt.shares[record]
		}
		mu.Unlock()
		return r
	}
}

// readRetires reads owner's retire entries beyond those read before.
func readRetires(v *consent.View, retires map[consent.ID]*retired, owner consent.ID, head uint64, log *slog.Logger) {
	rt := retires[owner]
	if rt == nil {
		rt = &retired{removed: map[string]time.Time{}, shares: map[string]map[vault.ShareID]time.Time{}}
		retires[owner] = rt
	}
	if rt.seq >= head {
		return
	}
	err := v.FeedFrom(owner, rt.seq+1, func(e *consent.Entry) error {
		rt.seq = e.Seq
		if e.Kind != consent.KindRetire {
			return nil
		}
		b, err := e.DecodedBody()
		if err != nil {
			return nil
		}
		body := b.(*consent.RetireBody)
		at := time.Unix(e.Time, 0)
		if body.Removed {
			rt.removed[body.Record] = at
		}
		if len(body.Shares) > 0 && rt.shares[body.Record] == nil {
			rt.shares[body.Record] = map[vault.ShareID]time.Time{}
		}
		for _, h := range body.Shares {
			rt.shares[body.Record][vault.ShareID(h)] = at
		}
		return nil
	})
	if err != nil {
		log.Debug("reading retire entries failed", "owner", owner.Short(), "err", err)
	}
}

// ReadGCReport reads the report a peer wrote to dir/GCFile.
func ReadGCReport(dir string) (store.GCReport, error) {
	var r store.GCReport
	b, err := os.ReadFile(filepath.Join(dir, GCFile))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}
