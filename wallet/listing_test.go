package wallet

import (
	"context"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// countContactReads counts the reads of the address book until the test ends.
func countContactReads(t *testing.T) *int {
	t.Helper()
	n := new(int)
	testHookReadContacts = func() { *n++ }
	t.Cleanup(func() { testHookReadContacts = nil })
	return n
}

// Listing grants and accesses reads the contact book once, however many
// rows name contacts, and a limit keeps the newest rows, oldest first.
func TestListingsReadContactsOnceAndLimit(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	const n = 5
	var grants []consent.Hash
	var accesses []consent.Hash
	for i := 0; i < n; i++ {
		cw.now = cw.now.Add(time.Minute)
		g, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{cw.record.ID},
			Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"})
		if err != nil {
			t.Fatal(err)
		}
		grants = append(grants, g.ID)
		req, err := bob.NewRequest(alice.ID(), cw.record.ID, "patient/Observation.rs", "TREAT")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.DecideAccess(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	as, err := alice.AccessLog(ctx)
	if err != nil || len(as) != n {
		t.Fatalf("access log: %d entries, %v", len(as), err)
	}
	for _, a := range as {
		accesses = append(accesses, a.Entry)
	}

	reads := countContactReads(t)
	gp, err := alice.ListGrants(ctx, GrantsOptions{})
	if err != nil || len(gp.Grants) != n || gp.Older != 0 {
		t.Fatalf("grants: %+v %v", gp, err)
	}
	for i, g := range gp.Grants {
		if g.ID != grants[i] || g.GranteeName != "Bob" || g.AuthorName != "Alice" {
			t.Fatalf("grant %d = %s %q %q, want %s, oldest first, named", i, g.ID, g.GranteeName, g.AuthorName, grants[i])
		}
	}
	if *reads != 1 {
		t.Fatalf("grants read the contact book %d times for %d rows, want once", *reads, n)
	}
	*reads = 0
	ap, err := alice.ListAccesses(ctx, AccessLogOptions{})
	if err != nil || len(ap.Accesses) != n || ap.More || ap.SetApart != 0 {
		t.Fatalf("accesses: %+v %v", ap, err)
	}
	for _, a := range ap.Accesses {
		if a.RequesterName != "Bob" {
			t.Fatalf("requester name %q", a.RequesterName)
		}
	}
	if *reads != 1 {
		t.Fatalf("the access log read the contact book %d times for %d rows, want once", *reads, n)
	}

	gp, err = alice.ListGrants(ctx, GrantsOptions{Limit: 2})
	if err != nil || len(gp.Grants) != 2 || gp.Older != n-2 || gp.Grants[0].ID != grants[n-2] || gp.Grants[1].ID != grants[n-1] {
		t.Fatalf("grants --limit 2: %+v %v, want the newest two, oldest first", gp, err)
	}
	ap, err = alice.ListAccesses(ctx, AccessLogOptions{Limit: 2})
	if err != nil || len(ap.Accesses) != 2 || !ap.More || ap.Accesses[0].Entry != accesses[n-2] ||
		ap.Accesses[1].Entry != accesses[n-1] || !ap.Since.Equal(ap.Accesses[0].Time) {
		t.Fatalf("log --limit 2: %+v %v, want the newest two, oldest first", ap, err)
	}
	// A limit the log does not reach lists everything, with nothing more.
	ap, err = alice.ListAccesses(ctx, AccessLogOptions{Limit: n})
	if err != nil || len(ap.Accesses) != n || ap.More {
		t.Fatalf("log --limit %d: %d entries, more %v, %v", n, len(ap.Accesses), ap.More, err)
	}
}
