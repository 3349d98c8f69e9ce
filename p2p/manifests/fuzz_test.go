package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/p2p/wire"
)

const fuzzRecord = "00112233445566778899aabbccddeeff"

// memScope is a stream scope that only counts memory: all the frame
// reader uses.
type memScope struct {
	network.StreamScope
	used int
}

func (m *memScope) ReserveMemory(n int, _ uint8) error {
	if m.used+n > 64<<20 {
		return network.ErrResourceLimitExceeded
	}
	m.used += n
	return nil
}
func (m *memScope) ReleaseMemory(n int)        { m.used -= n }
func (m *memScope) Scope() network.StreamScope { return m }

// memStore keeps manifest copies in memory.
type memStore struct{ copies []store.ManifestCopy }

func (m *memStore) PutManifest(owner consent.ID, record string, recipient consent.ID, envelope []byte) error {
	m.copies = append(m.copies, store.ManifestCopy{Owner: owner, Record: record, Recipient: recipient, Envelope: envelope})
	return nil
}

func (m *memStore) Manifests(owner consent.ID, record string, recipient consent.ID) ([]store.ManifestCopy, error) {
	var out []store.ManifestCopy
	for _, c := range m.copies {
		if c.Owner == owner && (record == "" || c.Record == record) && (recipient == "" || c.Recipient == recipient) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) DeleteManifests(owner consent.ID, record string) error { return nil }

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

const fuzzOwner = consent.ID("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")

// FuzzRequest reads a request as the peer does and serves it on a store
// in memory: never a panic, every reservation released once the answer is
// sent, and a decoded request re-encodes to one that decodes the same.
var requestSeeds = []any{
	request{Op: "put", Record: fuzzRecord, Recipient: fuzzOwner, Envelope: []byte("age")},
	request{Op: "list", Owner: fuzzOwner},
	request{Op: "list", Owner: fuzzOwner, Record: fuzzRecord, Recipient: fuzzOwner},
	request{Op: "delete", Record: fuzzRecord},
	request{Op: "put", Record: "not-hex"},
	request{Op: "list", Owner: "x"},
}

func FuzzRequest(f *testing.F) {
	addFrames(f, requestSeeds)
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Service{st: &memStore{}, log: slog.New(slog.DiscardHandler), pool: wire.NewPool(64<<20, smallFrame, 8<<20)}
		// Something to list.
		s.st.PutManifest(fuzzOwner, "00112233445566778899aabbccddeeff", fuzzOwner, []byte("stored"))
		sc := &memScope{}
		scoped := s.pool.Scoped(sc)
		var req request
		held, err := wire.ReadKeep(scoped, bufio.NewReader(bytes.NewReader(in)), maxRequest, &req, s.pool.Take)
		if err != nil {
			if sc.used != 0 || s.pool.Used() != 0 {
				t.Fatalf("%d bytes reserved (pool %d) after %v", sc.used, s.pool.Used(), err)
			}
			return
		}
		answered := func() {}
		resp := s.serve(fuzzOwner, req, &answered)
		held()
		var out bytes.Buffer
		if err := wire.Write(&out, resp); err != nil {
			t.Fatal(err)
		}
		answered()
		if sc.used != 0 || s.pool.Used() != 0 {
			t.Fatalf("%d bytes reserved (pool %d) after the answer", sc.used, s.pool.Used())
		}
		var again bytes.Buffer
		if err := wire.Write(&again, req); err != nil {
			t.Fatal(err)
		}
		var req2 request
		if err := wire.Read(sc, bufio.NewReader(&again), maxRequest, &req2); err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("request does not round-trip: %v", err)
		}
	})
}

// FuzzResponse decodes a peer's answer as the client does.
var responseSeeds = []any{
	response{OK: true},
	response{OK: true, Copies: []Copy{{Record: "00112233445566778899aabbccddeeff", Recipient: fuzzOwner, Envelope: []byte("age")}}},
	response{Error: "busy: too many streams", Code: "busy"},
	response{Error: "bad record ID"},
}

func FuzzResponse(f *testing.F) {
	addFrames(f, responseSeeds)
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := &memScope{}
		var resp response
		err := wire.Read(sc, bufio.NewReader(bytes.NewReader(in)), maxResponse, &resp)
		if sc.used != 0 {
			t.Fatalf("%d bytes reserved after reading", sc.used)
		}
		if err != nil {
			return
		}
		err = answerError("peer", resp)
		if (err == nil) != resp.OK || (err != nil && !errors.Is(err, ErrRemote)) {
			t.Fatalf("answer %+v read as %v", resp, err)
		}
		if resp.Code == "busy" && !resp.OK && !errors.Is(err, ErrBusy) {
			t.Fatalf("busy read as %v", err)
		}
	})
}
