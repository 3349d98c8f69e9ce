package attack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/manifests"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

// Frames of the peer protocols whose Go types are unexported, written
// from docs/format.md ("Peer protocols") with the same CBOR keys.
type (
	shareRequest struct {
		Op     string `cbor:"1,keyasint"`
		Record string `cbor:"2,keyasint,omitempty"`
		Share  []byte `cbor:"3,keyasint,omitempty"`
		Access []byte `cbor:"4,keyasint,omitempty"`
	}
	syncRequest struct {
		Op     uint8      `cbor:"1,keyasint"`
		After  consent.ID `cbor:"2,keyasint,omitempty"`
		Author consent.ID `cbor:"3,keyasint,omitempty"`
		From   uint64     `cbor:"4,keyasint,omitempty"`
		Limit  uint32     `cbor:"5,keyasint,omitempty"`
	}
)

// newHost is a dial-only libp2p host with key priv, TCP only. The
// attacker's own side runs without resource limits: it is not under test.
func newHost(t testing.TB, priv ed25519.PrivateKey) host.Host {
	h, err := dialer(priv)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func dialer(priv ed25519.PrivateKey) (host.Host, error) {
	sk, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return libp2p.New(libp2p.Identity(sk), libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(), libp2p.DisableMetrics(), libp2p.ResourceManager(&network.NullResourceManager{}))
}

// stranger is a throw-away identity: a fresh key, its own feed, a host
// that knows every peer's address.
type stranger struct {
	priv   ed25519.PrivateKey
	signer *consent.KeySigner
	host   host.Host
	head   consent.Head
}

func newStranger(n *testnet) (*stranger, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	s, err := consent.NewKeySigner(priv)
	if err != nil {
		return nil, err
	}
	h, err := dialer(priv)
	if err != nil {
		return nil, err
	}
	for _, p := range n.peers {
		h.Peerstore().AddAddrs(p.id, p.info().Addrs, peerstore.PermanentAddrTTL)
	}
	return &stranger{priv: priv, signer: s, host: h}, nil
}

// strangers makes k strangers; close them with closeAll.
func strangers(n *testnet, k int) ([]*stranger, error) {
	var out []*stranger
	for range k {
		s, err := newStranger(n)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func closeAll(ss []*stranger) {
	for _, s := range ss {
		s.host.Close()
	}
}

func (s *stranger) id() consent.ID { return s.signer.ID() }

// signEntry signs an entry with whatever fields the attacker chooses,
// skipping every check a honest writer makes.
func signEntry(priv ed25519.PrivateKey, author consent.ID, seq uint64, prev consent.Hash, t int64, kind consent.Kind, body any) *consent.Entry {
	b, err := consent.Marshal(body)
	if err != nil {
		panic(err)
	}
	e := &consent.Entry{Author: author, Seq: seq, Prev: prev, Time: t, Kind: kind, Body: b}
	e.Sig = ed25519.Sign(priv, e.SignedMessage())
	return e
}

// next signs the next entry of the stranger's own feed, dated t.
func (s *stranger) next(t int64, kind consent.Kind, body any) *consent.Entry {
	e := signEntry(s.priv, s.id(), s.head.Seq+1, s.head.Hash, t, kind, body)
	s.head = consent.Head{Seq: e.Seq, Hash: e.Hash()}
	return e
}

// identity is a valid identity entry body.
func identityBody() *consent.IdentityBody {
	a, err := age.GenerateX25519Identity()
	if err != nil {
		panic(err)
	}
	return &consent.IdentityBody{AgeRecipient: a.Recipient().String(), Role: "clinician"}
}

// bigGrant is a valid grant body of about size bytes: records with
// wrapped keys of up to 4 KiB, the way the largest legitimate entries are
// made. Its grantee is a random ID.
func bigGrant(size int) *consent.Grant {
	_, priv, _ := ed25519.GenerateKey(nil)
	s, _ := consent.NewKeySigner(priv)
	g := &consent.Grant{Grantee: s.ID(), Scopes: []string{scopeAll}, Purpose: purpose, NotBefore: time.Now().Unix()}
	for i := 0; size > 0 && i < consent.MaxGrantRecords; i++ {
		rec := fmt.Sprintf("r%05d", i)
		k := min(4000, size)
		key := make([]byte, max(k, 1))
		rand.Read(key)
		g.Records = append(g.Records, rec)
		g.Keys = append(g.Keys, consent.WrappedKey{Record: rec, Key: key})
		size -= k + 20
	}
	return g
}

// shareHeader is a valid share header (vault format) naming rid.
func shareHeader(rid vault.RecordID, block uint32) []byte {
	h := make([]byte, vault.ShareHeaderSize)
	copy(h, "MWSH")
	h[4] = 1 // version
	h[5], h[6], h[7] = 0, 1, 1
	binary.BigEndian.PutUint32(h[8:12], block)
	copy(h[12:28], rid[:])
	return h
}

func randomRecord() vault.RecordID {
	var r vault.RecordID
	rand.Read(r[:])
	return r
}

// hold keeps count streams of proto open from h to each target peer
// until ctx ends: each is opened, handed to use (which keeps it busy
// until it fails or ctx ends), reset, and opened again. ready is called
// once every stream was opened at least once (or tried for 10 s).
func hold(ctx context.Context, wg *sync.WaitGroup, h host.Host, targets []*peerProc, proto protocol.ID, count int,
	use func(ctx context.Context, s network.Stream) error) (opened func() int) {
	var mu sync.Mutex
	total := 0
	for _, p := range targets {
		for range count {
			wg.Add(1)
			go func() {
				defer wg.Done()
				first := true
				for ctx.Err() == nil {
					sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					s, err := h.NewStream(sctx, p.id, proto)
					cancel()
					if err != nil {
						sleep(ctx, 500*time.Millisecond)
						continue
					}
					if first {
						first = false
						mu.Lock()
						total++
						mu.Unlock()
					}
					stop := context.AfterFunc(ctx, func() { s.Reset() })
					_ = use(ctx, s)
					stop()
					s.Reset()
					sleep(ctx, 200*time.Millisecond)
				}
			}()
		}
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return total
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// trickle writes one byte every interval until a write fails or ctx ends.
func trickle(ctx context.Context, s network.Stream, interval time.Duration) error {
	for ctx.Err() == nil {
		sleep(ctx, interval)
		if _, err := s.Write([]byte{0}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// waitOpened waits until opened() reaches want or 20 s pass.
func waitOpened(ctx context.Context, opened func() int, want int) int {
	deadline := time.Now().Add(20 * time.Second)
	for opened() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		sleep(ctx, 50*time.Millisecond)
	}
	return opened()
}

// pushAll pushes entries to every target in batches and returns the acks
// by status name, summed.
func pushAll(ctx context.Context, h host.Host, targets []*peerProc, entries []*consent.Entry, batch int) map[string]int {
	var mu sync.Mutex
	acks := map[string]int{}
	var wg sync.WaitGroup
	for _, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(entries) && ctx.Err() == nil; i += batch {
				pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				as, err := ledgersync.Push(pctx, h, p.id, entries[i:min(i+batch, len(entries))])
				cancel()
				mu.Lock()
				for _, a := range as {
					acks[a.Status.String()]++
				}
				if err != nil {
					acks["error"]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acks
}

// putShare stores size bytes as a share of a random record of the
// stranger's on p, and returns the share's ID and the record.
func (s *stranger) putShare(ctx context.Context, p *peerProc, size int) (vault.ShareID, string, error) {
	rid := randomRecord()
	body := make([]byte, size)
	copy(body, shareHeader(rid, uint32(size-vault.ShareHeaderSize)))
	rand.Read(body[vault.ShareHeaderSize:])
	id, err := shares.Put(ctx, s.host, p.id, rid.String(), &byteReader{b: body})
	return id, rid.String(), err
}

// putManifest stores size bytes as a manifest copy of a random record.
func (s *stranger) putManifest(ctx context.Context, p *peerProc, size int) error {
	env := make([]byte, size)
	rand.Read(env)
	return manifests.Put(ctx, s.host, p.id, randomRecord().String(), s.id(), env)
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// ownRequest is the stranger's signed request for its own record.
func (s *stranger) ownRequest(record string) *consent.Request {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	r, err := consent.SignRequest(s.signer, consent.Request{Requester: s.id(), Owner: s.id(), Record: record,
		Scope: scopeAll, Purpose: purpose, Time: time.Now().Unix(), Nonce: nonce})
	if err != nil {
		panic(err)
	}
	return r
}

// writeFrame sends v as one frame.
func writeFrame(s network.Stream, v any) error { return wire.Write(s, v) }
