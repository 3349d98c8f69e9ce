// Package locate finds the serving peers of a patient: the peers that
// hold its shares and its feed. Serving peers announce themselves in the
// Kademlia DHT as providers of a content ID made from the patient's serve
// key (consent.ServeKey: an HMAC of the patient's ID under the patient's
// rendezvous secret), so only those who know the secret (the patient, its
// serving peers, and the parties it gave its identity card to) can ask for
// them, and the DHT nodes that store the record learn neither the patient
// nor the topic its entries are gossiped on.
//
// Light clients (wallets) run no DHT: they ask a peer they know over
// /medwallet/locate/1.0.0, one request per stream:
//
//	request   {1: key}                     key: the 32-byte serve key
//	response  {1: code, 2: [provider ...]}  code absent on success, else
//	                                       "bad-request" or "busy"
//	provider  {1: peer ID (text), 2: [multiaddr bytes ...]}
//
// A response lists at most MaxProviders providers of at most MaxAddrs
// addresses each. A peer answers one remote at most Burst requests at
// once and Rate a second after that ("busy" beyond); each lookup is
// bounded by LookupTimeout.
package locate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// ID is the locate protocol.
const ID protocol.ID = "/medwallet/locate/1.0.0"

// Limits of the protocol.
const (
	MaxProviders  = 20
	MaxAddrs      = 8
	Burst         = 10
	Rate          = 1.0 // requests a second per remote, after the burst
	LookupTimeout = 10 * time.Second
	streamTimeout = LookupTimeout + 5*time.Second
	maxRequest    = 64
	maxResponse   = 64 << 10
	retryAfter    = time.Minute
)

// Codes of a refused request.
const (
	CodeBadRequest = "bad-request"
	CodeBusy       = "busy"
)

// ErrBusy is a request refused with code "busy": the peer rate-limits
// locate requests per remote; ask again later or ask another peer.
var ErrBusy = errors.New("locate: the peer is busy; try again shortly")

// ErrRefused is a request refused with another code.
var ErrRefused = errors.New("locate: request refused")

// CID is the content ID peers provide for a serve key: CIDv1, raw codec,
// a sha2-256 multihash whose digest is the key itself.
func CID(key [32]byte) cid.Cid {
	m, err := mh.Encode(key[:], mh.SHA2_256)
	if err != nil {
		// A 32-byte digest always encodes.
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, m)
}

// Router is the part of the DHT locate uses: *dht.IpfsDHT is one.
type Router interface {
	Provide(ctx context.Context, c cid.Cid, announce bool) error
	FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo
}

// Find returns the providers of key that r finds within LookupTimeout,
// at most MaxProviders, each with at most MaxAddrs addresses; self is
// left out.
func Find(ctx context.Context, r Router, self peer.ID, key [32]byte) []peer.AddrInfo {
	ctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	var out []peer.AddrInfo
	for ai := range r.FindProvidersAsync(ctx, CID(key), MaxProviders+1) {
		if ai.ID == self || len(out) == MaxProviders {
			continue
		}
		if len(ai.Addrs) > MaxAddrs {
			ai.Addrs = ai.Addrs[:MaxAddrs]
		}
		out = append(out, ai)
	}
	return out
}

type request struct {
	Key []byte `cbor:"1,keyasint"`
}

type provider struct {
	ID    string   `cbor:"1,keyasint"`
	Addrs [][]byte `cbor:"2,keyasint,omitempty"`
}

type response struct {
	Code      string     `cbor:"1,keyasint,omitempty"`
	Providers []provider `cbor:"2,keyasint,omitempty"`
}

// Service answers locate requests from the DHT.
type Service struct {
	h   host.Host
	r   Router
	log *slog.Logger

	rates *wire.RemoteRates
}

