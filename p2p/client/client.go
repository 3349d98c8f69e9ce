// Package client is medwallet's light client: the CLI dials the peers in
// its configuration for one command and closes, with the user's own
// identity key, so every stream it opens is authenticated as the user.
//
// It places a record's shares on distinct peers by rendezvous hashing,
// fetches shares with a freshly signed consent request per share, pushes
// ledger entries until a peer holds them, pulls feeds, and replicates
// encrypted manifests.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/netfile"
	"github.com/medwallet/medwallet/p2p/node"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
)

// ErrNoPeers reports that too few peers could be reached.
var ErrNoPeers = errors.New("not enough reachable peers")

// DialTimeout bounds connecting to each configured peer.
var DialTimeout = 5 * time.Second

// DirectWait bounds how long Health waits for hole punching to turn a
// peer's relayed connection into a direct one before it reports it.
var DirectWait = 5 * time.Second

// Client is a connected light client.
type Client struct {
	h      host.Host
	signer consent.Signer
	all    []peer.AddrInfo
	up     []peer.ID
	errs   map[peer.ID]error

	placedMu  sync.Mutex
	placed    map[vault.ShareID]placedShare // shares this client stored and did not delete
	manifests map[string]map[peer.ID]bool   // record -> peers that took a manifest copy
	holders   map[string][]peer.ID          // record -> peers known to hold it (PreferHolders)
	domains   map[peer.ID]netfile.Domain    // failure domains (domains.go)
}

// placedShare is where a share went.
type placedShare struct {
	record string
	peer   peer.ID
}

// Dial connects to the configured peers (full multiaddrs) in parallel and
// keeps those that answer.
func Dial(ctx context.Context, key ed25519.PrivateKey, peers []string) (*Client, error) {
	return DialWith(ctx, key, peers, DialOptions{})
}

// DialOptions tune DialWith.
type DialOptions struct {
	// Straggle, if not zero, is how long DialWith waits for the other
	// peers once one answered: those slower than that are left out (as
	// peers that did not answer), so that a peer that hangs does not hold
	// up, for DialTimeout, a command that the others serve.
	Straggle time.Duration
}

// HolePunchWait bounds how long a client that listens for hole punching
// waits, before it dials peers through their relays, for its DCUtR
// service to answer (see readyForHolePunching).
var HolePunchWait = 3 * time.Second

