package vault

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"filippo.io/age"
	"github.com/zeebo/blake3"

	"github.com/medwallet/medwallet/internal/canon"
)

// ManifestVersion is the only manifest format version this code reads and
// writes.
const ManifestVersion = 1

// SignatureContext is prepended to the manifest body before it is signed,
// so that a manifest signature can never be mistaken for a signature over
// anything else the owner signs.
const SignatureContext = "medwallet/vault/manifest/v1\x00"

// MaxManifestSize bounds the decrypted manifest DecryptManifest will read.
// A manifest grows by 32*n bytes per stripe: about 160 KiB per GiB at the
// defaults, so this allows records of well over a terabyte.
const MaxManifestSize = 256 << 20

// RecordID is a record's random 128-bit identifier.
type RecordID [16]byte

// String returns the lowercase hex form (32 characters).
func (id RecordID) String() string { return hex.EncodeToString(id[:]) }

// ParseRecordID parses the form produced by RecordID.String.
func ParseRecordID(s string) (RecordID, error) {
	var id RecordID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("%w: record ID must be %d hex characters", ErrBadManifest, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: record ID is not hex", ErrBadManifest)
	}
	return id, nil
}

// ShareRef is one share of a record: its content address and the BLAKE3
// hash of each of its blocks, one per stripe.
type ShareRef struct {
	ID          ShareID
	BlockHashes []Hash
}

// Manifest describes one sealed record. It holds the record key: keep it
// encrypted (Encrypt) whenever it leaves memory.
type Manifest struct {
	Version    int
	RecordID   RecordID
	Owner      ed25519.PublicKey
	Created    time.Time
	Metadata   Metadata
	Key        string // age X25519 identity, "AGE-SECRET-KEY-1..."
	K, N       int
	StripeSize int64 // ciphertext bytes per full stripe, a multiple of K
	CipherSize int64 // bytes of the age ciphertext
	CipherRoot Hash  // BLAKE3 over the data-block hashes, see docs/format.md
	Shares     []ShareRef

	encHash Hash
}

// Identity returns the record key.
func (m *Manifest) Identity() (*age.X25519Identity, error) {
	id, err := age.ParseX25519Identity(m.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: bad record key", ErrBadManifest)
	}
	return id, nil
}

// Stripes returns the number of stripes of the record.
func (m *Manifest) Stripes() int64 { return m.layout().stripes }

func (m *Manifest) layout() layout {
	return newLayout(m.K, m.N, m.StripeSize, m.CipherSize)
}

// Hash returns the SHA-256 hash of the encrypted manifest last produced by
// Encrypt or read by DecryptManifest (zero if neither happened). This is the
// value the ledger anchors; `sha256sum` of the stored manifest file gives it.
func (m *Manifest) Hash() Hash { return m.encHash }

// ManifestHash returns the SHA-256 hash of an encrypted manifest.
func ManifestHash(encrypted []byte) Hash { return Hash(sha256.Sum256(encrypted)) }

// computeCipherRoot hashes the concatenated data-block hashes (shares 0..k-1
// of stripe 0, then of stripe 1, ...). Because each data block is hashed
// and the size is recorded, this commits to the ciphertext exactly, at no
// extra hashing cost.
func (m *Manifest) computeCipherRoot() Hash {
	h := blake3.New()
	stripes := m.Stripes()
	for s := range stripes {
		for j := 0; j < m.K && j < len(m.Shares); j++ {
			if int(s) < len(m.Shares[j].BlockHashes) {
				h.Write(m.Shares[j].BlockHashes[s][:])
			}
		}
	}
	var root Hash
	h.Sum(root[:0])
	return root
}

// Wire form (docs/format.md). Keys are text; deterministic CBOR sorts them.
type wireEnvelope struct {
	Body []byte `cbor:"body"`
	Sig  []byte `cbor:"sig"`
}

type wireVersion struct {
	V uint64 `cbor:"v"`
}

type wireShare struct {
	ID     []byte `cbor:"id"`
	Hashes []byte `cbor:"hashes"`
}

