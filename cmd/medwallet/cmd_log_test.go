package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/wallet"
)

// forgeAccesses adds to the ledger of g's wallet two access entries that
// a stranger wrote on its own feed, both "allowed" for record rec of the
// wallet: one with a made-up request naming the wallet's grantee, one
// dated 2^62 s.
func forgeAccesses(t *testing.T, g *globalOptions, rec string) {
	t.Helper()
	w, err := g.openWallet()
	if err != nil {
		t.Fatal(err)
	}
	es, err := w.LedgerEntries()
	if err != nil {
		t.Fatal(err)
	}
	var grant consent.Hash
	var grantee consent.ID
	for _, e := range es {
		if e.Kind == consent.KindGrant {
			b, _ := e.DecodedBody()
			grant, grantee = e.Hash(), b.(*consent.Grant).Grantee
		}
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	mallory, err := consent.NewKeySigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	now := w.Now()
	var head consent.Head
	var forged []*consent.Entry
	for i, at := range []time.Time{now, time.Unix(1<<62, 0)} {
		r, err := consent.SignRequest(mallory, consent.Request{Owner: w.ID(), Record: rec, Scope: "patient/Observation.rs",
			Purpose: "TREAT", Time: now.Unix(), Nonce: bytes.Repeat([]byte{byte(i + 1)}, 16)})
		if err != nil {
			t.Fatal(err)
		}
		r.Requester = grantee // signed by mallory, naming the grantee
		e, err := consent.NewEntry(mallory, head, at, consent.KindAccess, &consent.AccessBody{Request: r.Encode(),
			Allow: true, Reason: consent.ReasonGranted, Grant: grant, OwnerHead: es[len(es)-1].Head()})
		if err != nil {
			t.Fatal(err)
		}
		head = e.Head()
		forged = append(forged, e)
	}
	var buf bytes.Buffer
	if err := consent.WriteExport(&buf, forged); err != nil {
		t.Fatal(err)
	}
	if res, err := w.ImportLedger(&buf); err != nil || res.Added != 2 {
		t.Fatalf("import: %+v %v", res, err)
	}
}

// A stranger's forged access entries are not accesses: log, disclosures
// and audit verify show the real access only, in every format, and
// log --suspicious lists the forged ones with their reason.
func TestLogSuspicious(t *testing.T) {
	ctx := context.Background()
	g, out, rec := disclosureFixture(t)
	forgeAccesses(t, g, rec)
	g.json = true

	out.Reset()
	if err := runLog(ctx, logOptions{offline: true, all: true}, g); err != nil {
		t.Fatal(err)
	}
	var as []accessJSON
	if err := json.Unmarshal(out.Bytes(), &as); err != nil || len(as) != 2 {
		t.Fatalf("log: %v\n%s", err, out)
	}
	for _, a := range as {
		if a.Suspicious || a.Decider == "" || a.RequesterName != "Bob" {
			t.Fatalf("log lists %+v", a)
		}
	}

	out.Reset()
	if err := runLog(ctx, logOptions{offline: true, suspicious: true, all: true}, g); err != nil {
		t.Fatal(err)
	}
	as = nil
	if err := json.Unmarshal(out.Bytes(), &as); err != nil || len(as) != 2 {
		t.Fatalf("log --suspicious: %v\n%s", err, out)
	}
	if !as[0].Suspicious || as[0].SuspiciousReason != "bad-request" || !as[0].Allowed ||
		!as[1].Suspicious || as[1].SuspiciousReason != "time-out-of-range" || as[1].Time.Year() != 9999 {
		t.Fatalf("log --suspicious: %+v", as)
	}

	out.Reset()
	if err := runAuditDisclosures(ctx, disclosuresOptions{format: "json", offline: true}, g); err != nil {
		t.Fatal(err)
	}
	var ds []disclosureJSON
	if err := json.Unmarshal(out.Bytes(), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("disclosures: %v\n%s", err, out)
	}
	for _, format := range []string{"csv", "fhir"} {
		out.Reset()
		if err := runAuditDisclosures(ctx, disclosuresOptions{format: format, offline: true}, g); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out.String(), "Bob"); n != 1 {
			t.Fatalf("disclosures --format %s names Bob %d times:\n%s", format, n, out)
		}
	}

	out.Reset()
	if err := runAuditVerify(ctx, auditVerifyOptions{offline: true}, g, nil); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	var rep auditJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.OK || rep.Suspicious != 2 || rep.Accesses != 2 ||
		len(rep.Findings) != 2 || rep.Findings[0].Kind != "suspicious" {
		t.Fatalf("audit verify: %+v %v", rep, err)
	}

	g.json = false
	out.Reset()
	if err := runAuditVerify(ctx, auditVerifyOptions{offline: true}, g, nil); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if !strings.Contains(out.String(), "2 suspicious access entries set apart") {
		t.Fatalf("audit verify:\n%s", out)
	}
}

// A break-glass entry dated 2^62 s (anyone can name an owner in one) still
// prints as JSON, in emergency ls and in audit verify's unreviewed list.
func TestEmergencyJSONTimeOutOfRange(t *testing.T) {
	var ea wallet.EmergencyAccess
	ea.Time, ea.Until = 1<<62, 1<<62
	if _, err := json.Marshal(newEmergencyJSON(ea)); err != nil {
		t.Fatal(err)
	}
}
