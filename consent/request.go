package consent

import (
	"fmt"
	"time"
)

// requestContext separates request signatures from entry and card signatures.
const requestContext = "medwallet access request v1\n"

// Nonce sizes accepted in a request.
const (
	MinNonceSize = 16
	MaxNonceSize = 64
)

// Request asks the decider to release Record of Owner to Requester. It is
// signed by the requester and carried verbatim in the access entry that
// logs the decision, so neither side can later deny it.
type Request struct {
	Requester ID     `cbor:"1,keyasint" json:"requester"`
	Owner     ID     `cbor:"2,keyasint" json:"owner"`
	Record    string `cbor:"3,keyasint" json:"record"`
	Scope     string `cbor:"4,keyasint" json:"scope"`
	Purpose   string `cbor:"5,keyasint" json:"purpose"`
	Time      int64  `cbor:"6,keyasint" json:"time"` // Unix seconds
	Nonce     []byte `cbor:"7,keyasint" json:"nonce"`
	Sig       []byte `cbor:"8,keyasint,omitempty" json:"-"`
	// BreakGlass names the requester's break-glass entry, for a request
	// under an emergency grant.
	BreakGlass Hash `cbor:"9,keyasint,omitzero" json:"break_glass,omitzero"`
}

// SignRequest fills in the requester and signs r.
func SignRequest(s Signer, r Request) (*Request, error) {
	r.Requester = s.ID()
	r.Sig = nil
	if err := r.checkFields(); err != nil {
		return nil, err
	}
	sig, err := s.Sign(r.SignedMessage())
	if err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	r.Sig = sig
	return &r, nil
}

// SignedMessage returns the bytes the requester signs: the context string
// "medwallet access request v1\n", then the canonical encoding of the
// request without its signature (key 8).
func (r *Request) SignedMessage() []byte {
	c := *r
	c.Sig = nil
	b, err := Marshal(&c)
	if err != nil {
		panic(err)
	}
	return append([]byte(requestContext), b...)
}

// Encode returns the canonical encoding of r.
func (r *Request) Encode() []byte {
	b, err := Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}

// DecodeRequest strictly decodes a request and checks its fields (not its
// signature: see VerifyRequest).
func DecodeRequest(b []byte) (*Request, error) {
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("request: %w (%d bytes)", ErrTooLarge, len(b))
	}
	var r Request
	if err := Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("request: %w: %w", ErrMalformed, err)
	}
	if err := r.checkFields(); err != nil {
		return nil, err
	}
	return &r, nil
}

// checkFields checks the request's structure. Scope and purpose are only
// checked for size here: an unknown scope or purpose is a decision (deny
// "scope" or "purpose"), not a decoding error, so that it can be logged.
func (r *Request) checkFields() error {
	if _, err := cachedPublicKey(r.Requester); err != nil {
		return fmt.Errorf("request: %w: requester: %v", ErrMalformed, err)
	}
	if _, err := cachedPublicKey(r.Owner); err != nil {
		return fmt.Errorf("request: %w: owner: %v", ErrMalformed, err)
	}
	if err := ValidateRecordID(r.Record); err != nil {
		return fmt.Errorf("request: %w: %v", ErrMalformed, err)
	}
	if r.Scope == "" || len(r.Scope) > 512 || r.Purpose == "" || len(r.Purpose) > 64 {
		return fmt.Errorf("request: %w: scope or purpose missing or too long", ErrMalformed)
	}
	if r.Time <= 0 {
		return fmt.Errorf("request: %w: time is missing", ErrMalformed)
	}
	if len(r.Nonce) < MinNonceSize || len(r.Nonce) > MaxNonceSize {
		return fmt.Errorf("request: %w: nonce must be %d to %d bytes", ErrMalformed, MinNonceSize, MaxNonceSize)
	}
	return nil
}

// VerifyRequest checks r's fields and the requester's signature.
func VerifyRequest(r *Request) error {
	if err := r.checkFields(); err != nil {
		return err
	}
	if !verifySig(r.Requester, r.SignedMessage(), r.Sig) {
		return fmt.Errorf("request: %w", ErrBadSignature)
	}
	return nil
}

// TimeOf converts Unix seconds as used on the ledger to a UTC time.
func TimeOf(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
