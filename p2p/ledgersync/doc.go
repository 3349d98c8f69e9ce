// Package ledgersync spreads consent ledger entries between peers and to
// and from light clients. It has three parts, each with its own wire
// format, versioned by its protocol name:
//
// # Gossip: a topic per patient, "/medwallet/feed/1/<hex>"
//
// A peer given its serving set (GossipService.Follow) gossips each entry
// on the topic of its subject (consent.Topic: an HMAC of the patient's ID
// under the patient's rendezvous secret, so a stranger who knows only the
// ID cannot name it), joins only the topics of the patients it serves,
// and sends a patient's entries only to remotes its access rule allows
// for that patient (their subscriptions to anything else are not even
// tracked). A peer without a serving set uses the one global topic
// "/medwallet/ledger/1", whose name carries no ID. On every topic a
// message's data is
// exactly one entry in its canonical encoding (consent.Entry.Encode), at
// most WithMaxMessageSize bytes (default DefaultMaxEntrySize, 640 KiB;
// see Admission).
//
// Messages are not signed by gossipsub (StrictNoSign, no author, no
// seqno): each entry is already signed by its author, so an envelope
// signature would add cost and would name the peer that first published
// the entry (the peer a patient's client talked to), which is metadata we
// do not want on the wire. The message ID is the SHA-256 of the data,
// which is the entry's hash: the same entry published by two peers is one
// message and duplicates are dropped before validation.
//
// The topic validator decodes strictly and verifies the signature, then
// ingests into the ledger:
//
//	reject  malformed or non-canonical, unknown kind, bad signature, too
//	        large, or the next seq of a feed but not linked to the head
//	        held here (wrong previous hash, time going backwards)
//	ignore  already held (not forwarded again, so replays do not flood);
//	        dated beyond the max clock skew (the forwarder's clock may
//	        differ, so it is not penalised);
//	        predecessor missing: the Ingest holds it in the gap, and a pull
//	        sync from the peer that sent it follows; equivocation: a
//	        different entry holds this author and seq, the ledger records
//	        the proof, the entry is not forwarded
//	accept  the entry joined its feed; entries it released from pending
//	        are then gossiped by this peer too
//
// Gossip alone loses messages (a message published before the mesh forms,
// or forwarded just before a peer joined the mesh, never reaches it), so
// pull sync runs on every new connection, on every new mesh link, on gaps
// and periodically.
//
// # Pull sync: protocol "/medwallet/ledger-sync/1.0.0"
//
// Every message on the stream is a frame: a uvarint length, then that many
// bytes of deterministic CBOR (as consent encodes, strictly decoded). The
// client sends requests, each answered by one frame, until it closes:
//
//	request {1: op, 2: after, 3: author, 4: from, 5: limit}   <= 4 KiB
//	op 1, heads: the server answers {1: [{1: author, 2: seq, 3: hash}...],
//	  2: more} with the heads of up to 1024 feeds whose authors sort after
//	  `after` (the empty string for the first page)           <= 256 KiB
//	op 2, fetch: the server answers {1: [entry encoding...]}, consecutive
//	  entries of author's feed from seq `from`, at most min(limit, 256)
//	  entries and 2 MiB unless the first entry alone is larger; empty if it
//	  has none                                                <= 3.1 MiB
//
// The client checks that every entry decodes, verifies, has the author and
// seq asked for and links to the previous one; it stops at the head seq it
// was told. To catch forks, a peer behind on a feed fetches from its own
// head (not after it), and one that is ahead or level checks the other
// side's head hash: a conflicting entry is ingested, which records the
// equivocation. Each request and answer has its own deadline (20 s), and
// the stream SyncStreamLife (5 min) from its start or its last fetch
// answered with entries, so a long catch-up is never cut; an oversized or
// undecodable frame resets the stream.
//
// # Push: protocol "/medwallet/ledger-push/2.0.0"
//
// For clients outside the mesh (the CLI dials a peer for one command).
// Frames as for sync; the client sends requests, each answered by one
// frame, and closes its side:
//
//	request {1: op, 2: [heads], 3: [entry encodings]}
//	op 1, offer: up to 1024 heads {1: author, 2: seq, 3: hash}, the
//	  client's latest entry per author; the peer answers {1: [{1: seq,
//	  2: hash, 3: has}...]}, its head of each feed and whether it holds
//	  the offered entry                                       <= 64 KiB
//	op 2, entries: up to 256 encodings (clients cut at 1 MiB, the peer
//	  reads up to 4 MiB, each at most the maximum message size); the peer
//	  answers {1: [{1: hash of the bytes, 2: status, 3: reason, 4: code}...]}
//
// Status: 1 accepted (and gossiped), 2 already held, 3 pending
// (predecessor missing), 4 rejected with a reason of at most 256 bytes,
// 5 refused by the Authoriser (code "not-authorised"). The client sends
// only what the offer showed the peer lacks, and acks the rest as already
// held without sending it: a write pushes only what is new, and a feed of
// any length publishes. A push stream must keep MinPushRate (1 KiB/s)
// over the time the peer waits for it, and lives PushStreamLife (2 min)
// from its last batch that made progress.
//
// Each remote may hold StreamsPerPeer (2) push and 2 sync streams at once,
// a known peer (WithKnownPeers) KnownStreamsPerPeer (8): there is no pool
// shared by all remotes that a crowd of identities could fill.
//
// # Admission
//
// Every entry received by gossip, push or sync passes the same limits
// before ingestion; a refusal is a typed error naming the limit:
//
//	ErrEntryTooLarge  encoding over WithMaxMessageSize (DefaultMaxEntrySize)
//	ErrFutureEntry    dated more than WithMaxClockSkew (5 min) ahead of
//	                  the peer's clock (WithClock)
//	ErrEquivocatingAuthor  by an author the ledger holds an equivocation
//	                  proof against (ignored by gossip, not forwarded)
//
//	ErrOverBudget     the author spent its budget of new entries on this
//	                  peer (WithAuthorBudget): a token bucket per author in
//	                  entries and bytes, with a small consent lane for
//	                  grants, revocations and other consent entries
//
// The budget charges new entries only, received by push, by gossip or by
// a sync with a peer that is not known; what a known peer sends is charged
// but never refused, and entries by known peers are not charged. Gossip
// ignores an entry over budget rather than rejecting it.
//
// A push ack carries the error's text as its reason; sync skips the rest
// of that feed from that peer. OnEquivocation reports each equivocation
// detected; the peer daemon logs its proof with LogEquivocation. Entries whose predecessor is missing wait
// in the gap, bounded across all authors by WithGapLimit (count and
// bytes); past either bound the oldest is dropped, and sync fetches it
// again later. The ledger's own pending set is not used by ingestion.
//
// # Authorisation (need to know)
//
// WithAuthoriser sets a policy (Authoriser) over who may read and write
// which feeds; without one every remote reads and writes everything. With
// one, heads list only the feeds the remote MayRead, and a remote that may
// read none gets {1: [], 3: "not-authorised"}; a fetch of a feed it may
// not read gets {1: [], 2: "not-authorised"}; an entry MayWrite refuses,
// received by push, sync or gossip, is not stored and not gossiped, and a
// push acks it 5 (refused) with code "not-authorised" ("recovery-cap" when
// the refusal wraps ErrRecoveryCap). Clients turn the
// code into a *RefusedError wrapping ErrNotAuthorised. Refusals are counted
// (Stats.NotAuthorised) and logged at info at most once a minute per
// remote, naming a feed by a short hash of its author only.
//
// # Services
//
// Each part is one small service over an Ingest (the ledger, the checks
// every received entry passes, the counters and the OnAccepted hooks):
//
//	GossipService  NewGossipService  topic GossipTopic   Publish
//	SyncService    NewSyncService    protocol SyncID     SyncWith; client: Pull
//	PushService    NewPushService    protocol PushID     client: Push
//
// Gossip asks the sync service to pull from a peer whose gossip shows a
// gap, and push hands what it took in to gossip. Light clients use the
// package functions Push and Pull; the peer daemon runs all three with New.
package ledgersync
