package pairing

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/cosmos/go-bip39"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// SecretSize is the size of a code's secret: 128 bits.
const SecretSize = 16

// Words is how many BIP-39 words spell a secret (128 bits and a 4-bit
// checksum).
const Words = 12

// maxAddrs bounds the addresses a code carries.
const maxAddrs = 8

// ErrBadCode reports a code that does not parse: a misspelt word, a word
// missing, a bad checksum or a bad address. Nothing was sent anywhere.
var ErrBadCode = errors.New("not a pairing code")

// Code is a one-time pairing code: a 128-bit secret, shown as 12 words of
// the BIP-39 English list (github.com/cosmos/go-bip39), and how to reach
// the device that made it (its peer ID and addresses). Its text form is
//
//	word1-word2-...-word12@/ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...[,ADDR...]
//
// The secret never leaves the two devices: it keys the HMACs each side
// proves itself with (protocol.go).
type Code struct {
	Secret [SecretSize]byte
	Peer   peer.AddrInfo
}

// NewCode draws a fresh secret for the device at addrs.
func NewCode(addrs peer.AddrInfo) (Code, error) {
	c := Code{Peer: addrs}
	if _, err := rand.Read(c.Secret[:]); err != nil {
		return Code{}, fmt.Errorf("pairing code: %w", err)
	}
	return c, nil
}

// Words returns the secret as 12 words, separated by spaces.
func (c Code) Words() string {
	m, err := bip39.NewMnemonic(c.Secret[:])
	if err != nil {
		panic(err) // 16 bytes of entropy always encode
	}
	return m
}

// String is the code's text form: the words joined by "-", "@", then the
// device's addresses (each ending in /p2p/ID), joined by ",".
func (c Code) String() string {
	var addrs []string
	for _, a := range c.Peer.Addrs {
		addrs = append(addrs, a.Encapsulate(ma.StringCast("/p2p/"+c.Peer.ID.String())).String())
	}
	if len(addrs) == 0 {
		addrs = append(addrs, "/p2p/"+c.Peer.ID.String())
	}
	return strings.ReplaceAll(c.Words(), " ", "-") + "@" + strings.Join(addrs, ",")
}

// ParseCode parses a code's text form. Words may be separated by "-" or
// spaces, in any case.
func ParseCode(s string) (Code, error) {
	words, addrs, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Code{}, fmt.Errorf("%w: no \"@\" before the device's address", ErrBadCode)
	}
	secret, err := parseWords(words)
	if err != nil {
		return Code{}, err
	}
	c := Code{Secret: secret}
	parts := strings.Split(addrs, ",")
	if len(parts) > maxAddrs {
		return Code{}, fmt.Errorf("%w: more than %d addresses", ErrBadCode, maxAddrs)
	}
	for _, p := range parts {
		m, err := ma.NewMultiaddr(strings.TrimSpace(p))
		if err != nil {
			return Code{}, fmt.Errorf("%w: address: %v", ErrBadCode, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return Code{}, fmt.Errorf("%w: address: %v", ErrBadCode, err)
		}
		if c.Peer.ID != "" && ai.ID != c.Peer.ID {
			return Code{}, fmt.Errorf("%w: addresses of two devices", ErrBadCode)
		}
		c.Peer.ID = ai.ID
		c.Peer.Addrs = append(c.Peer.Addrs, ai.Addrs...)
	}
	return c, nil
}

// parseWords decodes 12 BIP-39 words to the secret, checking the checksum.
func parseWords(s string) (secret [SecretSize]byte, err error) {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == '-' || r == ' ' || r == '\t' || r == '\n' })
	if len(words) != Words {
		return secret, fmt.Errorf("%w: %d words, want %d", ErrBadCode, len(words), Words)
	}
	n := new(big.Int)
	for i, w := range words {
		idx, ok := bip39.ReverseWordMap[w]
		if !ok {
			return secret, fmt.Errorf("%w: word %d is not on the word list", ErrBadCode, i+1)
		}
		n.Lsh(n, 11).Or(n, big.NewInt(int64(idx)))
	}
	n.Rsh(n, 4) // drop the checksum
	n.FillBytes(secret[:])
	if m, err := bip39.NewMnemonic(secret[:]); err != nil || m != strings.Join(words, " ") {
		return [SecretSize]byte{}, fmt.Errorf("%w: the words do not check out (a word is mistyped)", ErrBadCode)
	}
	return secret, nil
}
