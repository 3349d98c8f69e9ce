package shares

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
	"github.com/medwallet/medwallet/vault"
)

const fuzzRecord = "00112233445566778899aabbccddeeff"

// memScope is a stream scope that only counts memory: all the frame
// reader uses.
type memScope struct {
	network.StreamScope
	used int
}

func (m *memScope) ReserveMemory(n int, _ uint8) error {
	if m.used+n > 1<<20 {
		return network.ErrResourceLimitExceeded
	}
	m.used += n
	return nil
}
func (m *memScope) ReleaseMemory(n int)        { m.used -= n }
func (m *memScope) Scope() network.StreamScope { return m }

// frames encodes each seed as one frame, plus a few broken frames.
func frames(tb testing.TB, vs []any) [][]byte {
	var out [][]byte
	for _, v := range vs {
		var b bytes.Buffer
		if err := wire.Write(&b, v); err != nil {
			tb.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	return append(out, []byte{}, []byte{0x05, 0xa1, 0x01, 0x63, 'p', 'u'}, []byte{0xff, 0xff, 0xff, 0x7f})
}

func addFrames(f *testing.F, vs []any) {
	for _, b := range frames(f, vs) {
		f.Add(b)
	}
}

// FuzzRequest decodes what a remote sends first on a stream, as the peer
// does, and the fields the peer parses before touching its store: never a
// panic, never memory left reserved, and a decoded request re-encodes to
// one that decodes the same.
var requestSeeds = []any{
	request{Op: OpPut, Record: fuzzRecord},
	request{Op: OpGet, Share: make([]byte, 32), Access: []byte{0xa0}},
	request{Op: OpHas, Share: make([]byte, 32)},
	request{Op: OpDelete, Share: make([]byte, 31)},
	request{Op: "bogus"},
}

func FuzzRequest(f *testing.F) {
	addFrames(f, requestSeeds)
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := &memScope{}
		br := bufio.NewReader(bytes.NewReader(in))
		var req request
		err := wire.Read(sc, br, maxFrame, &req)
		if sc.used != 0 {
			t.Fatalf("%d bytes reserved after reading", sc.used)
		}
		if err != nil {
			return
		}
		_, _ = shareID(req.Share)
		_, _ = vault.ParseRecordID(req.Record)
		_, _ = consent.DecodeRequest(req.Access)
		if hdr, err := br.Peek(vault.ShareHeaderSize); err == nil {
			_, _ = vault.ShareRecord(hdr)
		}
		var again bytes.Buffer
		if err := wire.Write(&again, req); err != nil {
			t.Fatal(err)
		}
		var req2 request
		if err := wire.Read(sc, bufio.NewReader(&again), maxFrame, &req2); err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("request does not round-trip: %v", err)
		}
	})
}

// FuzzResponse decodes a peer's answer as the client does: never a panic,
// and every refusal is one of the client's typed errors.
var responseSeeds = []any{
	response{OK: true, Share: make([]byte, 32)},
	response{OK: true, Size: 1 << 20, Reason: consent.ReasonOwner, Entry: make([]byte, 32)},
	response{Error: "denied", Code: "denied", Reason: consent.ReasonNoGrant},
	response{Error: "busy", Code: "busy"},
	response{Error: "x", Code: "not-found"},
	response{Error: "x", Code: "bad-request"},
	response{Error: "x", Code: "owner"},
}

func FuzzResponse(f *testing.F) {
	addFrames(f, responseSeeds)
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := &memScope{}
		resp, err := readResponse(sc, bufio.NewReader(bytes.NewReader(in)), "peer")
		if sc.used != 0 {
			t.Fatalf("%d bytes reserved after reading", sc.used)
		}
		if err == nil {
			if !resp.OK {
				t.Fatal("a refusal read as success")
			}
			return
		}
		var decoded response
		if wire.Read(sc, bufio.NewReader(bytes.NewReader(in)), maxFrame, &decoded) != nil {
			return // not an answer: the stream is reset
		}
		var de *DeniedError
		if resp.Code == "busy" && !errors.Is(err, ErrBusy) {
			t.Fatalf("busy read as %v", err)
		}
		if resp.Code == "denied" && !errors.As(err, &de) {
			t.Fatalf("denied read as %v", err)
		}
	})
}
