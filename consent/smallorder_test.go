package consent_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
)

// A key of small order is refused as an identity wherever an ID is parsed
// or a signature by it checked: under ZIP-215, R of small order and s = 0
// make a "signature" of any message by such a key, so it proves nothing.
// Each of the 8 small-order points, in each of the 14 encodings ZIP-215
// decodes, is refused: as an ID, as an entry's author, as a request's
// requester and as a card's ID.
func TestSmallOrderKeysRefused(t *testing.T) {
	ageID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for i, ks := range smallOrder {
		pub, _ := hex.DecodeString(ks)
		id, err := consent.IDFromPublicKey(pub)
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		rb, _ := hex.DecodeString(smallOrder[(i+1)%len(smallOrder)])
		forged := append(rb, make([]byte, 32)...) // verifies under ZIP-215

		if _, err := consent.ParseID(string(id)); !errors.Is(err, consent.ErrSmallOrderKey) || !errors.Is(err, consent.ErrBadID) {
			t.Errorf("key %d: ParseID: %v, want ErrSmallOrderKey", i, err)
		}
		e := &consent.Entry{Author: id, Seq: 1, Time: bt0.Unix(), Kind: consent.KindAnchor, Body: anchorBody(t, i), Sig: forged}
		if err := consent.VerifyEntry(e); err == nil || !strings.Contains(err.Error(), "small order") {
			t.Errorf("key %d: entry: %v, want refused for its small-order author", i, err)
		}
		r := &consent.Request{Requester: id, Owner: batchSigner(t, "owner").ID(), Record: "rec-1", Scope: "patient/*.rs",
			Purpose: "TREAT", Time: bt0.Unix(), Nonce: make([]byte, consent.MinNonceSize), Sig: forged}
		if err := consent.VerifyRequest(r); err == nil || !strings.Contains(err.Error(), "small order") {
			t.Errorf("key %d: request: %v, want refused", i, err)
		}
		c := consent.Card{ID: id, AgeRecipient: ageID.Recipient().String(), Name: "Nobody", Role: "patient", Created: bt0.Unix(), Sig: forged}
		if err := c.Verify(); !errors.Is(err, consent.ErrSmallOrderKey) {
			t.Errorf("key %d: card: %v, want ErrSmallOrderKey", i, err)
		}
	}
	// A real key is still an identity.
	if _, err := consent.ParseID(string(batchSigner(t, "real").ID())); err != nil {
		t.Fatal(err)
	}
}
