package consent

import (
	"crypto/sha256"
	"encoding/hex"
)

// An owner keeps three blobs on its serving peers in the manifest store,
// under record IDs derived from its ID rather than under a record an
// anchor names: its backup of local state, its sealed identity (the
// identity encrypted under the guardians' recovery secret) and its age
// keys (its current age identity after a rotation, one copy for each
// device encrypted to that device and one escrowed for its signing key;
// agekey.go). Peers derive
// the same IDs so that garbage collection never takes them for orphans;
// their leases still expire when nobody renews them.

// BackupRecord is the manifest-store record ID of owner's backup of
// local state.
func BackupRecord(owner ID) string { return derivedRecord("medwallet backup\n", owner) }

// SealedIdentityRecord is the manifest-store record ID under which
// owner's sealed identity is kept: one per owner, so that a guardian
// rotation replaces it.
func SealedIdentityRecord(owner ID) string {
	return derivedRecord("medwallet recovery blob\n", owner)
}

// AgeKeyRecord is the manifest-store record ID under which owner's
// current age identity is kept for its devices and its signing key
// (agekey.go): one copy per recipient.
func AgeKeyRecord(owner ID) string { return derivedRecord("medwallet age key\n", owner) }

// IsOwnerBlob reports whether record is one of owner's derived blobs.
func IsOwnerBlob(owner ID, record string) bool {
	return record == BackupRecord(owner) || record == SealedIdentityRecord(owner) || record == AgeKeyRecord(owner)
}

func derivedRecord(context string, owner ID) string {
	h := sha256.Sum256([]byte(context + string(owner)))
	return hex.EncodeToString(h[:16])
}
