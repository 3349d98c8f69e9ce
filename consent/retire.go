package consent

import "bytes"

// KindRetire is the kind of a retire entry (RetireBody).
const KindRetire Kind = 15

// MaxRetireShares bounds the share IDs one retire entry names (a record
// has at most 256 shares).
const MaxRetireShares = 256

// RetireBody is the body of a retire entry: the author (the record's
// owner) says that the shares of one of its records' manifests are no
// longer needed, so that peers remove them, including peers that were
// offline when the wallet removed or rotated the record and learn it from
// the ledger later.
//
// Manifest is the SHA-256 of the retired encrypted manifest (the hash its
// anchor named). Removed says the whole record is gone: every share and
// manifest copy of the record goes. Otherwise the record lives on under a
// newer anchor (a rotation), and only the shares listed in Shares go.
// Shares are the content addresses of the retired manifest's shares
// (ciphertext hashes only), sorted and unique.
type RetireBody struct {
	Record   string `cbor:"1,keyasint" json:"record"`
	Manifest Hash   `cbor:"2,keyasint" json:"manifest"`
	Shares   []Hash `cbor:"3,keyasint,omitempty" json:"shares,omitempty"`
	Removed  bool   `cbor:"4,keyasint,omitempty" json:"removed,omitempty"`
}

// Validate checks a retire body as an entry author would before signing it.
func (b *RetireBody) Validate() error {
	if err := ValidateRecordID(b.Record); err != nil {
		return malformed("retire body: %v", err)
	}
	if b.Manifest.IsZero() {
		return malformed("retire body: manifest hash is missing")
	}
	if len(b.Shares) > MaxRetireShares {
		return malformed("retire body: %d shares, at most %d", len(b.Shares), MaxRetireShares)
	}
	if !b.Removed && len(b.Shares) == 0 {
		return malformed("retire body: retires neither the record nor any share")
	}
	for i := 1; i < len(b.Shares); i++ {
		if bytes.Compare(b.Shares[i-1][:], b.Shares[i][:]) >= 0 {
			return malformed("retire body: shares are not sorted and unique")
		}
	}
	return nil
}

func decodeRetire(b []byte) (any, error) {
	var v RetireBody
	if err := Unmarshal(b, &v); err != nil {
		return nil, malformed("retire body: %v", err)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}