type wireManifest struct {
	V       uint64      `cbor:"v"`
	ID      []byte      `cbor:"id"`
	Owner   []byte      `cbor:"owner"`
	Created int64       `cbor:"created"`
	Meta    Metadata    `cbor:"meta"`
	Key     string      `cbor:"key"`
	K       uint64      `cbor:"k"`
	N       uint64      `cbor:"n"`
	Stripe  uint64      `cbor:"stripe"`
	Size    uint64      `cbor:"size"`
	Root    []byte      `cbor:"root"`
	Shares  []wireShare `cbor:"shares"`
}

// codec decodes manifests; arrays are bounded by the share count.
var codec = canon.New(canon.MaxArrayElements(MaxShares))

// strictUnmarshal decodes canonical CBOR and refuses anything else:
// unknown fields, duplicate keys, indefinite lengths, tags, trailing bytes,
// and any encoding that does not re-encode to the same bytes.
func strictUnmarshal(data []byte, v any) error {
	if err := codec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	return nil
}

func (m *Manifest) toWire() wireManifest {
	w := wireManifest{
		V:       uint64(m.Version),
		ID:      m.RecordID[:],
		Owner:   m.Owner,
		Created: m.Created.Unix(),
		Meta:    m.Metadata,
		Key:     m.Key,
		K:       uint64(m.K),
		N:       uint64(m.N),
		Stripe:  uint64(m.StripeSize),
		Size:    uint64(m.CipherSize),
		Root:    m.CipherRoot[:],
		Shares:  make([]wireShare, len(m.Shares)),
	}
	for i, s := range m.Shares {
		hs := make([]byte, 0, len(s.BlockHashes)*HashSize)
		for _, h := range s.BlockHashes {
			hs = append(hs, h[:]...)
		}
		w.Shares[i] = wireShare{ID: s.ID[:], Hashes: hs}
	}
	return w
}

// Marshal returns the canonical CBOR body of the manifest (unsigned).
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return canon.Marshal(m.toWire())
}

// Sign returns the signed envelope: canonical CBOR {body, sig} where sig is
// Ed25519(priv, SignatureContext || body). priv must match m.Owner; if
// m.Owner is unset it is set from priv.
func (m *Manifest) Sign(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("vault: sign manifest: bad private key size")
	}
	pub := priv.Public().(ed25519.PublicKey)
	if m.Owner == nil {
		m.Owner = pub
	} else if !pub.Equal(m.Owner) {
		return nil, fmt.Errorf("vault: sign manifest: key is not the manifest owner's")
	}
	body, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(priv, signedMessage(body))
	return canon.Marshal(wireEnvelope{Body: body, Sig: sig})
}

func signedMessage(body []byte) []byte {
	msg := make([]byte, 0, len(SignatureContext)+len(body))
	return append(append(msg, SignatureContext...), body...)
}

// Encrypt signs the manifest with the owner's key and age-encrypts the
// envelope to the recipients (the owner's age key). It records the hash of
// the result, see Hash.
func (m *Manifest) Encrypt(priv ed25519.PrivateKey, to ...age.Recipient) ([]byte, error) {
	env, err := m.Sign(priv)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, to...)
	if err != nil {
		return nil, fmt.Errorf("vault: encrypt manifest: %w", err)
	}
	if _, err := w.Write(env); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	m.encHash = ManifestHash(buf.Bytes())
	return buf.Bytes(), nil
}

// DecryptManifest decrypts an encrypted manifest with the identities and
// parses it with ParseManifest, checking the signature against owner.
func DecryptManifest(encrypted []byte, owner ed25519.PublicKey, ids ...age.Identity) (*Manifest, error) {
	r, err := age.Decrypt(bytes.NewReader(encrypted), ids...)
	if err != nil {
		return nil, fmt.Errorf("vault: decrypt manifest: %w", err)
	}
	env, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("vault: decrypt manifest: %w", err)
	}
	if len(env) > MaxManifestSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadManifest, MaxManifestSize)
	}
	m, err := ParseManifest(env, owner)
	if err != nil {
		return nil, err
	}
	m.encHash = ManifestHash(encrypted)
	return m, nil
}

