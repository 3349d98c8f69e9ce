package consent

// Checkpoints: an RFC 6962 Merkle tree over a feed's entry hashes, its
// C2SP tlog-checkpoint signed by the feed's checkpoint key, the
// certificate that binds that key to the author, and C2SP
// tlog-cosignature/v1 cosignatures by witnesses. See the package doc,
// "Checkpoints and witnesses".

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Context strings of the checkpoint signatures. Each differs from every
// other message an identity key signs.
const (
	// checkpointSeedContext is what the author's Signer signs to derive
	// the feed's checkpoint key: seed = SHA-256(signature). Ed25519 is
	// deterministic, so a wallet restored from a key backup derives the
	// same key.
	checkpointSeedContext = "medwallet checkpoint key v1\n"
	// checkpointCertContext starts the message of a CheckpointCert.
	checkpointCertContext = "medwallet checkpoint key certificate v1\n"
	// checkpointTagContext separates the origin's tag from other hashes
	// of the key.
	checkpointTagContext = "medwallet checkpoint origin v1\n"
	// cosignatureContext is C2SP tlog-cosignature/v1's message prefix.
	cosignatureContext = "cosignature/v1\ntime "
)

// OriginPrefix starts every checkpoint origin line; the rest is a tag
// derived from the feed's checkpoint public key.
const OriginPrefix = "medwallet.ledger/v1/"

// WitnessNamePrefix starts a witness's cosignature key name; the rest is
// the witness's ID (its libp2p peer ID).
const WitnessNamePrefix = "medwallet.witness/"

// MaxCheckpointNote bounds a checkpoint note with its signatures.
const MaxCheckpointNote = 16 << 10

// algCosignatureV1 is the C2SP signature type of tlog-cosignature/v1.
const algCosignatureV1 = 0x04

// Errors of checkpoints. The concrete errors wrap one of them.
var (
	// ErrCheckpoint reports a checkpoint note that is malformed or whose
	// signature by the feed's checkpoint key does not verify.
	ErrCheckpoint = errors.New("bad checkpoint")
	// ErrCosignature reports a witness cosignature that does not verify.
	ErrCosignature = errors.New("bad cosignature")
	// ErrCheckpointCert reports a checkpoint key certificate that does not
	// verify.
	ErrCheckpointCert = errors.New("bad checkpoint key certificate")
	// ErrInconsistent reports two tree heads that a consistency proof does
	// not link.
	ErrInconsistent = errors.New("inconsistent checkpoints")
)

// Checkpoint is the body of a C2SP tlog-checkpoint: a log (a feed) named by
// Origin has Size entries whose Merkle tree hash is Root.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   Hash
}

// Text returns the checkpoint body: the origin, the size in decimal, the
// root in standard base64, one per line.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint strictly parses a checkpoint body: exactly three lines,
// an origin under OriginPrefix, a canonical decimal size and a 32-byte
// base64 root. Extension lines are refused in v1.
func ParseCheckpoint(text string) (Checkpoint, error) {
	bad := func(why string) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrCheckpoint, why)
	}
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return bad("want three lines")
	}
	c := Checkpoint{Origin: lines[0]}
	if !strings.HasPrefix(c.Origin, OriginPrefix) || len(c.Origin) != len(OriginPrefix)+22 || strings.ContainsAny(c.Origin, " +") {
		return bad("origin")
	}
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != lines[1] || n > 1<<62 {
		return bad("size")
	}
	c.Size = n
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return bad("root")
	}
	copy(c.Root[:], root)
	return c, nil
}

// CheckpointOrigin returns the origin line of the feed whose checkpoint
// public key is pub: OriginPrefix and the unpadded base64url of the first
// 16 bytes of SHA-256(checkpointTagContext ‖ pub). It names no author.
func CheckpointOrigin(pub ed25519.PublicKey) string {
	h := sha256.Sum256(append([]byte(checkpointTagContext), pub...))
	return OriginPrefix + base64.RawURLEncoding.EncodeToString(h[:16])
}

// CheckpointKey signs one feed's checkpoints. It is derived from the
// author's identity key (DeriveCheckpointKey), never stored.
type CheckpointKey struct {
	priv   ed25519.PrivateKey
	origin string
	signer note.Signer
}

