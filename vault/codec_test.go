package vault_test

import (
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/medwallet/medwallet/vault"
)

// TestManifestArrayLimit checks that the manifest decoder bounds arrays by
// the share count (its own limit on the shared codec), before anything is
// allocated for them: a body with MaxShares+1 shares fails in the decoder.
func TestManifestArrayLimit(t *testing.T) {
	pub, priv := fixedOwner()
	shares := make([]map[string][]byte, vault.MaxShares+1)
	for i := range shares {
		shares[i] = map[string][]byte{"id": make([]byte, 32), "hashes": make([]byte, 32)}
	}
	em, _ := cbor.CoreDetEncOptions().EncMode()
	body, err := em.Marshal(map[string]any{"v": 1, "shares": shares})
	if err != nil {
		t.Fatal(err)
	}
	_, err = vault.ParseManifest(signedEnvelope(priv, body), pub)
	var tooMany *cbor.MaxArrayElementsError
	if !errors.Is(err, vault.ErrBadManifest) || !errors.As(err, &tooMany) {
		t.Fatalf("got %v, want ErrBadManifest from the array limit", err)
	}
}
