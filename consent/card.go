package consent

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hdevalence/ed25519consensus"
)

// CardPrefix starts every encoded identity card.
const CardPrefix = "medwallet-card-v1:"

// cardContext separates card signatures from every other signature made
// with the identity key.
const cardContext = "medwallet card v1\n"

// Roles an identity may declare on its card.
var Roles = []string{"patient", "clinician", "insurer", "peer", "issuer", "auditor"}

// ErrBadCard reports a card that is malformed or whose signature does not verify.
var ErrBadCard = errors.New("invalid identity card")

// Card binds an actor's ID (its Ed25519 key) to its age recipient, display
// name and role. It is signed by the identity key, so anyone holding the
// card can check that the key owner made it.
type Card struct {
	ID           ID     `cbor:"1,keyasint" json:"id"`
	AgeRecipient string `cbor:"2,keyasint" json:"age_recipient"`
	Name         string `cbor:"3,keyasint" json:"name"`
	Role         string `cbor:"4,keyasint" json:"role"`
	Created      int64  `cbor:"5,keyasint" json:"created"` // Unix seconds
	Sig          []byte `cbor:"6,keyasint,omitempty" json:"-"`
	// Rendezvous is the holder's rendezvous secret (32 bytes; see
	// Rendezvous), on a card the owner hands to a party it lets find its
	// serving peers and join its gossip topic; absent on the card the
	// owner publishes. It is signed with the rest, so no one can swap it
	// for a secret that would lead the holder to other peers; never
	// printed.
	Rendezvous []byte `cbor:"7,keyasint,omitempty" json:"-"`
}

// NewSharedCard makes and signs c's fields again with the rendezvous
// secret r added: the card to give to a party that may find the owner's
// serving peers. priv must be the key of c.ID.
func NewSharedCard(priv ed25519.PrivateKey, c Card, r [32]byte) (Card, error) {
	id, err := IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return Card{}, err
	}
	if id != c.ID {
		return Card{}, fmt.Errorf("%w: the key is not the card's", ErrBadCard)
	}
	c.Rendezvous = append([]byte(nil), r[:]...)
	c.Sig = nil
	if err := c.checkFields(); err != nil {
		return Card{}, err
	}
	msg, err := c.signedBytes()
	if err != nil {
		return Card{}, err
	}
	c.Sig = ed25519.Sign(priv, msg)
	return c, nil
}

// RendezvousSecret is the rendezvous secret the card carries, if any.
func (c Card) RendezvousSecret() ([32]byte, bool) {
	var r [32]byte
	if len(c.Rendezvous) != len(r) {
		return r, false
	}
	copy(r[:], c.Rendezvous)
	return r, true
}

// NewCard makes and signs a card for the key priv.
func NewCard(priv ed25519.PrivateKey, ageRecipient, name, role string, created time.Time) (Card, error) {
	id, err := IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return Card{}, err
	}
	c := Card{ID: id, AgeRecipient: ageRecipient, Name: name, Role: role, Created: created.Unix()}
	if err := c.checkFields(); err != nil {
		return Card{}, err
	}
	msg, err := c.signedBytes()
	if err != nil {
		return Card{}, err
	}
	c.Sig = ed25519.Sign(priv, msg)
	return c, nil
}

// ValidateName checks a display name: 1 to 64 printable characters, no
// leading or trailing space.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("name is empty")
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	case utf8.RuneCountInString(name) > 64:
		return errors.New("name is longer than 64 characters")
	case strings.TrimSpace(name) != name:
		return errors.New("name starts or ends with a space")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("name contains the non-printable character %q", r)
		}
	}
	return nil
}

// ValidateRole checks that role is one of Roles.
func ValidateRole(role string) error {
	for _, r := range Roles {
		if r == role {
			return nil
		}
	}
	return fmt.Errorf("unknown role %q (want one of %s)", role, strings.Join(Roles, ", "))
}

func (c Card) checkFields() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if err := ValidateRole(c.Role); err != nil {
		return err
	}
	if !strings.HasPrefix(c.AgeRecipient, "age1") || len(c.AgeRecipient) > 4096 {
		return fmt.Errorf("age recipient is malformed")
	}
	if c.Created <= 0 {
		return errors.New("creation time is missing")
	}
	if c.Rendezvous != nil && len(c.Rendezvous) != 32 {
		return errors.New("rendezvous secret is not 32 bytes")
	}
	return nil
}

func (c Card) signedBytes() ([]byte, error) {
	c.Sig = nil
	b, err := Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte(cardContext), b...), nil
}

// Verify checks the card's fields and its signature by the key in its ID.
func (c Card) Verify() error {
	if err := c.checkFields(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCard, err)
	}
	pub, err := c.ID.PublicKey()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCard, err)
	}
	msg, err := c.signedBytes()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCard, err)
	}
	if len(c.Sig) != ed25519.SignatureSize || !ed25519consensus.Verify(pub, msg, c.Sig) {
		return fmt.Errorf("%w: signature does not verify", ErrBadCard)
	}
	return nil
}

// String encodes the card on one copy-pasteable line.
func (c Card) String() string {
	b, err := Marshal(c)
	if err != nil {
		// Marshal of this plain struct cannot fail.
		panic(err)
	}
	return CardPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseCard decodes a card line and verifies it. Surrounding white space is ignored.
func ParseCard(s string) (Card, error) {
	s = strings.TrimSpace(s)
	if len(s) > 8192 {
		return Card{}, fmt.Errorf("%w: too long", ErrBadCard)
	}
	rest, ok := strings.CutPrefix(s, CardPrefix)
	if !ok {
		return Card{}, fmt.Errorf("%w: does not start with %q", ErrBadCard, CardPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return Card{}, fmt.Errorf("%w: not base64url", ErrBadCard)
	}
	var c Card
	if err := Unmarshal(b, &c); err != nil {
		return Card{}, fmt.Errorf("%w: %w", ErrBadCard, err)
	}
	if err := c.Verify(); err != nil {
		return Card{}, err
	}
	return c, nil
}