// DeriveCheckpointKey derives the checkpoint key of s's feed: the Ed25519
// key whose seed is SHA-256 of s's signature of "medwallet checkpoint key
// v1\n". The same identity key always gives the same checkpoint key.
func DeriveCheckpointKey(s Signer) (*CheckpointKey, error) {
	sig, err := s.Sign([]byte(checkpointSeedContext))
	if err != nil {
		return nil, fmt.Errorf("deriving the checkpoint key: %w", err)
	}
	seed := sha256.Sum256(sig)
	return NewCheckpointKey(ed25519.NewKeyFromSeed(seed[:]))
}

// NewCheckpointKey wraps an Ed25519 private key as a checkpoint key.
func NewCheckpointKey(priv ed25519.PrivateKey) (*CheckpointKey, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("consent: checkpoint key has the wrong size")
	}
	pub := priv.Public().(ed25519.PublicKey)
	origin := CheckpointOrigin(pub)
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", origin, v.KeyHash(),
		base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...)))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	return &CheckpointKey{priv: priv, origin: origin, signer: signer}, nil
}

// Public is the checkpoint public key.
func (k *CheckpointKey) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// Origin is the feed's origin line.
func (k *CheckpointKey) Origin() string { return k.origin }

// Sign returns the signed checkpoint note of a tree of size entries with
// root root.
func (k *CheckpointKey) Sign(size uint64, root Hash) ([]byte, error) {
	c := Checkpoint{Origin: k.origin, Size: size, Root: root}
	return note.Sign(&note.Note{Text: c.Text()}, k.signer)
}

// Certify returns the certificate by which s, the author, binds this key
// to its feed.
func (k *CheckpointKey) Certify(s Signer) (*CheckpointCert, error) {
	c := &CheckpointCert{Author: s.ID(), Key: k.Public()}
	sig, err := s.Sign(c.message())
	if err != nil {
		return nil, fmt.Errorf("certifying the checkpoint key: %w", err)
	}
	c.Sig = sig
	return c, nil
}

// CheckpointCert binds a checkpoint key to an author: Author's signature of
// "medwallet checkpoint key certificate v1\n" ‖ Key. It travels with
// exports, never to witnesses.
type CheckpointCert struct {
	Author ID     `cbor:"1,keyasint" json:"author"`
	Key    []byte `cbor:"2,keyasint" json:"key"`
	Sig    []byte `cbor:"3,keyasint" json:"sig"`
}

func (c *CheckpointCert) message() []byte {
	return append([]byte(checkpointCertContext), c.Key...)
}

// Origin is the origin of the certified key's checkpoints.
func (c *CheckpointCert) Origin() string { return CheckpointOrigin(c.Key) }

// Verify checks the certificate's signature by its author.
func (c *CheckpointCert) Verify() error {
	if len(c.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: key is %d bytes", ErrCheckpointCert, len(c.Key))
	}
	if !verifySig(c.Author, c.message(), c.Sig) {
		return fmt.Errorf("%w: signature by %s", ErrCheckpointCert, c.Author.Short())
	}
	return nil
}

// SignedCheckpoint is a checkpoint note whose signature by the feed's key
// verified, with the witnesses whose cosignatures verified.
type SignedCheckpoint struct {
	Checkpoint
	Note      []byte
	Cosigners []Cosigner
}

// Cosigner is one verified cosignature: the witness and the time it put
// on it (Unix seconds).
type Cosigner struct {
	Witness ID    `json:"witness"`
	Time    int64 `json:"time"`
}

