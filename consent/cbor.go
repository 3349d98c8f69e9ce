package consent

import "github.com/medwallet/medwallet/internal/canon"

// ErrNotCanonical reports CBOR that decodes but is not in the deterministic
// form (RFC 8949 section 4.2.1) that signatures are computed over.
var ErrNotCanonical = canon.ErrNotCanonical

// codec decodes the ledger's encodings with the default limits.
var codec = canon.New()

// Marshal encodes v as deterministic CBOR (RFC 8949 section 4.2.1).
func Marshal(v any) ([]byte, error) { return canon.Marshal(v) }

// Unmarshal decodes deterministic CBOR strictly: unknown fields, duplicate
// keys, indefinite lengths, tags, trailing bytes and any encoding that is not
// the canonical one are refused.
func Unmarshal(data []byte, v any) error { return codec.Unmarshal(data, v) }
