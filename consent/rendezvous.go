package consent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// The rendezvous secret of a patient lets the parties that know it find the
// patient's serving peers (a provider record in the DHT under ServeKey) and
// join the patient's gossip topic (Topic), while a stranger who knows only
// the patient's ID can compute neither.
//
// It is derived from the identity key, so a wallet restored from a key
// backup derives the same secret and finds its servers again:
//
//	sig = Ed25519-Sign(identity key, "medwallet rendezvous v1\n")
//	R   = HMAC-SHA256(key = sig, "medwallet rendezvous secret v1")
//
// Ed25519 signatures are deterministic (RFC 8032), so sig, and R with it,
// never change for a key. The signed message is domain-separated from
// every other message the identity key signs (entries, requests, cards and
// manifests all start with their own context line), and the signature is
// never published, only hashed.
//
// From R and a subject's ID S (the ID string's bytes):
//
//	ServeKey(S, R) = HMAC-SHA256(key = R, "medwallet serve key v1\n" || S)
//	Topic(S, R)    = TopicPrefix || hex(HMAC-SHA256(key = R, "medwallet gossip topic v1\n" || S))
//
// The two are separate HMACs, so the DHT nodes that store a provider record
// (and so learn the serve key) learn nothing of the topic.
const (
	rendezvousContext = "medwallet rendezvous v1\n"
	rendezvousLabel   = "medwallet rendezvous secret v1"
	serveKeyContext   = "medwallet serve key v1\n"
	topicContext      = "medwallet gossip topic v1\n"
)

// TopicPrefix starts the name of every per-patient gossip topic.
const TopicPrefix = "/medwallet/feed/1/"

// ErrRendezvous reports a signer that cannot derive a rendezvous secret:
// its signature does not verify under its ID, or it is not deterministic.
var ErrRendezvous = errors.New("cannot derive the rendezvous secret")

// Rendezvous derives the rendezvous secret of the identity behind s. It
// signs one fixed message twice and refuses a signer whose two signatures
// differ or do not verify, since another device or a restored wallet could
// then not derive the same secret.
func Rendezvous(s Signer) ([32]byte, error) {
	pub, err := s.ID().PublicKey()
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %w", ErrRendezvous, err)
	}
	msg := []byte(rendezvousContext)
	sig, err := s.Sign(msg)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %w", ErrRendezvous, err)
	}
	again, err := s.Sign(msg)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %w", ErrRendezvous, err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return [32]byte{}, fmt.Errorf("%w: the signature does not verify", ErrRendezvous)
	}
	if !bytes.Equal(sig, again) {
		return [32]byte{}, fmt.Errorf("%w: the signer is not deterministic", ErrRendezvous)
	}
	return mac(sig, []byte(rendezvousLabel)), nil
}

// ServeKey is the DHT key under which the serving peers of subject announce
// themselves. It reveals nothing of the subject to whoever does not know r.
func ServeKey(subject ID, r [32]byte) [32]byte {
	return mac(r[:], []byte(serveKeyContext), []byte(subject))
}

// Topic is the name of the gossip topic that carries subject's entries.
func Topic(subject ID, r [32]byte) string {
	h := mac(r[:], []byte(topicContext), []byte(subject))
	return TopicPrefix + hex.EncodeToString(h[:])
}

func mac(key []byte, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}