// OpenCheckpoint verifies a checkpoint note: its signature by key (the
// feed's checkpoint key, which must match the origin), and every
// cosignature by a medwallet witness (a signature line named
// WitnessNamePrefix + ID). Other signature lines are ignored. A
// cosignature that does not verify fails the whole note.
func OpenCheckpoint(msg []byte, key ed25519.PublicKey) (*SignedCheckpoint, error) {
	if len(msg) > MaxCheckpointNote {
		return nil, fmt.Errorf("%w: note is %d bytes", ErrCheckpoint, len(msg))
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: key is %d bytes", ErrCheckpoint, len(key))
	}
	origin := CheckpointOrigin(key)
	vkey, err := note.NewEd25519VerifierKey(origin, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	own, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	vs := &checkpointVerifiers{own: own}
	n, err := note.Open(msg, vs)
	if err != nil {
		var inv *note.InvalidSignatureError
		if errors.As(err, &inv) && strings.HasPrefix(inv.Name, WitnessNamePrefix) {
			return nil, fmt.Errorf("%w: by %s", ErrCosignature, inv.Name)
		}
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if !vs.signedBy(n, own) {
		return nil, fmt.Errorf("%w: not signed by the feed's checkpoint key", ErrCheckpoint)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	if c.Origin != origin {
		return nil, fmt.Errorf("%w: origin does not match the key", ErrCheckpoint)
	}
	sc := &SignedCheckpoint{Checkpoint: c, Note: msg}
	for _, s := range n.Sigs {
		if s.Name == origin {
			continue
		}
		raw, _ := base64.StdEncoding.DecodeString(s.Base64)
		sc.Cosigners = append(sc.Cosigners, Cosigner{
			Witness: ID(strings.TrimPrefix(s.Name, WitnessNamePrefix)),
			Time:    int64(binary.BigEndian.Uint64(raw[4:12])),
		})
	}
	return sc, nil
}

// checkpointVerifiers knows the feed's key and every medwallet witness.
type checkpointVerifiers struct{ own note.Verifier }

func (v *checkpointVerifiers) Verifier(name string, hash uint32) (note.Verifier, error) {
	if name == v.own.Name() && hash == v.own.KeyHash() {
		return v.own, nil
	}
	if id, ok := strings.CutPrefix(name, WitnessNamePrefix); ok {
		if w, err := newCosignatureVerifier(ID(id)); err == nil && w.KeyHash() == hash {
			return w, nil
		}
	}
	return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
}

func (v *checkpointVerifiers) signedBy(n *note.Note, w note.Verifier) bool {
	for _, s := range n.Sigs {
		if s.Name == w.Name() && s.Hash == w.KeyHash() {
			return true
		}
	}
	return false
}

// WitnessName is the cosignature key name of witness id.
func WitnessName(id ID) string { return WitnessNamePrefix + string(id) }

// cosignatureKeyHash is C2SP's key ID of a cosignature/v1 key:
// SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key), first four bytes.
func cosignatureKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func cosignatureMessage(t uint64, text []byte) []byte {
	return append([]byte(cosignatureContext+strconv.FormatUint(t, 10)+"\n"), text...)
}

// cosigner is a note.Signer making C2SP tlog-cosignature/v1 signatures:
// the signature is the timestamp (8 bytes, big-endian) then the Ed25519
// signature of "cosignature/v1\ntime <t>\n" ‖ the checkpoint body.
type cosigner struct {
	s    Signer
	name string
	hash uint32
	time uint64
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }
func (c *cosigner) Sign(msg []byte) ([]byte, error) {
	sig, err := c.s.Sign(cosignatureMessage(c.time, msg))
	if err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint64(nil, c.time), sig...), nil
}

type cosignatureVerifier struct {
	id   ID
	name string
	hash uint32
}

func newCosignatureVerifier(id ID) (*cosignatureVerifier, error) {
	pub, err := cachedPublicKey(id)
	if err != nil {
		return nil, err
	}
	name := WitnessName(id)
	return &cosignatureVerifier{id: id, name: name, hash: cosignatureKeyHash(name, pub)}, nil
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	return verifySig(v.id, cosignatureMessage(binary.BigEndian.Uint64(sig), msg), sig[8:])
}

// Cosign returns witness w's cosignature line ("— name base64\n") over the
// checkpoint note msg, dated t. It does not check the note: the witness
// does that first (OpenCheckpoint, then consistency).
func Cosign(msg []byte, w Signer, t time.Time) ([]byte, error) {
	text, err := checkpointText(msg)
	if err != nil {
		return nil, err
	}
	pub, err := cachedPublicKey(w.ID())
	if err != nil {
		return nil, err
	}
	name := WitnessName(w.ID())
	ts := t.Unix()
	if ts < 0 {
		ts = 0
	}
	c := &cosigner{s: w, name: name, hash: cosignatureKeyHash(name, pub), time: uint64(ts)}
	signed, err := note.Sign(&note.Note{Text: text}, c)
	if err != nil {
		return nil, err
	}
	return signed[len(text)+1:], nil
}

// AddCosignatures appends signature lines (as Cosign returns them) to a
// checkpoint note, leaving out lines it already carries.
func AddCosignatures(msg []byte, lines ...[]byte) []byte {
	out := append([]byte(nil), msg...)
	have := map[string]bool{}
	for _, l := range strings.SplitAfter(string(msg), "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[string(l)] {
			have[string(l)] = true
			out = append(out, l...)
		}
	}
	return out
}

// Tree is the RFC 6962 Merkle tree of a feed: leaf i is the hash of entry
// seq i+1 (the leaf data is the 32-byte entry hash), kept as the stored
// hashes of golang.org/x/mod/sumdb/tlog.
type Tree struct {
	n      int64
	stored []tlog.Hash
}

// NewTree builds the tree of a feed from its entry hashes in seq order.
func NewTree(hashes []Hash) *Tree {
	t := &Tree{stored: make([]tlog.Hash, 0, 2*len(hashes))}
	for _, h := range hashes {
		t.Append(h)
	}
	return t
}

// Append adds the next entry hash.
func (t *Tree) Append(h Hash) {
	add, err := tlog.StoredHashesForRecordHash(t.n, tlog.RecordHash(h[:]), t)
	if err != nil {
		panic(err) // every index it reads is below len(t.stored)
	}
	t.stored = append(t.stored, add...)
	t.n++
}

// ReadHashes implements tlog.HashReader.
func (t *Tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(t.stored)) {
			return nil, fmt.Errorf("tree: hash %d not stored", x)
		}
		out[i] = t.stored[x]
	}
	return out, nil
}

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return uint64(t.n) }

