package consent

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ErrNotCanonical reports CBOR that decodes but is not in the deterministic
// form (RFC 8949 section 4.2.1) that signatures are computed over.
var ErrNotCanonical = errors.New("not canonical CBOR")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  65536,
		MaxMapPairs:       4096,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v as deterministic CBOR (RFC 8949 section 4.2.1).
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes deterministic CBOR strictly: unknown fields, duplicate
// keys, indefinite lengths, tags, trailing bytes and any encoding that is not
// the canonical one are refused.
func Unmarshal(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
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