// readyForHolePunching connects to the relays of the peers listed at
// relay addresses, then waits (at most HolePunchWait) until the host
// answers DCUtR. A peer behind NAT starts DCUtR once, as soon as an
// inbound relayed connection is identified, and go-libp2p registers the
// DCUtR handler only once the host has a public address of its own, which
// the relay's identify gives it: a client that dialed through the relay at
// once was never ready in time, and its connections stayed relayed
// (internal/netbed, TestAcrossNATs).
func readyForHolePunching(ctx context.Context, h host.Host, ais []peer.AddrInfo) {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalProtocolsUpdated))
	if err != nil {
		return
	}
	defer sub.Close()
	seen := map[peer.ID]bool{}
	for _, ai := range ais {
		for _, a := range ai.Addrs {
			if !node.IsRelayed(a) {
				continue
			}
			hop, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_CIRCUIT })
			relay, err := peer.AddrInfoFromP2pAddr(hop)
			if err != nil || seen[relay.ID] {
				continue
			}
			seen[relay.ID] = true
			cctx, cancel := context.WithTimeout(ctx, DialTimeout)
			_ = h.Connect(cctx, *relay) // the dial through it says why it failed
			cancel()
		}
	}
	t := time.NewTimer(HolePunchWait)
	defer t.Stop()
	for !slices.Contains(h.Mux().Protocols(), holepunch.Protocol) {
		select {
		case <-sub.Out():
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// DialWith is Dial with options.
func DialWith(ctx context.Context, key ed25519.PrivateKey, peers []string, o DialOptions) (*Client, error) {
	ais, err := netfile.ParseAddrs(peers)
	if err != nil {
		return nil, err
	}
	signer, err := consent.NewKeySigner(key)
	if err != nil {
		return nil, err
	}
	// A peer listed at a relay address is behind NAT: the client then
	// listens on ephemeral ports, so that hole punching can give it a
	// direct connection to move shares on.
	punch := false
	for _, ai := range ais {
		punch = punch || slices.ContainsFunc(ai.Addrs, node.IsRelayed)
	}
	h, err := node.New(key, node.Options{UserAgent: "medwallet", Punch: punch})
	if err != nil {
		return nil, err
	}
	c := &Client{h: h, signer: signer, errs: map[peer.ID]error{}}
	if punch {
		readyForHolePunching(ctx, h, ais)
	}
	// Several addresses of one peer collapse into one AddrInfo.
	byID := map[peer.ID]*peer.AddrInfo{}
	for _, ai := range ais {
		if old, ok := byID[ai.ID]; ok {
			old.Addrs = append(old.Addrs, ai.Addrs...)
			continue
		}
		a := ai
		byID[ai.ID] = &a
		c.all = append(c.all, a)
	}
	for i := range c.all {
		c.all[i] = *byID[c.all[i].ID]
	}
	// The dials still going when DialWith returns (stragglers) end then.
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type dialed struct {
		id  peer.ID
		err error
	}
	done := make(chan dialed, len(c.all))
	for _, ai := range c.all {
		go func() {
			ctx, cancel := context.WithTimeout(dctx, DialTimeout)
			defer cancel()
			// A connection through a relay will do: each protocol
			// says whether it may run over one.
			ctx = network.WithAllowLimitedConn(ctx, "medwallet: reach a peer behind NAT through its relay")
			done <- dialed{ai.ID, h.Connect(ctx, ai)}
		}()
	}
	var straggle <-chan time.Time
	answered := map[peer.ID]bool{}
wait:
	for range c.all {
		select {
		case d := <-done:
			answered[d.id] = true
			if d.err != nil {
				c.errs[d.id] = d.err
				continue
			}
			c.up = append(c.up, d.id)
			if len(c.up) == 1 && o.Straggle > 0 {
				t := time.NewTimer(o.Straggle)
				defer t.Stop()
				straggle = t.C
			}
		case <-straggle:
			break wait
		}
	}
	for _, ai := range c.all {
		if !answered[ai.ID] {
			c.errs[ai.ID] = fmt.Errorf("no answer within %v of the first peer's", o.Straggle)
		}
	}
	slices.SortFunc(c.up, func(a, b peer.ID) int { return stringsCompare(string(a), string(b)) })
	return c, nil
}

func stringsCompare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Close closes the client's host.
func (c *Client) Close() error { return c.h.Close() }

// Host is the client's libp2p host.
func (c *Client) Host() host.Host { return c.h }

// Reachable lists the peers that answered, sorted.
func (c *Client) Reachable() []peer.ID { return slices.Clone(c.up) }

// Configured is the number of distinct configured peers.
func (c *Client) Configured() int { return len(c.all) }

// Require fails with ErrNoPeers unless at least n peers are reachable.
func (c *Client) Require(n int) error {
	if len(c.up) >= n {
		return nil
	}
	return fmt.Errorf("%w: %d of %d configured peers answered, %d needed", ErrNoPeers, len(c.up), len(c.all), n)
}

// rank orders the reachable peers by rendezvous hashing on key: the same
// key gives every client the same order, and a peer leaving moves only the
// shares it held.
func (c *Client) rank(key string) []peer.ID {
	type scored struct {
		id    peer.ID
		score [32]byte
	}
	s := make([]scored, 0, len(c.up))
	for _, p := range c.up {
		s = append(s, scored{p, sha256.Sum256([]byte(key + "\x00" + string(p)))})
	}
	sort.Slice(s, func(i, j int) bool { return string(s[i].score[:]) > string(s[j].score[:]) })
	out := make([]peer.ID, len(s))
	for i, x := range s {
		out[i] = x.id
	}
	return out
}

// ShareSink is where vault.Seal puts the user's records on the network. A
// Put reads the share header to learn the record, then streams the share to
// the next peer, in the record's rendezvous order, that holds no share of
// that record yet, so a record's shares land on distinct peers. A peer
// that refuses the share before taking a byte of it (its storage policy,
// quota, put rate or full disk; or it cannot be reached) is passed over for
// the next one. Delete removes a share from every reachable peer that
// holds it.
//
// It is a sink, not a vault.ShareStore: Put takes only the shares Seal
// writes (peers refuse a share whose header does not name its record), and
// reading goes through consent, with a Getter or a RecordStore.
func (c *Client) ShareSink() vault.ShareSink { return c.newSink() }

// RecordStore is a ShareSink that also reads: Get fetches a share through
// consent with access (for the owner: Owner and Requester are the same),
// and Has asks the reachable peers. Like the sink, its Put takes only
// shares Seal writes, so it does not pass vault/storetest; it has the
// shape of a vault.ShareStore so that the wallet's use cases run on it
// and on a local store alike.
func (c *Client) RecordStore(access Access) vault.ShareStore {
	return &recordStore{shareSink: c.newSink(), access: access}
}

type shareSink struct {
	c       *Client
	mu      sync.Mutex
	used    map[string]map[peer.ID]bool
	refused map[string][]error // per record: the peers' refusals so far
}

func (c *Client) newSink() *shareSink {
	return &shareSink{c: c, used: map[string]map[peer.ID]bool{}, refused: map[string][]error{}}
}

// refuse notes a peer's refusal of a share of record and returns them all.
func (s *shareSink) refuse(record string, err error) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.refused[record] = append(s.refused[record], err)
	}
	return slices.Clone(s.refused[record])
}

