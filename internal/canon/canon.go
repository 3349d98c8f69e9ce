// Package canon is medwallet's one canonical CBOR codec, shared by the
// ledger (consent) and the vault manifests.
//
// Encoding is deterministic CBOR (RFC 8949 section 4.2.1, fxamacker/cbor's
// CoreDetEncOptions): shortest integer and length forms, map keys sorted
// bytewise by their encoding, definite lengths only. Every value has
// exactly one encoding, so hashes and signatures over it are stable.
//
// Decoding is strict: unknown fields, duplicate map keys, indefinite
// lengths, tags, invalid UTF-8 text, trailing bytes and any encoding that
// does not re-encode to the same bytes are refused. Nesting depth, array
// length and map size are bounded; a caller whose values are smaller sets
// its own bound with an Option, on the same codec (the vault bounds arrays
// by the share count). Add an Option for another bound when a caller needs
// it.
package canon

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ErrNotCanonical reports CBOR that decodes but is not in the deterministic
// form (RFC 8949 section 4.2.1) that signatures are computed over.
var ErrNotCanonical = errors.New("not canonical CBOR")

// Default decoding bounds, used unless an Option changes them.
const (
	DefaultMaxNestedLevels  = 16
	DefaultMaxArrayElements = 65536
	DefaultMaxMapPairs      = 4096
)

var encMode = mustEncMode()

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}

// limits bound what a Codec decodes.
type limits struct {
	MaxNestedLevels  int // depth of nested arrays and maps, 4 or more
	MaxArrayElements int // elements of one array, 16 or more
	MaxMapPairs      int // pairs of one map, 16 or more
}

// Option changes one of a Codec's limits.
type Option func(*limits)

// MaxArrayElements bounds the number of elements of any one array.
func MaxArrayElements(n int) Option { return func(l *limits) { l.MaxArrayElements = n } }

// Codec decodes canonical CBOR strictly within its limits (Marshal, the
// encoder, needs none). It is safe for concurrent use.
type Codec struct {
	dec  cbor.DecMode // strict
	peek cbor.DecMode // strict, but ignores unknown fields
}

// New returns a codec with the default limits changed by opts. It panics
// if a limit is outside the range fxamacker/cbor accepts: limits are
// constants of the caller, so that is a programming error.
func New(opts ...Option) *Codec {
	l := limits{
		MaxNestedLevels:  DefaultMaxNestedLevels,
		MaxArrayElements: DefaultMaxArrayElements,
		MaxMapPairs:      DefaultMaxMapPairs,
	}
	for _, o := range opts {
		o(&l)
	}
	strict := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		MaxNestedLevels:   l.MaxNestedLevels,
		MaxArrayElements:  l.MaxArrayElements,
		MaxMapPairs:       l.MaxMapPairs,
	}
	dec, err := strict.DecMode()
	if err != nil {
		panic(fmt.Sprintf("canon: %v", err))
	}
	loose := strict
	loose.ExtraReturnErrors = cbor.ExtraDecErrorNone
	peek, err := loose.DecMode()
	if err != nil {
		panic(fmt.Sprintf("canon: %v", err))
	}
	return &Codec{dec: dec, peek: peek}
}

// Marshal encodes v as deterministic CBOR. The encoding does not depend on
// the codec's limits.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes data into v strictly: unknown fields, duplicate keys,
// indefinite lengths, tags, invalid UTF-8, trailing bytes and values beyond
// the codec's limits are refused with fxamacker/cbor's error, and an
// encoding that is not the canonical one with ErrNotCanonical.
func (c *Codec) Unmarshal(data []byte, v any) error {
	if err := c.dec.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w", ErrNotCanonical)
	}
	return nil
}

// Peek decodes the fields of v that data holds and ignores the others,
// without the canonical check; everything else is as strict as Unmarshal.
// It reads a version field before choosing the type to decode into; the
// full decode that follows must use Unmarshal.
func (c *Codec) Peek(data []byte, v any) error { return c.peek.Unmarshal(data, v) }
