package consent

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// A stranger (mallory) writes an "allow" access entry on its own feed with
// a made-up request naming bob, alice's grantee: it is suspicious, not a
// disclosure, and it does not fail the audit.
func TestForgedAccessFromStranger(t *testing.T) {
	w := newAuditWorld(t)
	mallory := testSigner(t, "mallory")
	w.log(newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), t0, nil)
	forged := newRequest(t, mallory, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	forged.Requester = w.bob.ID() // not bob's signature
	e := w.add(mallory, t0.Add(time.Minute), KindAccess, &AccessBody{Request: forged.Encode(), Allow: true,
		Reason: ReasonGranted, Grant: w.grant, OwnerHead: w.view.Head(w.alice.ID())})

	_, _, err := CheckAccess(e, AccessCheck{})
	var se *SuspiciousAccessError
	if !errors.As(err, &se) || se.Reason != SuspectRequest || !errors.Is(err, ErrSuspiciousAccess) || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("CheckAccess = %v, want %s", err, SuspectRequest)
	}
	ds := Disclosures(w.view, w.alice.ID(), time.Time{})
	if len(ds) != 1 || ds[0].Decider != w.dave.ID() {
		t.Fatalf("disclosures = %+v, want dave's only", ds)
	}
	rep := AuditLedger(w.entries)
	if !rep.OK() || rep.Suspicious != 1 || rep.Accesses != 1 || kinds(rep) != "suspicious:" || rep.Findings[0].Suspicion != SuspectRequest {
		t.Fatalf("audit: ok=%v suspicious=%d accesses=%d findings=%s", rep.OK(), rep.Suspicious, rep.Accesses, kinds(rep))
	}
}

// A stranger that replays bob's genuine request in its own "allow" entry
// is caught by the decider check, which only the reader can make.
func TestAccessFromUnknownDecider(t *testing.T) {
	w := newAuditWorld(t)
	mallory := testSigner(t, "mallory")
	r := newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	w.log(r, t0, nil)
	e := w.add(mallory, t0, KindAccess, &AccessBody{Request: r.Encode(), Allow: true,
		Reason: ReasonGranted, Grant: w.grant, OwnerHead: w.view.Head(w.alice.ID())})
	network := AccessCheck{Decider: func(id ID) bool { return id == w.dave.ID() }}
	var se *SuspiciousAccessError
	if _, _, err := CheckAccess(e, network); !errors.As(err, &se) || se.Reason != SuspectDecider {
		t.Fatalf("CheckAccess = %v, want %s", err, SuspectDecider)
	}
	if ds := DisclosuresWith(w.view, w.alice.ID(), time.Time{}, network); len(ds) != 1 || ds[0].Decider != w.dave.ID() {
		t.Fatalf("disclosures = %+v, want dave's only", ds)
	}
	// The owner deciding on its own box is always a decider.
	own := w.add(w.alice, t0, KindAccess, &AccessBody{Request: newRequest(t, w.bob, w.alice.ID(), "rec-1",
		"patient/Observation.rs", "TREAT", t0).Encode(), Allow: true, Reason: ReasonGranted, Grant: w.grant})
	if _, _, err := CheckAccess(own, network); err != nil {
		t.Fatalf("owner as decider: %v", err)
	}
	if rep := AuditLedgerWith(w.entries, network); !rep.OK() || rep.Suspicious != 1 {
		t.Fatalf("audit: ok=%v suspicious=%d findings=%s", rep.OK(), rep.Suspicious, kinds(rep))
	}
}

// One access entry dated 2^62 s: suspicious, out of the disclosures, and
// its time clamped so that it can still be printed as JSON.
func TestAccessTimeOutOfRange(t *testing.T) {
	w := newAuditWorld(t)
	mallory := testSigner(t, "mallory")
	far := time.Unix(1<<62, 0)
	e := w.add(mallory, far, KindAccess, &AccessBody{Request: newRequest(t, w.bob, w.alice.ID(), "rec-1",
		"patient/Observation.rs", "TREAT", t0).Encode(), Allow: true, Reason: ReasonGranted, Grant: w.grant})
	var se *SuspiciousAccessError
	if _, _, err := CheckAccess(e, AccessCheck{}); !errors.As(err, &se) || se.Reason != SuspectTime {
		t.Fatalf("CheckAccess = %v, want %s", err, SuspectTime)
	}
	for _, d := range Disclosures(w.view, w.alice.ID(), time.Time{}) {
		if _, err := json.Marshal(TimeOf(d.Time)); err != nil {
			t.Fatalf("disclosure time: %v", err)
		}
	}
	if ds := Disclosures(w.view, w.alice.ID(), time.Time{}); len(ds) != 0 {
		t.Fatalf("disclosures = %+v, want none", ds)
	}
	if rep := AuditLedger(w.entries); !rep.OK() || rep.Suspicious != 1 {
		t.Fatalf("audit: ok=%v findings=%s", rep.OK(), kinds(rep))
	}
	for _, sec := range []int64{1 << 62, -1 << 62, 0, t0.Unix()} {
		if _, err := json.Marshal(PrintableTime(sec)); err != nil {
			t.Errorf("PrintableTime(%d): %v", sec, err)
		}
	}
	if got := PrintableTime(t0.Unix()); !got.Equal(t0) {
		t.Errorf("PrintableTime(t0) = %v", got)
	}
}

// An entry dated more than AccessClockSkew after the reading time is
// suspicious; within the skew it is not.
func TestAccessFromTheFuture(t *testing.T) {
	w := newAuditWorld(t)
	r := newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	e := w.log(r, t0, nil)
	for _, tc := range []struct {
		now  time.Time
		want Suspicion
	}{
		{t0, ""},
		{t0.Add(-AccessClockSkew), ""},
		{t0.Add(-AccessClockSkew - time.Second), SuspectFuture},
		{time.Time{}, ""},
	} {
		_, _, err := CheckAccess(e, AccessCheck{Now: tc.now})
		var se *SuspiciousAccessError
		got := Suspicion("")
		if errors.As(err, &se) {
			got = se.Reason
		} else if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("now %v: %q, want %q", tc.now, got, tc.want)
		}
	}
}
