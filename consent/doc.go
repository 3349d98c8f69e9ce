// Package consent is medwallet's consent ledger: signed, chained entries in
// one feed per author; grants, revocations and logged accesses; the policy
// every peer runs (Decide); and the audit an outsider can run offline.
//
// The package is pure: no network, and disk only behind the Store
// interface (boltstore on disk, MemStore in memory).
//
// # Wire format, version 1
//
// All encodings are deterministic CBOR (RFC 8949 section 4.2.1: shortest
// integer and length forms, map keys sorted bytewise, definite lengths, no
// tags, no floats). Decoders are strict: unknown or duplicate keys, trailing
// bytes and any non-canonical encoding are refused (ErrNotCanonical), so
// every value has exactly one encoding and one hash.
//
// An entry is a map with integer keys:
//
//	1 author  text   the author's ID (libp2p peer ID of its Ed25519 key)
//	2 seq     uint   1 for the author's first entry, then +1
//	3 prev    bytes  32: SHA-256 of the author's entry seq-1; zeros for seq 1
//	4 time    uint   Unix seconds; never earlier than prev's time
//	5 kind    uint   1 identity, 2 anchor, 3 grant, 4 revoke, 5 access, 6 equivocation
//	6 body    bytes  the canonical CBOR encoding of the kind's body
//	7 sig     bytes  64: Ed25519 signature
//
// The signature covers "medwallet ledger entry v1\n" followed by the
// encoding of the entry without key 7. An entry's hash (its ID, and the
// next entry's prev) is the SHA-256 of its full encoding, signature
// included. Entries are at most MaxEntrySize bytes. Unknown kinds are
// refused (ErrUnknownKind).
//
// Bodies (all maps with integer keys; see the Go types for field order):
//
//	identity      IdentityBody      1 age recipient, 2 role (no name: names never go on the ledger)
//	anchor        AnchorBody        1 record ID, 2 SHA-256 of the encrypted manifest
//	grant         Grant             1 grantee, 2 records (sorted, unique) or 3 all=true,
//	                                4 canonical SMART v2 scopes (sorted, unique), 5 purpose code,
//	                                6 not-before, 7 expires (absent: none), 8 age-wrapped record keys
//	revoke        RevokeBody        1 hash of the grant entry (only its author can revoke it)
//	access        AccessBody        1 the requester's signed Request (its encoding, verbatim),
//	                                2 allow (absent: deny), 3 reason, 4 grant relied on,
//	                                5 head {1 seq, 2 hash} of the owner's feed the decider held
//	equivocation  EquivocationProof 1, 2: two entry encodings in bytewise order, same author
//	                                and seq, both validly signed
//
// A request is a map: 1 requester, 2 owner, 3 record ID, 4 scope, 5 purpose,
// 6 time (Unix seconds), 7 nonce (16 to 64 bytes), 8 signature by the
// requester over "medwallet access request v1\n" followed by the encoding
// without key 8.
//
// An exported ledger file is "medwallet ledger v1\n", the number of entries
// as a CBOR unsigned integer, then each entry's encoding as a CBOR byte
// string, and nothing after.
//
// docs/format.md describes the same format with a byte-by-byte example;
// testdata/vectors holds test vectors, valid and tampered, made by
// internal/gentestvectors.
//
// # Feeds and views
//
// Each author appends to its own feed. CheckNext accepts one new entry
// against a known head; VerifyFeed checks a whole feed. Two validly signed
// entries with one author and seq are an equivocation: the error carries an
// EquivocationProof that anyone can check with VerifyEquivocation, and a
// View treats that author as untrusted from then on (every request
// involving it is denied).
//
// A View ingests entries in any order, holding an entry whose predecessor
// is missing until the gap fills. Replicas that hold the same set of
// entries make the same decisions, whatever the order of delivery.
//
// # Policy
//
// Decide(view, request, now) is pure and deterministic; see its doc for the
// order of checks. A request is a replay if its nonce was already carried
// by any access entry in the view, or if its time lies more than
// FreshnessWindow (5 minutes) before or after now.
//
// # Audit
//
// AuditLedger re-checks everything from the entries alone and re-runs
// Decide on every access entry as of that entry: on the owner's feed up to
// the head the access entry names, plus the decider's own earlier entries,
// at the access entry's time.
package consent
