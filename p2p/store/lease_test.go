package store

import (
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
)

func TestClassify(t *testing.T) {
	p := Policy{Lease: 10 * time.Hour, Grace: time.Hour}
	t0 := time.Unix(1_800_000_000, 0)
	s1, s2 := vault.ShareID{1}, vault.ShareID{2}
	anchor := consent.Hash{7}
	share := Item{Owner: "o", Record: "r", Share: s1, Created: t0}
	lease := Lease{Renewed: t0.Unix()}
	listed := Lease{Renewed: t0.Unix(), Manifest: anchor, Shares: []vault.ShareID{s2}}
	cases := []struct {
		name   string
		it     Item
		l      Lease
		r      Record
		at     time.Duration
		reason string // "" for none collectable at t0+at
	}{
		{"anchored, leased", share, lease, Record{Known: true, Anchor: anchor}, 5 * time.Hour, ""},
		{"unanchored within grace", share, lease, Record{Known: true}, 59 * time.Minute, ""},
		{"unanchored after grace", share, lease, Record{Known: true}, time.Hour, Orphan},
		{"unanchored, feed unknown", share, lease, Record{}, 5 * time.Hour, ""},
		{"not on the anchored list", share, listed, Record{Known: true, Anchor: anchor}, time.Hour, Orphan},
		{"list of another manifest", share, Lease{Renewed: t0.Unix(), Manifest: consent.Hash{8}, Shares: []vault.ShareID{s2}}, Record{Known: true, Anchor: anchor}, 5 * time.Hour, ""},
		{"expired in grace", share, lease, Record{Known: true, Anchor: anchor}, 10*time.Hour + 59*time.Minute, ""},
		{"expired after grace", share, lease, Record{Known: true, Anchor: anchor}, 11 * time.Hour, Expired},
		{"expiry counts the owner's entries", share, lease, Record{Known: true, Anchor: anchor, Active: t0.Add(5 * time.Hour)}, 11 * time.Hour, ""},
		{"a future entry renews only to now", share, lease, Record{Known: true, Anchor: anchor, Active: t0.Add(100 * time.Hour)}, 0, ""},
		{"retired share", share, lease, Record{Known: true, Anchor: anchor, Retired: map[vault.ShareID]time.Time{s1: t0}}, time.Hour, Superseded},
		{"retired share listed again", share, Lease{Renewed: t0.Unix(), Manifest: anchor, Shares: []vault.ShareID{s1}}, Record{Known: true, Anchor: anchor, Retired: map[vault.ShareID]time.Time{s1: t0}}, 5 * time.Hour, ""},
		{"removed record", share, lease, Record{Known: true, Anchor: anchor, Removed: t0}, time.Hour, Superseded},
		{"removed, feed unknown", share, lease, Record{Anchor: anchor, Removed: t0}, 5 * time.Hour, ""},
		{"own copy not anchored", Item{Owner: "o", Record: "r", Recipient: "o", Own: true, Envelope: consent.Hash{9}}, lease, Record{Known: true, Anchor: anchor}, time.Hour, Orphan},
		{"own copy anchored", Item{Owner: "o", Record: "r", Recipient: "o", Own: true, Envelope: anchor}, lease, Record{Known: true, Anchor: anchor}, 5 * time.Hour, ""},
	}
	for _, c := range cases {
		st := Classify(p, c.it, c.l, c.r, t0.Add(c.at))
		got := ""
		if st.Collectable(t0.Add(c.at)) {
			got = st.Reason
		}
		if got != c.reason {
			t.Errorf("%s: collectable %q, want %q (%+v)", c.name, got, c.reason, st)
		}
	}
	// The future entry: the lease runs from now, not from the entry.
	if st := Classify(p, share, lease, Record{Known: true, Anchor: anchor, Active: t0.Add(100 * time.Hour)}, t0); !st.Expires.Equal(t0.Add(p.Lease)) {
		t.Errorf("expires %v, want %v", st.Expires, t0.Add(p.Lease))
	}
}
