// Package consent is medwallet's consent ledger: signed, chained entries in
// one feed per author; grants, revocations and logged accesses; the policy
// every peer runs (Decide); credentials, role grants and emergency
// (break-glass) access; and the audit an outsider can run offline.
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
//	5 kind    uint   1 identity, 2 anchor, 3 grant, 4 revoke, 5 access, 6 equivocation,
//	                 7 credential, 8 break-glass, 9 review, 10 serve, 12 link,
//	                 13 repair-grant, 14 repair-revoke, 15 retire, 16 guardian-set,
//	                 17 recovery, 18 recovery-approval, 19 device, 20 device-revoke,
//	                 22 shl, 23 shl-access (shl.go), 24 age-key (agekey.go)
//	6 body    bytes  the canonical CBOR encoding of the kind's body
//	7 sig     bytes  64: Ed25519 signature
//
// The signature covers "medwallet ledger entry v1\n" followed by the
// encoding of the entry without key 7. Signatures (of entries, requests
// and cards) are checked under ZIP-215 (github.com/hdevalence/ed25519consensus):
// canonical s, any encoding of A and R, the cofactored equation. It
// accepts every signature crypto/ed25519 accepts, and batch verification
// (VerifyBatch) accepts exactly what single verification (VerifyEntry)
// does, so replicas agree however they checked. Keys of small order are
// refused as identities (ErrSmallOrderKey, in ID.PublicKey): under ZIP-215
// anyone can sign as them. An entry's hash (its ID, and the
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
//	                                6 not-before, 7 expires (absent: none), 8 age-wrapped record keys,
//	                                9 issuer and 10 role (a role grant: both or neither; grantee is
//	                                then the issuer's role ID), 11 time box in seconds (an emergency
//	                                grant: a role grant for ETREAT; absent: none; at most 7 days)
//	revoke        RevokeBody        1 hash of the grant or credential entry (only its author, the
//	                                grantor or the credential's issuer, can revoke it)
//	access        AccessBody        1 the requester's signed Request (its encoding, verbatim),
//	                                2 allow (absent: deny), 3 reason, 4 grant relied on,
//	                                5 head {1 seq, 2 hash} of the owner's feed the decider held,
//	                                6 head of the requester's feed (when the request names a
//	                                break-glass entry), 7 credential issuer and 8 head of its feed
//	                                (a decision on a role grant: both or neither), 9 hash of the
//	                                credential relied on (an allow by a role grant), 10 end of the
//	                                time box, Unix seconds (present exactly on an emergency allow),
//	                                11 repeats, 12 heads {1 device, 2 head} of the owner's device
//	                                feeds the decider held (sorted by device, at most MaxDevices;
//	                                absent when the owner has none)
//	equivocation  EquivocationProof 1, 2: two entry encodings in bytewise order, same author
//	                                and seq, both validly signed
//	credential    CredentialBody    1 subject ID, 2 role (2 to 48 of [a-z0-9-], starting with a
//	                                letter), 3 role ID (the issuer's pseudonymous ID for the role),
//	                                4 not-before, 5 expires (absent: none), 6 details (age
//	                                ciphertext to subject and issuer), 7 the role key's age recipient
//	break-glass   BreakGlassBody    1 owner ID, 2 hash of the owner's emergency grant, 3 reason
//	                                (age ciphertext to owner and author)
//	review        ReviewBody        1 hash of the break-glass entry reviewed, 2 outcome ("ok" or
//	                                "dispute"), 3 note (age ciphertext to the owner; optional)
//	serve         ServeBody         1 the author's serving peers (1 to 64 IDs, sorted, unique);
//	                                the latest serve entry counts
//	link          LinkBody          1 parent ID, 2 subject ID, 3 the sub-feed's ID, 4 the parent's
//	                                signature over "medwallet sub-feed link v1\n" || 3 || "\n" || 2
//	retire        RetireBody        1 record ID, 2 SHA-256 of the retired encrypted manifest,
//	                                3 its share IDs (sorted, unique, at most 256), 4 removed=true
//	                                (the whole record is gone; absent: only the listed shares)
//	device        DeviceBody        seq 1 of a device feed: 1 owner ID, 2 the device's ID (the
//	                                author), 3 the device's age recipient, 4 label (age ciphertext
//	                                to the owner, at most 1024 bytes; optional), 5 the owner's
//	                                signature over "medwallet device v1\n" || 2 || "\n" || 3 ||
//	                                "\n" || 4; the device's grants and revocations count as the owner's
//	device-revoke DeviceRevokeBody  1 device ID, 2 cut: the seq of the device's last entry that
//	                                still counts (only the device's owner can revoke it)
//	guardian-set  GuardianSetBody   1 set ID, 2 threshold, 3 guardians ({1 ID, 2 Shamir index, 3 piece:
//	                                age ciphertext to the guardian}, sorted by ID), 4 Feldman commitments,
//	                                5 hash of the sealed identity; the owner's latest counts
//	recovery      RecoveryBody      1 op (start, refuse, complete); a start: 2 owner, 3 set ID, 4 age
//	                                recipient, 5 waiting period (s); a refuse or complete: 6 the start's hash
//	recovery-approval RecoveryApprovalBody 1 the start's hash, 2 set ID, 3 piece (age ciphertext to
//	                                the start's recipient)
//	age-key       AgeKeyBody        1 the identity's new age recipient (X25519), 2 reason, 3 the
//	                                device revoked (optional); in the identity's own feed, the
//	                                newest counts (a device's own count for no one)
//
// A request is a map: 1 requester, 2 owner, 3 record ID, 4 scope, 5 purpose,
// 6 time (Unix seconds), 7 nonce (16 to 64 bytes), 8 signature by the
// requester over "medwallet access request v1\n" followed by the encoding
// without key 8, and, for a request under an emergency grant, 9 the hash
// of the requester's break-glass entry (32 bytes; absent otherwise).
//
// An exported ledger file is "medwallet ledger v1\n", the number of entries
// as a CBOR unsigned integer, then each entry's encoding as a CBOR byte
// string, and nothing after. A file that carries checkpoints starts
// "medwallet ledger v1 checkpoints\n" instead and, after the entries, has
// the number of checkpoint key certificates and each one's encoding as a
// byte string, then the number of checkpoint notes and each note as a
// byte string.
//
// # Checkpoints and witnesses
//
// Each author feed is a C2SP log. Its tree is the RFC 6962 Merkle tree
// (golang.org/x/mod/sumdb/tlog) over its entry hashes in seq order (leaf
// data = the 32-byte entry hash). A checkpoint is a C2SP tlog-checkpoint
// signed note (golang.org/x/mod/sumdb/note): origin line, size, base64
// root, no extension lines, signed by the feed's checkpoint key under the
// origin as key name. The checkpoint key is derived from the identity key
// (seed = SHA-256 of the author's signature of "medwallet checkpoint key
// v1\n"), so a restored wallet has it back; the origin is
// "medwallet.ledger/v1/" and the unpadded base64url of the first 16 bytes
// of SHA-256("medwallet checkpoint origin v1\n" ‖ public key), so a
// witness learns no author. A CheckpointCert {1 author, 2 key, 3 signature
// by the author of "medwallet checkpoint key certificate v1\n" ‖ key}
// binds the key to the author for auditors. Witnesses add C2SP
// tlog-cosignature/v1 lines named "medwallet.witness/" + their ID (key ID
// SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4]; signature = 8-byte time ‖ Ed25519
// signature of "cosignature/v1\ntime <t>\n" ‖ body). AuditCheckpoints
// reports fork (two checkpoints of one key, one size, two roots; or a root
// that differs from the entries held), withheld (a cosigned size beyond
// the entries held) and invalid-checkpoint findings; p2p/witness is the
// protocol.
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
// involving it is denied). A View that holds an equivocation entry (the
// proof as a body, logged by anyone) does the same, so the knowledge
// survives a restart and travels with the ledger.
//
// # Sub-feeds
//
// A peer logs its access entries about patient S in a sub-feed (SubFeed):
// a feed of its own whose Ed25519 seed is SHA-256 of the parent's
// (deterministic) signature over "medwallet sub-feed v1\n" || S, and whose
// seq 1 is a link entry signed over by the parent. Each (parent, S) pair is
// thus an ordinary feed, as Secure Scuttlebutt's meta-feeds do it. A View
// maps a sub-feed to its parent and subject (SubFeedOf, Decider); readers
// name the parent as the decider (CheckAccessIn, Disclosures).
//
// A View ingests entries in any order, holding an entry whose predecessor
// is missing until the gap fills. Replicas that hold the same set of
// entries make the same decisions, whatever the order of delivery.
//
// An entry is verified once. A Ledger verifies what it ingests (Ingest;
// IngestBatch checks a batch's signatures together, on every core, and
// stores it in one transaction) and stores only entries that passed, so
// OpenLedger checks each stored feed's chain but not its signatures:
// the store is the replica's own disk. VerifyStore re-checks everything,
// for a disk in doubt. An entry that passed VerifyEntry or VerifyBatch is
// remembered (by hash, boundedly), so ingesting it right after does not
// check its signature again.
//
// A view does not hold its entries. A Ledger's view keeps, per feed, the
// hashes of its entries and its head, and what it derived from them
// (grants, revocations, nonces, identities, anchors, credentials...);
// entries are read back from the Store on demand (EntryAt, FeedFrom,
// Entry) through a bounded cache (EntryCacheSize). A Store that keeps a
// view state (StateStore; boltstore does) has that derived state saved
// beside the entries, as tables, when the Ledger closes, and OpenLedger
// restores it without reading an entry when it describes the store's
// current entries (its write generation, checksum and heads). Opening
// reads the heads and small tables; a feed's hashes are copied when it is
// first asked about; grants,
// revocations and nonces stay in the store and are read on demand (a
// lookup reads one key, GrantsBy and GrantsTo read the grants they
// yield), and a save writes only what changed since. A state that is
// missing, stale, of an earlier version (2: one value) or unreadable is
// rebuilt from the entries, and a table that fails to read later is
// rebuilt in memory. The state is a cache: it is not part of the wire
// format and never changes a decision (state.go, state_tables.go).
//
// # Policy
//
// Decide(view, request, now) is pure and deterministic; see its doc for the
// order of checks. A request is a replay if its nonce was already carried
// by any access entry in the view, or if its time lies more than
// FreshnessWindow (5 minutes) before or after now.
//
// A role grant reaches whoever holds a credential from the grant's issuer
// for its role and role ID, not revoked by that issuer and valid at now.
// An emergency grant also needs the request to name the requester's own
// break-glass entry for that owner and grant, and allows only until its
// time box, counted from the requester's first break-glass entry for the
// grant, runs out; the allow's reason is "emergency". Only the owner's
// reviews of a break-glass entry count, and the latest wins.
//
// # Audit
//
// AuditLedger re-checks everything from the entries alone and re-runs
// Decide on every access entry as of that entry: on the owner's feed up to
// the head the access entry names, plus the decider's own earlier entries,
// plus the requester's and the issuer's feeds up to the heads it names (a
// feed whose head it does not name is left out), at the access entry's
// time. An allow the re-run denies, gives another reason for, or gives a
// shorter time box than logged is a violation. EmergencyAccesses sums up
// the break-glass entries naming an owner for the owner's review.
//
// Neither Decide nor the audit scans history: the view indexes the
// unrevoked grants of each owner, grantee, record, issuer and role (and
// the smallest grant ID ever, which a revoked deny names), and the audit
// indexes every fact with the position of its entry, replaying each
// owner's grants with a cursor that only moves forward (access entries are
// re-run in order of the owner head they name). AuditStore audits a Store
// feed by feed.
package consent
