package consent

import (
	"errors"
	"testing"
	"time"
)

// A summary of repeated denials is re-run at the time its request was
// decided, counts every denial, and must name an earlier denial of the
// same request by its decider.
func TestAuditRepeatedDenials(t *testing.T) {
	w := newAuditWorld(t)
	// Bob's grant on rec-2 starts at t0+30s: denied (not-yet-valid) before.
	w.world.grant(w.alice, Grant{Grantee: w.bob.ID(), Records: []string{"rec-2"},
		Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: t0.Add(30 * time.Second).Unix()})
	req := func(at time.Time) *Request {
		return newRequest(t, w.bob, w.alice.ID(), "rec-2", "patient/Observation.rs", "TREAT", at)
	}
	first := w.log(req(t0), t0, nil)
	if b, _ := first.DecodedBody(); b.(*AccessBody).Reason != ReasonNotYetValid {
		t.Fatalf("first denial: %s", b.(*AccessBody).Reason)
	}
	// Repeats at t0+5s .. t0+20s, the last carried by a summary written
	// at t0+60s, when the grant has started.
	summary := func(r Repeats) *Entry {
		last := req(TimeOf(r.Last))
		d := Decide(w.view, last, TimeOf(r.Last))
		return w.add(w.dave, t0.Add(time.Minute), KindAccess, &AccessBody{Request: last.Encode(), Reason: d.Reason,
			Grant: d.Grant, OwnerHead: w.view.Head(w.alice.ID()), Repeats: &r})
	}
	summary(Repeats{Count: 4, First: t0.Add(5 * time.Second).Unix(), Last: t0.Add(20 * time.Second).Unix(), Of: first.Hash()})

	rep := AuditLedger(w.entries)
	if !rep.OK() || len(rep.Findings) != 0 {
		t.Fatalf("audit: %s", kinds(rep))
	}
	if rep.Denied != 5 || rep.Accesses != 5 || rep.Repeated != 4 || rep.Summaries != 1 {
		t.Fatalf("audit counted %d accesses, %d denied, %d repeated in %d summaries; want 5, 5, 4, 1",
			rep.Accesses, rep.Denied, rep.Repeated, rep.Summaries)
	}

	// A summary naming no matching earlier denial, or counting outside
	// its window, is a mismatch: informational, the audit holds.
	other := w.log(newRequest(t, w.carol, w.alice.ID(), "rec-2", "patient/Observation.rs", "TREAT", t0.Add(time.Minute)), t0.Add(time.Minute), nil)
	summary(Repeats{Count: 2, First: t0.Add(5 * time.Second).Unix(), Last: t0.Add(20 * time.Second).Unix(), Of: other.Hash()})
	summary(Repeats{Count: 2, First: t0.Add(-5 * time.Second).Unix(), Last: t0.Add(20 * time.Second).Unix(), Of: first.Hash()})
	rep = AuditLedger(w.entries)
	if !rep.OK() || kinds(rep) != "mismatch:,mismatch:" {
		t.Fatalf("audit: %s", kinds(rep))
	}
}

func TestRepeatsValidation(t *testing.T) {
	w := newAuditWorld(t)
	r := newRequest(t, w.bob, w.alice.ID(), "rec-9", "patient/Observation.rs", "TREAT", t0)
	ok := Repeats{Count: 2, First: t0.Unix(), Last: t0.Unix(), Of: Hash{1}}
	for name, tc := range map[string]struct {
		allow bool
		r     Repeats
	}{
		"on an allow":    {true, ok},
		"no count":       {false, Repeats{First: ok.First, Last: ok.Last, Of: ok.Of}},
		"times reversed": {false, Repeats{Count: 2, First: ok.Last + 1, Last: ok.Last, Of: ok.Of}},
		"no entry":       {false, Repeats{Count: 2, First: ok.First, Last: ok.Last}},
	} {
		reason, grant := ReasonNoGrant, Hash{}
		if tc.allow {
			reason, grant = ReasonGranted, Hash{2}
		}
		b, err := Marshal(&AccessBody{Request: r.Encode(), Allow: tc.allow, Reason: reason, Grant: grant, Repeats: &tc.r})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeBody(KindAccess, b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}

	// Repeats that end after the entry are a suspicious time.
	late := ok
	late.Last = t0.Add(time.Hour).Unix()
	e := w.add(w.dave, t0, KindAccess, &AccessBody{Request: r.Encode(), Reason: ReasonNoGrant, Repeats: &late})
	var se *SuspiciousAccessError
	if _, _, err := CheckAccess(e, AccessCheck{}); !errors.As(err, &se) || se.Reason != SuspectTime {
		t.Fatalf("repeats after the entry: %v", err)
	}
	// An entry without repeats encodes as before: key 11 absent.
	b, _ := Marshal(&AccessBody{Request: r.Encode(), Reason: ReasonNoGrant})
	var m map[int]any
	if err := Unmarshal(b, &m); err != nil || m[11] != nil {
		t.Fatalf("plain access body has key 11: %v %v", m[11], err)
	}
}
