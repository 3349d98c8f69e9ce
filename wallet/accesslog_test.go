package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/netfile"
)

// A stranger (mallory) writes access entries on its own feed that name
// alice's records: a made-up request naming Bob, Bob's genuine request
// replayed, and one dated 2^62 s. Once they reach alice's ledger, her log,
// her disclosures and her audit show only the real access, and list the
// three apart as suspicious.
func TestAccessLogSetsStrangersApart(t *testing.T) {
	ctx := context.Background()
	cw := newConsentWallets(t)
	alice, bob := cw.alice, cw.bob
	g, err := alice.Grant(ctx, GrantOptions{To: "Bob", Records: []string{cw.record.ID},
		Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := bob.NewRequest(alice.ID(), cw.record.ID, "patient/Observation.rs", "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.DecideAccess(ctx, req); err != nil {
		t.Fatal(err)
	}
	// Alice's network: one peer, not mallory.
	dave := consent.ID("12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq")
	if err := netfile.Write(alice.NetworkPath(), netfile.Network{Version: netfile.Version,
		Peers: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + string(dave)}}); err != nil {
		t.Fatal(err)
	}

	mc := memConfig(t)
	mc.Now = func() time.Time { return cw.now }
	mallory, err := Init(mc, "Mallory", "peer")
	if err != nil {
		t.Fatal(err)
	}
	made, err := mallory.NewRequest(alice.ID(), cw.record.ID, "patient/Observation.rs", "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	made.Requester = bob.ID() // signed by mallory, naming Bob
	var head consent.Head
	alice.withView(t, func(v *consent.View) { head = v.Head(alice.ID()) })
	forge := func(at time.Time, r *consent.Request) {
		l, s, err := mallory.openLedger(true)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := l.Append(s, at, consent.KindAccess, &consent.AccessBody{Request: r.Encode(), Allow: true,
			Reason: consent.ReasonGranted, Grant: g.ID, OwnerHead: head}); err != nil {
			t.Fatal(err)
		}
	}
	forge(cw.now, made)
	forge(cw.now, req)
	forge(time.Unix(1<<62, 0), req)
	var buf bytes.Buffer
	if _, err := mallory.ExportLedger(&buf); err != nil {
		t.Fatal(err)
	}
	if res, err := alice.ImportLedger(&buf); err != nil || res.Added != 4 {
		t.Fatalf("import: %+v %v", res, err)
	}

	as, err := alice.AccessLog(ctx)
	if err != nil || len(as) != 1 || as[0].Decider != alice.ID() || as[0].Suspicion != "" {
		t.Fatalf("access log = %+v %v, want alice's own decision only", as, err)
	}
	sus, err := alice.SuspiciousAccesses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range sus {
		if a.Decider != mallory.ID() {
			t.Errorf("suspicious entry by %s", a.Decider)
		}
		if _, err := json.Marshal(a.Time); err != nil {
			t.Errorf("time of a suspicious entry: %v", err)
		}
		got = append(got, string(a.Suspicion))
	}
	if len(got) != 3 || got[2] != "time-out-of-range" { // oldest first
		t.Fatalf("suspicions = %v", got)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "bad-request,time-out-of-range,unknown-decider" {
		t.Fatalf("suspicions = %v", got)
	}
	ds, err := alice.Disclosures(ctx, time.Time{})
	if err != nil || len(ds) != 1 || ds[0].Decider != alice.ID() {
		t.Fatalf("disclosures = %+v %v", ds, err)
	}
	rep, err := alice.AuditLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := AuditFailure(rep); err != nil || rep.Suspicious != 3 || rep.Accesses != 1 {
		t.Fatalf("audit: %v, %d suspicious, %d accesses, findings %+v", err, rep.Suspicious, rep.Accesses, rep.Findings)
	}
}

func (w *Wallet) withView(t *testing.T, f func(*consent.View)) {
	t.Helper()
	l, _, err := w.openLedger(false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.View(f)
}
