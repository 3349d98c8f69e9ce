package manifests

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
)

// TestFuzzSeeds keeps the seed corpus of the fuzz targets under
// testdata/fuzz (checked in): it fails when a seed is missing or stale,
// and rewrites them with $MEDWALLET_WRITE_FUZZ_SEEDS set.
func TestFuzzSeeds(t *testing.T) {
	for target, seeds := range map[string][]any{"FuzzRequest": requestSeeds, "FuzzResponse": responseSeeds} {
		named := map[string][]byte{}
		for _, b := range frames(t, seeds) {
			sum := sha256.Sum256(b)
			named[fmt.Sprintf("seed-%x", sum[:8])] = b
		}
		testutil.FuzzSeeds(t, target, named)
	}
}