// Root returns the tree hash of the first n leaves (n <= Size).
func (t *Tree) Root(n uint64) (Hash, error) {
	if n > uint64(t.n) {
		return Hash{}, fmt.Errorf("tree: size %d beyond %d", n, t.n)
	}
	if n == 0 {
		return Hash(sha256.Sum256(nil)), nil
	}
	h, err := tlog.TreeHash(int64(n), t)
	return Hash(h), err
}

// Prove returns the consistency proof from the tree of the first old
// leaves to the tree of the first n (old <= n <= Size).
func (t *Tree) Prove(old, n uint64) ([]Hash, error) {
	if old > n || n > uint64(t.n) {
		return nil, fmt.Errorf("tree: no proof from %d to %d of %d", old, n, t.n)
	}
	if old == 0 || old == n {
		return nil, nil
	}
	p, err := tlog.ProveTree(int64(n), int64(old), t)
	if err != nil {
		return nil, err
	}
	out := make([]Hash, len(p))
	for i, h := range p {
		out[i] = Hash(h)
	}
	return out, nil
}

// CheckConsistency checks that the tree of size n with root root extends
// the tree of size old with root oldRoot, by proof (Tree.Prove). A tree of
// size 0 is extended by every tree; a tree is consistent with itself only
// when the roots are equal and the proof empty.
func CheckConsistency(proof []Hash, old uint64, oldRoot Hash, n uint64, root Hash) error {
	switch {
	case old > n || n > 1<<62:
		return fmt.Errorf("%w: size %d after %d", ErrInconsistent, n, old)
	case old == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: proof from an empty tree", ErrInconsistent)
		}
		return nil
	case old == n:
		if len(proof) != 0 || root != oldRoot {
			return fmt.Errorf("%w: two roots at size %d", ErrInconsistent, n)
		}
		return nil
	}
	p := make(tlog.TreeProof, len(proof))
	for i, h := range proof {
		p[i] = tlog.Hash(h)
	}
	if err := tlog.CheckTree(p, int64(n), tlog.Hash(root), int64(old), tlog.Hash(oldRoot)); err != nil {
		return fmt.Errorf("%w: %w", ErrInconsistent, err)
	}
	return nil
}
