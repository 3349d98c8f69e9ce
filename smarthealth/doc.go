// Package smarthealth reads and writes the SMART Health formats that
// clinicians' tools already understand: SMART Health Links (SHL) and SMART
// Health Cards (SHC). It is pure: no network, no files, no keyring; the
// wallet and the peer's HTTPS server do the I/O.
//
// # SMART Health Link payload (link.go)
//
// A link is the text "shlink:/" followed by the base64url (no padding)
// encoding of a JSON object, optionally behind a viewer URL and '#'
// ("https://viewer.example/#shlink:/..."). The object's fields, as the SHL
// specification (https://docs.smarthealthit.org/smart-health-links/spec)
// defines them and as [ParseLink] checks them:
//
//	url    required  https URL of the manifest (or of the file with flag U), at most 128 characters
//	key    required  43 characters: base64url of the 32-byte A256GCM content key
//	exp    optional  expiry, a JSON number of seconds since the epoch
//	flag   optional  upper-case letters in alphabetical order, each once: L (long-term),
//	                 P (passcode required), U (url is the single file: no manifest); U excludes P
//	label  optional  at most 80 characters, no control characters
//	v      optional  protocol version; only 1 is known
//
// Unknown fields are ignored (the specification lets links grow fields);
// a known field of the wrong JSON type, a duplicated flag letter, an
// unknown flag letter or a key of the wrong length is refused. The encoded
// text of a link is bounded by [MaxLinkText].
//
// # Encrypted files (jwe.go)
//
// Every file behind a link is a JWE in compact serialization with
// "alg": "dir", "enc": "A256GCM", optionally "zip": "DEF", and a "cty"
// header naming the content type (application/fhir+json,
// application/smart-health-card or application/smart-api-access). The key
// is the link's key. [Decrypt] refuses any other algorithm, a JWE longer
// than [MaxJWE], and inflated content longer than go-jose's bound (250 kB
// or ten times the compressed size, whichever is larger).
package smarthealth