func (s *shareSink) next(record string) (peer.ID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	used := s.used[record]
	if used == nil {
		used = map[peer.ID]bool{}
		s.used[record] = used
	}
	p, ok := s.c.spread(s.c.rank(record), used) // domains.go
	if ok {
		used[p] = true
	}
	return p, ok
}

// Put streams r to one peer. Peers that refuse it before it starts are
// passed over; once a peer took bytes of the share, a failure cannot be
// retried elsewhere without buffering the share, so it fails; Seal then
// fails the record and removes what it stored. When no peer is left and
// peers refused shares of the record, the error joins their refusals
// (errors.Is finds the store's admission errors in it).
func (s *shareSink) Put(ctx context.Context, r io.Reader) (vault.ShareID, error) {
	hdr := make([]byte, vault.ShareHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return vault.ShareID{}, fmt.Errorf("reading the share header: %w", err)
	}
	rid, err := vault.ShareRecord(hdr)
	if err != nil {
		return vault.ShareID{}, err
	}
	for {
		p, ok := s.next(rid.String())
		if !ok {
			// The peers left were taken by refused shares of this record.
			if refused := s.refuse(rid.String(), nil); len(refused) > 0 {
				return vault.ShareID{}, fmt.Errorf("no other peer to place the share on: %w", errors.Join(refused...))
			}
			return vault.ShareID{}, fmt.Errorf("%w: more shares than distinct peers", ErrNoPeers)
		}
		body := &countReader{r: io.MultiReader(bytes.NewReader(hdr), r)}
		id, err := shares.Put(ctx, s.c.h, p, rid.String(), body)
		if err == nil {
			s.c.notePlaced(id, rid.String(), p)
		}
		if err == nil || body.n.Load() > 0 || ctx.Err() != nil {
			return id, err
		}
		s.refuse(rid.String(), err)
	}
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Delete removes the share from every reachable peer that holds it.
func (s *shareSink) Delete(ctx context.Context, id vault.ShareID) error {
	s.c.placedMu.Lock()
	delete(s.c.placed, id)
	s.c.placedMu.Unlock()
	var errs []error
	for _, p := range s.c.Holders(ctx, id) {
		if err := shares.Delete(ctx, s.c.h, p, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type recordStore struct {
	*shareSink
	access Access
}

// Get reads a share through consent with the store's access.
func (s *recordStore) Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error) {
	return s.c.Getter(s.access).Get(ctx, id)
}

// Has reports whether any reachable peer holds the share.
func (s *recordStore) Has(ctx context.Context, id vault.ShareID) (bool, error) {
	return len(s.c.Holders(ctx, id)) > 0, nil
}

// eachPeer runs fn for every reachable peer concurrently and waits for all.
func (c *Client) eachPeer(fn func(p peer.ID)) {
	var wg sync.WaitGroup
	for _, p := range c.up {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(p)
		}()
	}
	wg.Wait()
}

// Holders asks every reachable peer, in parallel, whether it holds id.
func (c *Client) Holders(ctx context.Context, id vault.ShareID) []peer.ID {
	var mu sync.Mutex
	var out []peer.ID
	c.eachPeer(func(p peer.ID) {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if ok, err := shares.Has(hctx, c.h, p, id); err == nil && ok {
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
		}
	})
	slices.Sort(out)
	return out
}

// Access describes the requests a Getter signs.
type Access struct {
	Owner   consent.ID
	Record  string
	Scope   string
	Purpose string
	// BreakGlass names the requester's break-glass entry, for requests
	// under an emergency grant.
	BreakGlass consent.Hash
}

// Getter returns a vault.ShareGetter that fetches each share from a peer
// holding it, with a fresh signed request per attempt. Denials are
// collected in Denials.
func (c *Client) Getter(a Access) *Getter { return &Getter{c: c, a: a} }

// Getter fetches shares under consent.
type Getter struct {
	c  *Client
	a  Access
	mu sync.Mutex
	// Denials are the consent refusals met so far.
	Denials []*shares.DeniedError
}

// Get implements vault.ShareGetter.
func (g *Getter) Get(ctx context.Context, id vault.ShareID) (io.ReadCloser, error) {
	holders := g.c.Holders(ctx, id)
	if len(holders) == 0 {
		return nil, fmt.Errorf("share %s: %w on any reachable peer", id.String()[:12], vault.ErrNotFound)
	}
	var errs []error
	for _, p := range holders {
		req, err := g.c.SignRequest(g.a)
		if err != nil {
			return nil, err
		}
		rc, err := shares.Get(ctx, g.c.h, p, id, req)
		if err == nil {
			return rc, nil
		}
		var de *shares.DeniedError
		if errors.As(err, &de) {
			g.mu.Lock()
			g.Denials = append(g.Denials, de)
			g.mu.Unlock()
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// SignRequest signs an access request with a fresh nonce.
func (c *Client) SignRequest(a Access) (*consent.Request, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return consent.SignRequest(c.signer, consent.Request{
		Owner: a.Owner, Record: a.Record, Scope: a.Scope, Purpose: a.Purpose,
		Time: time.Now().Unix(), Nonce: nonce, BreakGlass: a.BreakGlass,
	})
}

// Push sends entries to every reachable peer in parallel and succeeds if
// at least one accepted every entry (or already had it); it returns the
// peers that did. Pushing to all, not one, keeps a grant or a revocation
// moving even where the peers' gossip mesh is split; gossip and sync carry
// it to the rest.
func (c *Client) Push(ctx context.Context, entries []*consent.Entry) ([]peer.ID, error) {
	if err := c.Require(1); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var ok []peer.ID
	var errs []error
	c.eachPeer(func(p peer.ID) {
		acks, err := ledgersync.Push(ctx, c.h, p, entries)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		good := len(acks) == len(entries)
		for _, a := range acks {
			if err := a.Err(p); err != nil {
				good = false
				errs = append(errs, err)
			}
		}
		if good {
			ok = append(ok, p)
		}
	})
	if len(ok) == 0 {
		return nil, fmt.Errorf("no peer took the entries: %w", errors.Join(errs...))
	}
	return ok, nil
}

// Pull fetches, from the reachable peers, the entries beyond have and
// returns them (PullInto, collected). have is updated as for PullInto.
func (c *Client) Pull(ctx context.Context, have map[consent.ID]uint64) ([]*consent.Entry, error) {
	var out []*consent.Entry
	if have == nil {
		have = map[consent.ID]uint64{}
	}
	err := c.PullInto(ctx, have, func(es []*consent.Entry) error {
		out = append(out, es...)
		return nil
	})
	return out, err
}

// PullInto fetches the entries beyond have from the reachable peers, one
// after another, and hands them to fn in batches as they come (verified;
// each feed's entries in order and chained; at most pullCommit entries),
// so that the caller never holds the whole ledger: fn ingests each. fn
// runs on a goroutine of its own, one batch at a time, while at most
// pullAhead fetched batches (of up to 256 entries) wait; those waiting
// go to fn together. Once a batch is queued for fn, have[author] moves to its last
// seq, so a later peer is asked only for what the earlier ones lacked. A
// peer that fails is skipped; an error from fn stops the pull and is
// returned as is. PullInto fails if no peer answered.
func (c *Client) PullInto(ctx context.Context, have map[consent.ID]uint64, fn func([]*consent.Entry) error) error {
	return c.PullIntoWith(ctx, have, fn, PullOptions{})
}

// PullOptions tune PullIntoWith.
type PullOptions struct {
	// Fan asks every reachable peer at once, each for what the caller
	// held when the pull began, rather than one after another: a caller
	// that is up to date (a wallet about to sign) learns so in about one
	// round trip rather than one per peer, while an entry it lacks comes
	// from every peer that holds it (a restore is for sync, which pulls
	// one peer after another). have is left as it was.
	Fan bool
	// Grace, with Fan, is how long the other peers may go on once one
	// of them answered in full: those still going then are cancelled, so
	// that a peer that stalls does not hold the caller up until its
	// stream times out. Zero waits for every peer.
	Grace time.Duration
}

// PullIntoWith is PullInto with options.
func (c *Client) PullIntoWith(ctx context.Context, have map[consent.ID]uint64, fn func([]*consent.Entry) error, o PullOptions) error {
	if err := c.Require(1); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan []*consent.Entry, pullAhead)
	done := make(chan struct{})
	var fnErr atomic.Pointer[error]
	go func() {
		defer close(done)
		for es := range queue {
			if fnErr.Load() != nil {
				continue
			}
			// Batches that wait go to fn together, up to pullCommit
			// entries: a commit costs about as much for 1024 entries as
			// for 256.
		more:
			for len(es) < pullCommit {
				select {
				case next, ok := <-queue:
					if !ok {
						break more
					}
					es = slices.Concat(es, next)
				default:
					break more
				}
			}
			if err := fn(es); err != nil {
				fnErr.Store(&err)
				cancel()
			}
		}
	}()
	var mu sync.Mutex
	var errs []error
	// pullFrom pulls from p what it holds beyond have, which it updates.
	pullFrom := func(ctx context.Context, p peer.ID, have map[consent.ID]uint64) bool {
		take := func(es []*consent.Entry) error {
			select {
			case queue <- es:
			case <-ctx.Done():
				return ctx.Err()
			}
			last := es[len(es)-1]
			have[last.Author] = max(have[last.Author], last.Seq)
			return nil
		}
		if err := ledgersync.PullBatches(ctx, c.h, p, have, take); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return false
		}
		return true
	}
	if o.Fan {
		fctx, fcancel := context.WithCancel(ctx)
		defer fcancel()
		answered := make(chan struct{}, len(c.up))
		var wg sync.WaitGroup
		for _, p := range c.up {
			have := maps.Clone(have)
			wg.Go(func() {
				if pullFrom(fctx, p, have) {
					answered <- struct{}{}
				}
			})
		}
		if o.Grace > 0 {
			go func() {
				select {
				case <-answered:
				case <-fctx.Done():
					return
				}
				t := time.NewTimer(o.Grace)
				defer t.Stop()
				select {
				case <-t.C:
					fcancel()
				case <-fctx.Done():
				}
			}()
		}
		wg.Wait()
		fcancel()
	} else {
		for _, p := range c.up {
			if ctx.Err() != nil {
				break
			}
			pullFrom(ctx, p, have)
		}
	}
	close(queue)
	<-done
	if err := fnErr.Load(); err != nil {
		return *err
	}
	if len(errs) == len(c.up) {
		return errors.Join(errs...)
	}
	return nil
}

// pullAhead is how many fetched batches PullInto holds while fn takes
// one, and pullCommit the most entries it hands fn at once.
const (
	pullAhead  = 4
	pullCommit = 1024
)

// PutManifest stores a manifest copy on up to replicas peers, the record's
// first in rendezvous order that take it (a peer that refuses or fails is
// replaced by the next), and succeeds if at least one took it. Peers this
// client put a share of the record on come first, so that the record's
// serving set stays as small as its shares make it and the peers outside
// it remain free to witness the owner's feed.
func (c *Client) PutManifest(ctx context.Context, record string, recipient consent.ID, envelope []byte, replicas int) (int, error) {
	n := 0
	var errs []error
	for _, p := range c.shareHoldersFirst(record, c.rank("manifest\x00"+record)) {
		if n >= replicas || ctx.Err() != nil {
			break
		}
		if err := manifests.Put(ctx, c.h, p, record, recipient, envelope); err != nil {
			errs = append(errs, err)
			continue
		}
		c.noteManifest(record, p)
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("no peer stored the manifest: %w", errors.Join(errs...))
	}
	return n, nil
}

// PreferHolders tells the client which peers already hold record (its
// shares or manifest copies, as the caller's placement says), so that
// PutManifest puts later copies (a grantee's) there first.
func (c *Client) PreferHolders(record string, peers []peer.ID) {
	c.placedMu.Lock()
	defer c.placedMu.Unlock()
	if c.holders == nil {
		c.holders = map[string][]peer.ID{}
	}
	c.holders[record] = append([]peer.ID(nil), peers...)
}

// shareHoldersFirst moves the peers in ranked that this client put a
// share of record on, or that PreferHolders named for it, before the
// others, keeping the order within each.
func (c *Client) shareHoldersFirst(record string, ranked []peer.ID) []peer.ID {
	c.placedMu.Lock()
	holds := map[peer.ID]bool{}
	for _, ps := range c.placed {
		if ps.record == record {
			holds[ps.peer] = true
		}
	}
	for _, p := range c.holders[record] {
		holds[p] = true
	}
	c.placedMu.Unlock()
	out := make([]peer.ID, 0, len(ranked))
	for _, p := range ranked {
		if holds[p] {
			out = append(out, p)
		}
	}
	for _, p := range ranked {
		if !holds[p] {
			out = append(out, p)
		}
	}
	return out
}

func (c *Client) notePlaced(id vault.ShareID, record string, p peer.ID) {
	c.placedMu.Lock()
	defer c.placedMu.Unlock()
	if c.placed == nil {
		c.placed = map[vault.ShareID]placedShare{}
	}
	c.placed[id] = placedShare{record: record, peer: p}
}

// PlacedOn returns the peer this client put share id on, if it did (a
// repair capability names it as a hint).
func (c *Client) PlacedOn(id vault.ShareID) (peer.ID, bool) {
	c.placedMu.Lock()
	defer c.placedMu.Unlock()
	ps, ok := c.placed[id]
	return ps.peer, ok
}

func (c *Client) noteManifest(record string, p peer.ID) {
	c.placedMu.Lock()
	defer c.placedMu.Unlock()
	if c.manifests == nil {
		c.manifests = map[string]map[peer.ID]bool{}
	}
	if c.manifests[record] == nil {
		c.manifests[record] = map[peer.ID]bool{}
	}
	c.manifests[record][p] = true
}

// Placement is where a client put a record's shares and manifest copies.
type Placement struct {
	Shares    []peer.ID // peers that took a share, sorted
	Manifests []peer.ID // peers that took a manifest copy, sorted
}

// Placed returns, for each record this client placed anything of, the
// peers that took one of its shares (through ShareSink or RecordStore,
// and not deleted since through them) and those that took a copy of its
// manifest (PutManifest, not deleted since by DeleteManifests).
func (c *Client) Placed() map[string]Placement {
	c.placedMu.Lock()
	defer c.placedMu.Unlock()
	out := map[string]Placement{}
	for _, ps := range c.placed {
		pl := out[ps.record]
		if !slices.Contains(pl.Shares, ps.peer) {
			pl.Shares = append(pl.Shares, ps.peer)
		}
		out[ps.record] = pl
	}
	for record, ps := range c.manifests {
		pl := out[record]
		for p := range ps {
			pl.Manifests = append(pl.Manifests, p)
		}
		out[record] = pl
	}
	for record, pl := range out {
		slices.Sort(pl.Shares)
		slices.Sort(pl.Manifests)
		out[record] = pl
	}
	return out
}

// ListManifests gathers owner's manifest copies readable by the user from
// every reachable peer, one per (record, recipient).
func (c *Client) ListManifests(ctx context.Context, owner consent.ID, record string) ([]manifests.Copy, error) {
	return c.ListManifestsFor(ctx, owner, record, "")
}

// ListManifestsFor gathers owner's manifest copies addressed to recipient
// (a role ID, say) from every reachable peer.
func (c *Client) ListManifestsFor(ctx context.Context, owner consent.ID, record string, recipient consent.ID) ([]manifests.Copy, error) {
	seen := map[string]bool{}
	var out []manifests.Copy
	var errs []error
	for _, p := range c.up {
		cs, err := manifests.ListFor(ctx, c.h, p, owner, record, recipient)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, cp := range cs {
			k := cp.Record + "\x00" + string(cp.Recipient) + "\x00" + string(cp.Envelope)
			if !seen[k] {
				seen[k] = true
				out = append(out, cp)
			}
		}
	}
	if len(errs) == len(c.up) && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// DeleteManifests removes the user's manifest copies of record from every reachable peer.
func (c *Client) DeleteManifests(ctx context.Context, record string) error {
	c.placedMu.Lock()
	delete(c.manifests, record)
	c.placedMu.Unlock()
	var errs []error
	for _, p := range c.up {
		if err := manifests.Delete(ctx, c.h, p, record); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PeerHealth is what `medwallet peers` shows.
type PeerHealth struct {
	ID        string        `json:"id"`
	Addrs     []string      `json:"addrs"`
	Reachable bool          `json:"reachable"`
	RTT       time.Duration `json:"rtt_ns,omitempty"`
	Agent     string        `json:"agent,omitempty"`
	Error     string        `json:"error,omitempty"`
	// Conns are the client's open connections to the peer.
	Conns []ConnInfo `json:"conns,omitempty"`
}

// ConnInfo describes one connection to a peer.
type ConnInfo struct {
	// Kind is "direct", or "relayed" for a connection through a relay
	// (limited by the relay's budget).
	Kind string `json:"kind"`
	// Transport is the connection's transport ("tcp", "quic-v1"); for a
	// relayed connection, that of the hop to the relay.
	Transport string `json:"transport"`
	// Addr is the peer's address on this connection.
	Addr string `json:"addr"`
}

// Conns describes the client's open connections to p, direct ones first.
func (c *Client) Conns(p peer.ID) []ConnInfo {
	var out []ConnInfo
	for _, cn := range c.h.Network().ConnsToPeer(p) {
		kind, tr := node.ConnKind(cn)
		out = append(out, ConnInfo{Kind: kind, Transport: tr, Addr: cn.RemoteMultiaddr().String()})
	}
	slices.SortFunc(out, func(a, b ConnInfo) int {
		if a.Kind != b.Kind {
			return stringsCompare(a.Kind, b.Kind)
		}
		return stringsCompare(a.Addr, b.Addr)
	})
	return out
}

// Health pings every configured peer.
func (c *Client) Health(ctx context.Context) []PeerHealth {
	out := make([]PeerHealth, len(c.all))
	var wg sync.WaitGroup
	for i, ai := range c.all {
		out[i] = PeerHealth{ID: ai.ID.String()}
		for _, a := range ai.Addrs {
			out[i].Addrs = append(out[i].Addrs, a.String())
		}
		if err := c.errs[ai.ID]; err != nil {
			out[i].Error = "unreachable"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			res := <-ping.Ping(pctx, c.h, ai.ID)
			if res.Error != nil {
				out[i].Error = "no answer to ping"
				return
			}
			out[i].Reachable, out[i].RTT = true, res.RTT
			// A peer behind NAT answers through its relay at first;
			// hole punching may give a direct connection shortly.
			node.AwaitDirect(ctx, c.h, ai.ID, DirectWait)
			out[i].Conns = c.Conns(ai.ID)
			if v, err := c.h.Peerstore().Get(ai.ID, "AgentVersion"); err == nil {
				out[i].Agent, _ = v.(string)
			}
		}()
	}
	wg.Wait()
	return out
}