// ParseManifest parses a signed envelope: strict canonical CBOR, a
// signature that verifies against owner, a known version, and a body whose
// fields are consistent with each other.
func ParseManifest(envelope []byte, owner ed25519.PublicKey) (*Manifest, error) {
	if len(owner) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("vault: parse manifest: owner key must be %d bytes", ed25519.PublicKeySize)
	}
	var env wireEnvelope
	if err := strictUnmarshal(envelope, &env); err != nil {
		return nil, err
	}
	if len(env.Sig) != ed25519.SignatureSize || !ed25519.Verify(owner, signedMessage(env.Body), env.Sig) {
		return nil, ErrBadSignature
	}
	var v wireVersion
	if err := codec.Peek(env.Body, &v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if v.V != ManifestVersion {
		return nil, fmt.Errorf("%w: manifest version %d", ErrUnknownVersion, v.V)
	}
	var w wireManifest
	if err := strictUnmarshal(env.Body, &w); err != nil {
		return nil, err
	}
	m, err := fromWire(w)
	if err != nil {
		return nil, err
	}
	if !m.Owner.Equal(owner) {
		return nil, fmt.Errorf("%w: owner field does not match the signer", ErrBadManifest)
	}
	return m, nil
}

func fromWire(w wireManifest) (*Manifest, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrBadManifest, what) }
	if len(w.ID) != len(RecordID{}) {
		return nil, bad("record ID size")
	}
	if len(w.Owner) != ed25519.PublicKeySize {
		return nil, bad("owner key size")
	}
	if len(w.Root) != HashSize {
		return nil, bad("ciphertext root size")
	}
	if w.K > MaxShares || w.N > MaxShares || w.Stripe > MaxStripeSize || w.Size > 1<<50 {
		return nil, bad("parameters out of range")
	}
	m := &Manifest{
		Version:    int(w.V),
		Owner:      ed25519.PublicKey(bytes.Clone(w.Owner)),
		Created:    time.Unix(w.Created, 0).UTC(),
		Metadata:   w.Meta,
		Key:        w.Key,
		K:          int(w.K),
		N:          int(w.N),
		StripeSize: int64(w.Stripe),
		CipherSize: int64(w.Size),
		Shares:     make([]ShareRef, len(w.Shares)),
	}
	copy(m.RecordID[:], w.ID)
	copy(m.CipherRoot[:], w.Root)
	if err := shareRefs(m.Shares, w.Shares, bad); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// validate checks that the fields are consistent with each other.
func (m *Manifest) validate() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("%w: manifest version %d", ErrUnknownVersion, m.Version)
	}
	if err := m.validateLayout(); err != nil {
		return err
	}
	if _, err := m.Identity(); err != nil {
		return err
	}
	return nil
}

// validateLayout checks the coding parameters, the share count, the block
// hashes and the ciphertext root against each other: everything validate
// checks but the version and the key (a repair capability has neither).
func (m *Manifest) validateLayout() error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrBadManifest, what) }
	if _, err := (Params{K: m.K, N: m.N, StripeSize: int(m.StripeSize)}).normalized(); err != nil || m.K == 0 || m.N == 0 {
		return bad("coding parameters")
	}
	if m.StripeSize%int64(m.K) != 0 {
		return bad("stripe size is not a multiple of k")
	}
	if m.CipherSize <= 0 {
		return bad("ciphertext size")
	}
	if len(m.Owner) != ed25519.PublicKeySize {
		return bad("owner key size")
	}
	if len(m.Shares) != m.N {
		return bad("share count differs from n")
	}
	stripes := m.Stripes()
	for i, s := range m.Shares {
		if int64(len(s.BlockHashes)) != stripes {
			return bad(fmt.Sprintf("share %d: %d block hashes for %d stripes", i, len(s.BlockHashes), stripes))
		}
	}
	if m.computeCipherRoot() != m.CipherRoot {
		return bad("ciphertext root does not match the block hashes")
	}
	return nil
}

// shareRefs decodes the wire form of a record's shares (of a manifest or a
// repair capability) into refs, which has their length.
func shareRefs(refs []ShareRef, shares []wireShare, bad func(string) error) error {
	for i, s := range shares {
		if len(s.ID) != HashSize || len(s.Hashes)%HashSize != 0 {
			return bad(fmt.Sprintf("share %d: hash sizes", i))
		}
		ref := ShareRef{BlockHashes: make([]Hash, len(s.Hashes)/HashSize)}
		copy(ref.ID[:], s.ID)
		for j := range ref.BlockHashes {
			copy(ref.BlockHashes[j][:], s.Hashes[j*HashSize:])
		}
		refs[i] = ref
	}
	return nil
}
