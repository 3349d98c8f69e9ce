package consent_test

import (
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) consent.Store { return consent.NewMemStore() })
}
