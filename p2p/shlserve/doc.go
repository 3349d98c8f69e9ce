// Package shlserve serves the SMART Health Links a patient shares
// (medwallet share --shl) from the patient's peers, over HTTPS as the SHL
// specification asks, and takes the links' encrypted files from the
// patient over libp2p.
//
// # Upload: /medwallet/shl/1.0.0
//
// The patient (the stream's authenticated remote) first signs a shl entry
// (consent.KindShl) and pushes it to the peer, then sends one stream per
// file: one request frame, one answer frame. A request is canonical CBOR:
//
//	1 op          text: "put", "delete" or "info"
//	2 link        bytes(32): hash of the shl entry ("put", "delete")
//	3 index       uint: the file's place in the entry's records ("put")
//	4 type        text: the file's content type, application/fhir+json ("put")
//	5 file        bytes: the JWE text, exactly the size key 3 of the entry names ("put")
//	6 verifier    {1 salt bytes(16), 2 hash bytes(32)}: argon2id of the passcode
//	              (time 2, memory 19 MiB, 1 thread), on every "put" of a link with flag P, absent otherwise
//
// The answer: {1 ok true} or {2 error text, 3 code}, and on "put" and
// "info" 4 the peer's public base URL ("https://host:port"): the link's
// manifest URL is base + "/shl/" + link ID. Codes: bad-request, not-found
// (the peer's ledger does not hold the shl entry yet: push it, then try
// again), owner (the entry is another identity's), denied (revoked or
// expired link), quota (the owner holds MaxLinks live links or MaxBytes
// of files here), not-allowed (the peer's storage policy), busy,
// internal. A frame is at most 16 MiB + 4 KiB. "delete" drops the link's
// files (the owner does it after revoking; the peer also drops the files
// of revoked and expired links by itself).
//
// The peer keeps what it is sent in DATA/shl.db (bbolt, 0600): bucket
// "links" maps the link ID to {1 owner, 2 shl entry hash, 3 content
// types, 4 verifier, 5 files held (bitmap), 6 wrong passcodes}, bucket
// "files" maps link ID ‖ 0x00 ‖ index to the JWE text. The peer never holds
// the link's key: the files are ciphertext to it.
//
// # HTTPS (the SHL specification)
//
//	POST /shl/ID        the manifest request: JSON {"recipient": text (required),
//	                    "passcode": text, "embeddedLengthMax": number}, at most 4 KiB
//	GET  /shl/file/TOK  a file location from a manifest: the JWE (application/jose)
//
// Every manifest request on a link this peer holds is decided with
// consent.DecideShl on the peer's view of the ledger (after it caught up
// with its known peers; before that 503) and logged as a shl-access entry
// (consent.KindShlAccess) in the peer's sub-feed about the owner, the
// recipient encrypted to the owner, before the answer is written. Answers:
// 200 with {"files": [{"contentType", "location"} or {"contentType",
// "embedded"}]}; 401 with {"remainingAttempts": n} for a missing or wrong
// passcode (the last one allowed kills the link); 404 for an unknown,
// revoked, expired or dead link (and, undecided, for a link whose files
// have not all arrived); 400 for a malformed request; 413 for a
// body over 4 KiB; 429 with Retry-After when the client's address asks
// too often. A location is valid for LocationLife and names one file of
// one granted request; the file is refused once the link is revoked or
// expired, even through a location handed out before.
package shlserve
