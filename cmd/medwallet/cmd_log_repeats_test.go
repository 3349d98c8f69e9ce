package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/wallet"
)

// addRepeatedDenial adds to the ledger of g's wallet what a peer logs when
// a stranger is denied record rec four times within a minute: the first
// denial, then one summary counting the other three.
func addRepeatedDenial(t *testing.T, g *globalOptions, rec string) {
	t.Helper()
	w, err := g.openWallet()
	if err != nil {
		t.Fatal(err)
	}
	es, err := w.LedgerEntries()
	if err != nil {
		t.Fatal(err)
	}
	v := consent.NewView()
	if err := v.IngestAll(es); err != nil {
		t.Fatal(err)
	}
	signer := func() *consent.KeySigner {
		_, priv, _ := ed25519.GenerateKey(nil)
		s, err := consent.NewKeySigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	peer, stranger := signer(), signer()
	now := w.Now().Add(-time.Minute).Truncate(time.Second)
	decided := func(i int, at time.Time) *consent.AccessBody {
		r, err := consent.SignRequest(stranger, consent.Request{Owner: w.ID(), Record: rec, Scope: "patient/Observation.rs",
			Purpose: "TREAT", Time: at.Unix(), Nonce: bytes.Repeat([]byte{byte(i)}, 16)})
		if err != nil {
			t.Fatal(err)
		}
		d := consent.Decide(v, r, at)
		return &consent.AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant, OwnerHead: v.Head(w.ID())}
	}
	first, err := consent.NewEntry(peer, consent.Head{}, now, consent.KindAccess, decided(1, now))
	if err != nil {
		t.Fatal(err)
	}
	body := decided(4, now.Add(20*time.Second))
	body.Repeats = &consent.Repeats{Count: 3, First: now.Add(5 * time.Second).Unix(), Last: now.Add(20 * time.Second).Unix(), Of: first.Hash()}
	summary, err := consent.NewEntry(peer, first.Head(), now.Add(consent.RepeatWindow), consent.KindAccess, body)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := consent.WriteExport(&buf, []*consent.Entry{first, summary}); err != nil {
		t.Fatal(err)
	}
	if res, err := w.ImportLedger(&buf); err != nil || res.Added != 2 {
		t.Fatalf("import: %+v %v", res, err)
	}
}

// A peer's summary of repeated denials reads "denied ×N" in log and
// audit verify (JSON: repeats), and audit verify stays clean, counting
// every denial.
func TestLogRepeatedDenials(t *testing.T) {
	ctx := context.Background()
	g, out, rec := disclosureFixture(t)
	addRepeatedDenial(t, g, rec)

	g.json = true
	if err := runLog(ctx, logOptions{offline: true, all: true}, g); err != nil {
		t.Fatal(err)
	}
	var as []accessJSON
	if err := json.Unmarshal(out.Bytes(), &as); err != nil || len(as) != 4 {
		t.Fatalf("log: %v\n%s", err, out)
	}
	repeats := map[int]int{}
	for _, a := range as {
		repeats[a.Repeats]++
		if a.Repeats > 1 && (a.Allowed || a.Reason != "wrong-grantee" || a.First == nil || a.Last == nil ||
			a.Last.Sub(*a.First) != 15*time.Second) {
			t.Errorf("summary %+v", a)
		}
	}
	if repeats[1] != 3 || repeats[3] != 1 {
		t.Fatalf("log repeats %v, want three single decisions and one ×3", repeats)
	}

	g.json = false
	out.Reset()
	if err := runLog(ctx, logOptions{offline: true, all: true}, g); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "DENIED ×3"); n != 1 {
		t.Fatalf("log table shows 'DENIED ×3' %d times:\n%s", n, out)
	}

	g.json = true
	out.Reset()
	if err := runAuditVerify(ctx, auditVerifyOptions{offline: true}, g, nil); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	var rep auditJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.OK || len(rep.Findings) != 0 ||
		rep.Accesses != 6 || rep.Denied != 5 || rep.Repeated != 3 || rep.Summaries != 1 {
		t.Fatalf("audit verify: %+v %v", rep, err)
	}
	g.json = false
	out.Reset()
	if err := runAuditVerify(ctx, auditVerifyOptions{offline: true}, g, nil); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if !strings.Contains(out.String(), "denied ×3: repeated denials counted in 1 summary entries") {
		t.Fatalf("audit verify:\n%s", out)
	}
}

// A record that cannot be read because peers rate-limited the requester
// says so in the hint.
func TestHintPeerRefusals(t *testing.T) {
	for _, c := range []struct {
		refusal error
		want    string
	}{
		{shares.ErrRateLimited, "limit how fast"},
		{fmt.Errorf("%w: %w: catching up", shares.ErrRemote, shares.ErrBusy), "busy (catching up"},
	} {
		refused := fmt.Errorf("peer 12D3KooWabc: %w", c.refusal)
		err := &wallet.RecordError{Record: "00112233445566778899aabbccddeeff", Err: &vault.NotEnoughSharesError{K: 3, N: 5,
			Shares: []vault.ShareHealth{{Index: 0, Status: vault.StatusMissing, Detail: refused.Error()}}}}
		for _, e := range []error{err, refused} {
			if _, hint, _ := describe(e); !strings.Contains(hint, c.want) {
				t.Errorf("%v: hint %q, want %q", e, hint, c.want)
			}
		}
	}
}
