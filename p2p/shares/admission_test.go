package shares

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/store"
)

// untouched fails the test if the put read any of it.
type untouched struct{ t *testing.T }

func (u untouched) Read([]byte) (int, error) {
	u.t.Error("a refused put read the share")
	return 0, io.EOF
}

// Refusals at admission come back typed, before the client sends a byte
// of the share, so that it can send the share to another peer.
func TestPutAdmissionRefusals(t *testing.T) {
	tests := []struct {
		name   string
		limits store.Limits
		under  bool // the first put is made under the limits
		want   error
	}{
		{"not on the allowlist", store.Limits{Allowlist: map[consent.ID]bool{"12D3KooWFuPHHvpowyVT5GASzZdv3zGLdSut6RU9HKdZryRTKzoj": true}}, false, store.ErrNotAllowed},
		{"disk at the watermark", store.Limits{MinFree: 1 << 20, FreeSpace: func() (int64, error) { return 1 << 19, nil }}, false, store.ErrStorageFull},
		{"quota used up", store.Limits{OwnerObjects: 1}, false, store.ErrQuota},
		{"put rate", store.Limits{PutRate: 0.001, PutBurst: 1}, true, store.ErrPutRate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// One share, then the stranger is refused.
			if tc.under {
				f.st.SetLimits(tc.limits)
			}
			if _, err := Put(ctx, f.stranger.h, f.peer.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, []byte("first")))); err != nil {
				t.Fatal(err)
			}
			if !tc.under {
				f.st.SetLimits(tc.limits)
			}
			_, err := Put(ctx, f.stranger.h, f.peer.h.ID(), f.record, untouched{t})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// A share that crosses its owner's quota while it streams is refused at
// once with the quota's code (not after an idle timeout), nothing of it
// stays, and the owner's earlier share is still served.
func TestPutQuotaMidStream(t *testing.T) {
	f := newFixture(t)
	big := make([]byte, 16<<20)
	rand.Read(big)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := fakeShare(t, f.record, []byte("the earlier share"))
	id, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	f.st.SetLimits(store.Limits{OwnerBytes: 4 << 20})
	_, err = Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(fakeShare(t, f.record, big)))
	if !errors.Is(err, store.ErrQuota) {
		t.Fatalf("got %v, want store.ErrQuota", err)
	}
	u := f.st.Usage()
	if u.Total.Shares != 1 || u.Total.ShareBytes != int64(len(first)) {
		t.Fatalf("usage after the refused put: %+v", u.Total)
	}
	rc, err := Get(ctx, f.patient.h, f.peer.h.ID(), id, f.request(t, f.patient, "patient/*.rs", "PATRQT"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, rc), first) {
		t.Fatal("the earlier share changed")
	}
}

// Below the free-space watermark the peer takes no share, but still
// decides, logs (appends an access entry to its feed) and serves.
func TestWatermarkKeepsLogging(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := fakeShare(t, f.record, []byte("ciphertext"))
	id, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	f.st.SetLimits(store.Limits{MinFree: 256 << 20, FreeSpace: func() (int64, error) { return 1 << 20, nil }})
	if _, err := Put(ctx, f.patient.h, f.peer.h.ID(), f.record, untouched{t}); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("put below the watermark: %v, want store.ErrStorageFull", err)
	}
	before := len(f.peerFeed())
	rc, err := Get(ctx, f.patient.h, f.peer.h.ID(), id, f.request(t, f.patient, "patient/*.rs", "PATRQT"))
	if err != nil {
		t.Fatalf("a read below the watermark: %v", err)
	}
	if !bytes.Equal(readAll(t, rc), data) {
		t.Fatal("share changed")
	}
	if a := f.lastAccess(t); !a.Allow {
		t.Fatalf("logged %+v", a)
	}
	after := len(f.peerFeed())
	if after != before+1 {
		t.Fatalf("the peer's feed went from seq %d to %d, want one access entry more", before, after)
	}
}
