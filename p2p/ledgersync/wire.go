package ledgersync

import (
	"github.com/medwallet/medwallet/consent"
)

// Frame limits. Every frame is a uvarint length followed by that many bytes,
// read through package wire; a length above the limit for the frame's place
// resets the stream before anything is allocated.
const (
	maxRequestFrame = 4 << 10   // sync requests
	maxHeadsFrame   = 256 << 10 // one page of heads
	frameOverhead   = 64 << 10  // CBOR headers around a batch of entries

	headsPageSize = 1024    // heads per page
	maxBatchLen   = 256     // entries per fetch batch
	batchBytes    = 2 << 20 // soft byte budget of one batch (one entry may pass it)
	maxAuthors    = 1 << 20 // heads a client reads from one peer
	maxPushBatch  = 256     // entries in one push batch
	// pushBatchBytes bounds the entries of one push batch a peer reads
	// (plus one entry and CBOR headers); clients cut batches at
	// clientBatchBytes, which two streams of a stranger fit in the push
	// protocol's memory allowance.
	pushBatchBytes   = 4 << 20
	clientBatchBytes = 1 << 20
	maxOfferHeads    = 1024     // heads in one push offer
	maxOfferFrame    = 64 << 10 // one offer answer
	maxPushAcksFrame = maxPushBatch*(maxReasonLen+64) + 64
	maxPushRequests  = 1 << 20 // request frames on one push stream
	maxReasonLen     = 256     // bytes of an ack's reason
	serviceName      = "medwallet.ledgersync"
)

// Sync operations.
const (
	opHeads uint8 = 1
	opFetch uint8 = 2
)

// syncRequest is what a client sends on a SyncID stream, any number of
// times, each answered by one frame: a headsPage for opHeads, a batch for
// opFetch.
type syncRequest struct {
	Op     uint8      `cbor:"1,keyasint"`
	After  consent.ID `cbor:"2,keyasint,omitempty"` // opHeads: authors after this one
	Author consent.ID `cbor:"3,keyasint,omitempty"` // opFetch: whose feed
	From   uint64     `cbor:"4,keyasint,omitempty"` // opFetch: first seq wanted
	Limit  uint32     `cbor:"5,keyasint,omitempty"` // opFetch: at most this many entries
}

// feedHead is one author's head as a peer holds it.
type feedHead struct {
	Author consent.ID   `cbor:"1,keyasint"`
	Seq    uint64       `cbor:"2,keyasint"`
	Hash   consent.Hash `cbor:"3,keyasint"`
}

// headsPage answers opHeads: heads sorted by author, More if the page is
// full. Code, when set, is a refusal (CodeNotAuthorised) and Heads is empty.
type headsPage struct {
	Heads []feedHead `cbor:"1,keyasint"`
	More  bool       `cbor:"2,keyasint,omitempty"`
	Code  string     `cbor:"3,keyasint,omitempty"`
}

// batch answers opFetch: canonical entry encodings with consecutive seqs
// starting at the request's From; empty if the peer has none. Code, when
// set, is a refusal (CodeNotAuthorised) and Entries is empty.
type batch struct {
	Entries [][]byte `cbor:"1,keyasint"`
	Code    string   `cbor:"2,keyasint,omitempty"`
}

// Push operations.
const (
	pushOpOffer   uint8 = 1
	pushOpEntries uint8 = 2
)

// pushRequest is what a client sends on a PushID stream, any number of
// times, each answered by one frame: an offerAnswer for pushOpOffer, a
// pushAcks for pushOpEntries.
type pushRequest struct {
	Op      uint8      `cbor:"1,keyasint"`
	Heads   []feedHead `cbor:"2,keyasint,omitempty"` // pushOpOffer: the client's head per author
	Entries [][]byte   `cbor:"3,keyasint,omitempty"` // pushOpEntries: entry encodings
}

// offerAnswer answers pushOpOffer: one heldHead per offered head, in order.
type offerAnswer struct {
	Held []heldHead `cbor:"1,keyasint"`
}

// heldHead is what the peer holds of one offered feed: its head, and
// whether it holds the offered entry itself.
type heldHead struct {
	Seq  uint64       `cbor:"1,keyasint"`
	Hash consent.Hash `cbor:"2,keyasint"`
	Has  bool         `cbor:"3,keyasint,omitempty"`
}

// pushAcks answers pushOpEntries: one ack per entry, in order.
type pushAcks struct {
	Acks []wireAck `cbor:"1,keyasint"`
}

// wireAck is one push acknowledgement on the wire.
type wireAck struct {
	Hash   consent.Hash `cbor:"1,keyasint"`
	Status uint8        `cbor:"2,keyasint"`
	Reason string       `cbor:"3,keyasint,omitempty"`
	Code   string       `cbor:"4,keyasint,omitempty"` // AckRefused: CodeNotAuthorised
}
