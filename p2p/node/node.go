// Package node builds the libp2p hosts medwallet uses: a peer that listens
// on TCP and QUIC, or a light client that only dials. The host's key is the
// actor's Ed25519 identity key, so its peer ID is the actor's medwallet ID
// and every connection's Noise or TLS handshake authenticates it.
package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// DefaultListen are a peer's listen addresses when none are given: all
// interfaces, ports chosen by the system, TCP and QUIC.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}

// LoopbackListen listens on loopback only, for tests and devnets.
var LoopbackListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Options configure a host.
type Options struct {
	// Listen are multiaddrs to listen on; none makes a dial-only client.
	Listen []string
	// UserAgent is announced by identify.
	UserAgent string
}

// New returns a host with key priv.
func New(priv ed25519.PrivateKey, o Options) (host.Host, error) {
	sk, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "medwallet"
	}
	opts := []libp2p.Option{
		libp2p.Identity(sk),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DisableRelay(),
		libp2p.UserAgent(ua),
	}
	if len(o.Listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(o.Listen...))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting libp2p: %w", err)
	}
	return h, nil
}

// LoadOrCreateKey reads a peer's Ed25519 key from path (the 32-byte seed),
// creating it with mode 0600 if it does not exist. A key file that others
// can read is refused.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(priv.Seed()); err != nil {
			f.Close()
			os.Remove(path)
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		return priv, f.Close()
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %v: it must not be readable by others (chmod 600)", path, fi.Mode().Perm())
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("key file %s is damaged", path)
	}
	return ed25519.NewKeyFromSeed(b), nil
}
