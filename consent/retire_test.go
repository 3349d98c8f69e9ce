package consent

import (
	"errors"
	"testing"
	"time"
)

func TestRetireBody(t *testing.T) {
	s := testSigner(t, "alice")
	ok := []*RetireBody{
		{Record: "rec-1", Manifest: Hash{1}, Removed: true},
		{Record: "rec-1", Manifest: Hash{1}, Shares: []Hash{{1}, {2}}},
	}
	for _, b := range ok {
		e, err := NewEntry(s, Head{}, time.Unix(1_800_000_000, 0), KindRetire, b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.DecodedBody()
		if err != nil {
			t.Fatal(err)
		}
		if g := got.(*RetireBody); g.Record != b.Record || g.Removed != b.Removed || len(g.Shares) != len(b.Shares) {
			t.Fatalf("decoded %+v, want %+v", g, b)
		}
	}
	bad := []*RetireBody{
		{Record: "", Manifest: Hash{1}, Removed: true},
		{Record: "rec-1", Removed: true},
		{Record: "rec-1", Manifest: Hash{1}},
		{Record: "rec-1", Manifest: Hash{1}, Shares: []Hash{{2}, {1}}},
		{Record: "rec-1", Manifest: Hash{1}, Shares: []Hash{{1}, {1}}},
		{Record: "rec-1", Manifest: Hash{1}, Shares: make([]Hash, MaxRetireShares+1)},
	}
	for i, b := range bad {
		enc, err := Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeBody(KindRetire, enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("case %d: decoded a bad retire body: %v", i, err)
		}
	}
	if KindRetire.String() != "retire" {
		t.Fatalf("kind name %q", KindRetire)
	}
}
