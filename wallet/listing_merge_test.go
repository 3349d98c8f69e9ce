package wallet

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// A wallet's grant listing merges the grants it made with those made to
// it, by time: a page of the newest N holds both, and counts the older.
func TestListGrantsMergesMadeAndReceived(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	addContact(t, bob, "Alice", alice)
	bobRec, err := bob.AddRecord(ctx, strings.NewReader(`{"resourceType":"Bundle"}`), AddRecordOptions{Label: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	var want []consent.Hash // every grant, oldest first
	var given []bool        // made by bob
	for i := range 7 {
		cw.now = cw.now.Add(time.Minute)
		var g GrantInfo
		if i%3 == 2 {
			g, err = bob.Grant(ctx, GrantOptions{To: "Alice", Records: []string{bobRec.ID}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
		} else {
			g, err = alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{cw.record.ID}, Scopes: []string{"patient/*.rs"}, Purpose: "TREAT"})
		}
		if err != nil {
			t.Fatal(err)
		}
		want, given = append(want, g.ID), append(given, i%3 == 2)
	}
	var buf bytes.Buffer
	if _, err := alice.ExportLedger(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ImportLedger(&buf); err != nil {
		t.Fatal(err)
	}
	// The inbox holds the grants made to bob, oldest first.
	in, err := bob.Inbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var received []consent.Hash
	for i, id := range want {
		if !given[i] {
			received = append(received, id)
		}
	}
	if len(in) != len(received) {
		t.Fatalf("inbox: %d grants, want %d", len(in), len(received))
	}
	for i, g := range in {
		if g.ID != received[i] || g.Given {
			t.Fatalf("inbox grant %d is %s, want %s", i, g.ID, received[i])
		}
	}
	for _, limit := range []int{0, 1, 2, 3, 6, 7, 8} {
		p, err := bob.ListGrants(ctx, GrantsOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		n := len(want)
		if limit > 0 && limit < n {
			n = limit
		}
		if len(p.Grants) != n || p.Older != len(want)-n {
			t.Fatalf("limit %d: %d grants and %d older, want %d and %d", limit, len(p.Grants), p.Older, n, len(want)-n)
		}
		for i, g := range p.Grants {
			j := len(want) - n + i
			if g.ID != want[j] || g.Given != given[j] {
				t.Fatalf("limit %d: grant %d is %s (given %v), want %s (given %v)", limit, i, g.ID, g.Given, want[j], given[j])
			}
		}
	}
}