// NewService registers the locate handler on h, answering from r.
func NewService(h host.Host, r Router, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{h: h, r: r, log: log, rates: wire.NewRemoteRates(Rate, Burst)}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler.
func (s *Service) Close() { s.h.RemoveStreamHandler(ID) }

func (s *Service) allow(p peer.ID) bool { return s.rates.Allow(p) }

func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(streamTimeout))
	var req request
	if err := wire.Read(st, bufio.NewReader(st), maxRequest, &req); err != nil {
		s.log.Debug("locate request failed", "peer", p.ShortString(), "err", err)
		st.Reset()
		return
	}
	var resp response
	switch {
	case len(req.Key) != 32:
		resp.Code = CodeBadRequest
	case !s.allow(p):
		resp.Code = CodeBusy
	default:
		var key [32]byte
		copy(key[:], req.Key)
		ctx, cancel := context.WithTimeout(context.Background(), LookupTimeout)
		found := Find(ctx, s.r, p, key)
		cancel()
		for _, ai := range found {
			pr := provider{ID: ai.ID.String()}
			for _, a := range ai.Addrs {
				pr.Addrs = append(pr.Addrs, a.Bytes())
			}
			resp.Providers = append(resp.Providers, pr)
		}
	}
	if err := wire.Write(st, &resp); err != nil {
		st.Reset()
		return
	}
	_ = st.Close()
}

// Locate asks peer p for the providers of key.
func Locate(ctx context.Context, h host.Host, p peer.ID, key [32]byte) ([]peer.AddrInfo, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "medwallet locate: small request"), p, ID)
	if err != nil {
		return nil, fmt.Errorf("locate: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	} else {
		_ = st.SetDeadline(time.Now().Add(streamTimeout))
	}
	if err := wire.Write(st, &request{Key: key[:]}); err != nil {
		st.Reset()
		return nil, fmt.Errorf("locate: %w", err)
	}
	_ = st.CloseWrite()
	var resp response
	if err := wire.Read(st, bufio.NewReader(st), maxResponse, &resp); err != nil {
		st.Reset()
		return nil, fmt.Errorf("locate: %w", err)
	}
	switch resp.Code {
	case "":
	case CodeBusy:
		return nil, ErrBusy
	default:
		return nil, fmt.Errorf("%w: %q", ErrRefused, resp.Code)
	}
	if len(resp.Providers) > MaxProviders {
		return nil, fmt.Errorf("locate: %d providers, at most %d", len(resp.Providers), MaxProviders)
	}
	out := make([]peer.AddrInfo, 0, len(resp.Providers))
	for _, pr := range resp.Providers {
		id, err := peer.Decode(pr.ID)
		if err != nil || len(pr.Addrs) > MaxAddrs {
			return nil, fmt.Errorf("locate: malformed provider")
		}
		ai := peer.AddrInfo{ID: id}
		for _, b := range pr.Addrs {
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil {
				return nil, fmt.Errorf("locate: malformed address")
			}
			ai.Addrs = append(ai.Addrs, a)
		}
		out = append(out, ai)
	}
	return out, nil
}

// Served is the set of subjects a peer serves with their rendezvous
// secrets (the same shape as ledgersync.Served).
type Served interface {
	Subjects() []consent.ID
	Secret(consent.ID) ([32]byte, bool)
	OnChange(fn func())
}

// DefaultReprovide is how often an Announcer provides every key again
// (the DHT forgets a provider record after 48 hours).
const DefaultReprovide = 12 * time.Hour

// Announcer provides the serve key of every served subject: at start,
// after each change of the set, and every interval.
type Announcer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Announce starts an Announcer; Close stops it.
func Announce(ctx context.Context, r Router, served Served, interval time.Duration, log *slog.Logger) *Announcer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultReprovide
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &Announcer{cancel: cancel, done: make(chan struct{})}
	changed := make(chan struct{}, 1)
	served.OnChange(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	go func() {
		defer close(a.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		provided := map[[32]byte]bool{}
		all := true
		for {
			n, failed := 0, 0
			for _, id := range served.Subjects() {
				rs, ok := served.Secret(id)
				if !ok {
					continue
				}
				key := consent.ServeKey(id, rs)
				if provided[key] && !all {
					continue
				}
				pctx, pcancel := context.WithTimeout(ctx, time.Minute)
				err := r.Provide(pctx, CID(key), true)
				pcancel()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					failed++
					continue
				}
				provided[key] = true
				n++
			}
			if n+failed > 0 {
				log.Debug("provided serve keys", "provided", n, "failed", failed)
			}
			var retry <-chan time.Time
			if failed > 0 {
				// The DHT may not be bootstrapped yet: try the rest soon.
				retry = time.After(retryAfter)
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
				all = false
			case <-retry:
				all = false
			case <-t.C:
				all = true
			}
		}
	}()
	return a
}

// Close stops the Announcer and waits for it.
func (a *Announcer) Close() {
	a.cancel()
	<-a.done
}
