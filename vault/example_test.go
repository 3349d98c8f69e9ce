package vault_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"

	"filippo.io/age"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
)

// Seal a record into a store, keep its manifest encrypted, and open it
// again with two of its five shares gone.
func Example() {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	me, _ := age.GenerateX25519Identity()
	store := memstore.New()

	record := `{"resourceType":"Observation","id":"bp","subject":{"reference":"Patient/p1"}}`
	m, err := vault.Seal(ctx, strings.NewReader(record), store, vault.SealOptions{Owner: pub, Label: "blood pressure"})
	if err != nil {
		panic(err)
	}
	encrypted, err := m.Encrypt(priv, me.Recipient()) // what is stored and anchored
	if err != nil {
		panic(err)
	}

	m2, err := vault.DecryptManifest(encrypted, pub, me)
	if err != nil {
		panic(err)
	}
	store.Delete(ctx, m2.Shares[0].ID)
	store.Delete(ctx, m2.Shares[4].ID)
	var out bytes.Buffer
	if err := vault.Open(ctx, m2, store, &out, vault.OpenOptions{}); err != nil {
		panic(err)
	}
	fmt.Println(m2.Metadata.Format, m2.Metadata.FHIR.ResourceType, m2.Metadata.FHIR.Patient, m2.Metadata.Label)
	fmt.Println(out.String() == record)
	// Output:
	// fhir-r4 Observation Patient/p1 blood pressure
	// true
}
