package memstore_test

import (
	"testing"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/memstore"
	"github.com/medwallet/medwallet/vault/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) vault.ShareStore { return memstore.New() })
}
