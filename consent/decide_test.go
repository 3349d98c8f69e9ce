package consent

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestDecideTable(t *testing.T) {
	alice, bob, carol := testSigner(t, "alice"), testSigner(t, "bob"), testSigner(t, "carol")
	dave, erin, mallory := testSigner(t, "dave"), testSigner(t, "erin"), testSigner(t, "mallory")
	w := newWorld(t)
	lab := "patient/Observation.rs?category=laboratory"
	g1 := w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{"rec-1"}, Scopes: []string{lab}})
	gExp := w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{"rec-exp"}, Scopes: []string{lab},
		NotBefore: t0.Add(-48 * time.Hour).Unix(), Expires: t0.Add(-24 * time.Hour).Unix()})
	gFut := w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{"rec-fut"}, Scopes: []string{lab},
		NotBefore: t0.Add(24 * time.Hour).Unix()})
	gRev := w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{"rec-rev"}, Scopes: []string{lab}})
	w.add(alice, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: gRev})
	gRev2 := w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{"rec-rev2"}, Scopes: []string{lab}})
	w.add(carol, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: gRev2}) // not carol's to revoke
	gAll := w.grant(alice, Grant{Grantee: erin.ID(), All: true, Scopes: []string{"patient/*.rs"}, Purpose: "HPAYMT"})
	w.grant(carol, Grant{Grantee: bob.ID(), Records: []string{"rec-c"}, Scopes: []string{lab}})
	// An access entry logged by dave carries a nonce that is then used up.
	used := newRequest(t, bob, alice.ID(), "rec-1", lab, "TREAT", t0.Add(-2*time.Minute))
	w.add(dave, t0.Add(-2*time.Minute), KindAccess, &AccessBody{Request: used.Encode(), Allow: true,
		Reason: ReasonGranted, Grant: g1, OwnerHead: w.heads[alice.ID()]})
	// mallory grants bob, then equivocates at seq 2.
	gMal := w.grant(mallory, Grant{Grantee: bob.ID(), Records: []string{"rec-m"}, Scopes: []string{lab}})
	h := w.heads[mallory.ID()]
	m2a, _ := NewEntry(mallory, h, t0, KindAnchor, &AnchorBody{Record: "rec-m", Manifest: HashBytes([]byte("a"))})
	m2b, _ := NewEntry(mallory, h, t0, KindAnchor, &AnchorBody{Record: "rec-m", Manifest: HashBytes([]byte("b"))})
	if _, err := w.view.Ingest(m2a); err != nil {
		t.Fatal(err)
	}
	if _, err := w.view.Ingest(m2b); !errors.Is(err, ErrEquivocation) {
		t.Fatalf("conflicting entry: err = %v, want equivocation", err)
	}

	tampered := newRequest(t, bob, alice.ID(), "rec-1", lab, "TREAT", t0)
	tampered.Record = "rec-rev2"
	window := FreshnessWindow

	cases := []decideCase{
		{"granted", newRequest(t, bob, alice.ID(), "rec-1", lab, "TREAT", t0), ReasonGranted, g1, Hash{}, 0},
		{"granted narrower perms", newRequest(t, bob, alice.ID(), "rec-1", "patient/Observation.r?category=laboratory", "TREAT", t0), ReasonGranted, g1, Hash{}, 0},
		{"granted v1 scope normalised", newRequest(t, erin, alice.ID(), "rec-9", "patient/Observation.read", "HPAYMT", t0), ReasonGranted, gAll, Hash{}, 0},
		{"granted purpose specialisation", newRequest(t, bob, alice.ID(), "rec-1", lab, "ETREAT", t0), ReasonGranted, g1, Hash{}, 0},
		{"granted at window edge", newRequest(t, bob, alice.ID(), "rec-1", lab, "TREAT", t0.Add(-window)), ReasonGranted, g1, Hash{}, 0},
		{"granted despite revoke by non-author", newRequest(t, bob, alice.ID(), "rec-rev2", lab, "TREAT", t0), ReasonGranted, gRev2, Hash{}, 0},
		{"granted all records", newRequest(t, erin, alice.ID(), "anything", "patient/Condition.s", "COVERAGE", t0), ReasonGranted, gAll, Hash{}, 0},
		{"owner reads own record", newRequest(t, alice, alice.ID(), "rec-anything", "patient/*.rs", "PATRQT", t0), ReasonOwner, Hash{}, Hash{}, 0},
		{"owner with an invalid scope", newRequest(t, alice, alice.ID(), "rec-1", "patient/Obs.rs", "PATRQT", t0), ReasonScope, Hash{}, Hash{}, 0},
		{"owner replaying", newRequest(t, alice, alice.ID(), "rec-1", lab, "PATRQT", t0.Add(-window-time.Second)), ReasonReplay, Hash{}, Hash{}, 0},
		{"no-grant", newRequest(t, bob, dave.ID(), "rec-nobody", lab, "TREAT", t0), ReasonNoGrant, Hash{}, Hash{}, 0},
		{"wrong-grantee via all-records grant", newRequest(t, dave, alice.ID(), "rec-nobody", lab, "TREAT", t0), ReasonWrongGrantee, Hash{}, Hash{}, 0},
		{"no-grant other owner's grant", newRequest(t, dave, carol.ID(), "rec-1", lab, "TREAT", t0), ReasonNoGrant, Hash{}, Hash{}, 0},
		{"wrong-grantee", newRequest(t, carol, alice.ID(), "rec-1", lab, "TREAT", t0), ReasonWrongGrantee, Hash{}, Hash{}, 0},
		{"record", newRequest(t, bob, alice.ID(), "rec-2", lab, "TREAT", t0), ReasonRecord, Hash{}, Hash{}, 0},
		{"record granted by non-owner", newRequest(t, bob, alice.ID(), "rec-c", lab, "TREAT", t0), ReasonRecord, Hash{}, Hash{}, 0},
		{"expired", newRequest(t, bob, alice.ID(), "rec-exp", lab, "TREAT", t0), ReasonExpired, gExp, Hash{}, 0},
		{"not-yet-valid", newRequest(t, bob, alice.ID(), "rec-fut", lab, "TREAT", t0), ReasonNotYetValid, gFut, Hash{}, 0},
		{"revoked", newRequest(t, bob, alice.ID(), "rec-rev", lab, "TREAT", t0), ReasonRevoked, gRev, Hash{}, 0},
		{"scope other type", newRequest(t, bob, alice.ID(), "rec-1", "patient/Condition.rs", "TREAT", t0), ReasonScope, g1, Hash{}, 0},
		{"scope missing category", newRequest(t, bob, alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), ReasonScope, g1, Hash{}, 0},
		{"scope more perms", newRequest(t, bob, alice.ID(), "rec-1", "patient/Observation.crs?category=laboratory", "TREAT", t0), ReasonScope, g1, Hash{}, 0},
		{"scope other context", newRequest(t, bob, alice.ID(), "rec-1", "user/Observation.rs?category=laboratory", "TREAT", t0), ReasonScope, g1, Hash{}, 0},
		{"scope invalid", newRequest(t, bob, alice.ID(), "rec-1", "patient/Obs.rs", "TREAT", t0), ReasonScope, Hash{}, Hash{}, 0},
		{"purpose", newRequest(t, bob, alice.ID(), "rec-1", lab, "HPAYMT", t0), ReasonPurpose, g1, Hash{}, 0},
		{"purpose broader than granted", newRequest(t, erin, alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0), ReasonPurpose, gAll, Hash{}, 0},
		{"purpose unknown", newRequest(t, bob, alice.ID(), "rec-1", lab, "NOPE", t0), ReasonPurpose, Hash{}, Hash{}, 0},
		{"bad-signature", tampered, ReasonBadSignature, Hash{}, Hash{}, 0},
		{"equivocating-author owner", newRequest(t, bob, mallory.ID(), "rec-m", lab, "TREAT", t0), ReasonEquivocating, Hash{}, Hash{}, 0},
		{"equivocating-author requester", newRequest(t, mallory, alice.ID(), "rec-1", lab, "TREAT", t0), ReasonEquivocating, Hash{}, Hash{}, 0},
		{"replay nonce", used, ReasonReplay, Hash{}, Hash{}, 0},
		{"replay too old", newRequest(t, bob, alice.ID(), "rec-1", lab, "TREAT", t0.Add(-window-time.Second)), ReasonReplay, Hash{}, Hash{}, 0},
		{"replay from the future", newRequest(t, bob, alice.ID(), "rec-1", lab, "TREAT", t0.Add(window+time.Second)), ReasonReplay, Hash{}, Hash{}, 0},
	}
	_ = gMal
	// Repairs (repair.go): erin may repair rec-1 of alice's.
	gRep := w.add(alice, t0.Add(-time.Hour), KindRepairGrant, &RepairGrantBody{Repairer: erin.ID(), Records: []string{"rec-1"}}).Hash()
	cases = append(cases,
		decideCase{"repair", newRequest(t, erin, alice.ID(), "rec-1", RepairScope, PurposeRepair, t0), ReasonRepair, gRep, Hash{}, 0},
		decideCase{"no-repair-grant", newRequest(t, bob, alice.ID(), "rec-1", RepairScope, PurposeRepair, t0), ReasonNoRepairGrant, Hash{}, Hash{}, 0})
	cases = append(cases, roleCases(t, w, alice)...)
	cases = append(cases, deviceCases(t, w, alice)...)
	seen := map[Reason]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(w.view, c.req, t0)
			allow := c.reason == ReasonGranted || c.reason == ReasonOwner || c.reason == ReasonEmergency || c.reason == ReasonRepair
			if d.Reason != c.reason || d.Allow != allow || d.Grant != c.grant || d.Credential != c.credential || d.Until != c.until {
				t.Fatalf("Decide = %+v, want reason %s grant %s credential %s until %d", d, c.reason, c.grant, c.credential, c.until)
			}
			seen[d.Reason] = true
		})
	}
	for r := range reasonSet {
		if !seen[r] {
			t.Errorf("no case for reason %s", r)
		}
	}
}

// TestDecideAnyOrder is the property that makes Decide a "smart contract":
// replicas that receive the same entries in any order, with gaps filled
// late and equivocations discovered at different times, decide every
// request the same way.
func TestDecideAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	owners := []*KeySigner{testSigner(t, "alice"), testSigner(t, "mallory")}
	grantees := []*KeySigner{testSigner(t, "bob"), testSigner(t, "carol"), testSigner(t, "erin")}
	decider := testSigner(t, "dave")
	records := []string{"rec-1", "rec-2", "rec-3"}
	scopes := []string{"patient/Observation.rs", "patient/Observation.rs?category=laboratory", "patient/*.r", "patient/Condition.rs"}
	purposes := []string{"TREAT", "ETREAT", "HPAYMT"}

	reasons := map[Reason]int{}
	for round := range 20 {
		w := &world{tb: t, view: NewView(), heads: make(map[ID]Head)}
		var grantIDs []Hash
		var requests []*Request
		for range 40 {
			owner := owners[rng.IntN(len(owners))]
			switch rng.IntN(5) {
			case 0, 1, 2:
				g := Grant{
					Grantee: grantees[rng.IntN(len(grantees))].ID(), Scopes: []string{scopes[rng.IntN(len(scopes))]},
					Purpose: purposes[rng.IntN(len(purposes))], NotBefore: t0.Add(-time.Duration(rng.IntN(48)) * time.Hour).Unix(),
				}
				if rng.IntN(4) == 0 {
					g.All = true
				} else {
					g.Records = []string{records[rng.IntN(len(records))]}
				}
				if rng.IntN(3) == 0 {
					g.Expires = t0.Add(time.Duration(rng.IntN(48)-24) * time.Hour).Unix()
					if g.Expires <= g.NotBefore {
						g.Expires = g.NotBefore + 1
					}
				}
				grantIDs = append(grantIDs, w.add(owner, t0.Add(-time.Hour), KindGrant, &g).Hash())
			case 3:
				if len(grantIDs) > 0 {
					w.add(owner, t0.Add(-time.Hour), KindRevoke, &RevokeBody{Grant: grantIDs[rng.IntN(len(grantIDs))]})
				}
			case 4:
				r := newRequest(t, grantees[rng.IntN(len(grantees))], owner.ID(), records[rng.IntN(len(records))],
					scopes[rng.IntN(len(scopes))], purposes[rng.IntN(len(purposes))], t0)
				d := Decide(w.view, r, t0)
				w.add(decider, t0, KindAccess, &AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason,
					Grant: d.Grant, OwnerHead: w.heads[owner.ID()]})
				requests = append(requests, r)
			}
		}
		// In odd rounds mallory equivocates: a second entry at her seq 2.
		if round%2 == 1 && w.heads[owners[1].ID()].Seq >= 2 {
			first := w.view.Feed(owners[1].ID())[0]
			alt, err := NewEntry(owners[1], first.Head(), t0, KindAnchor, &AnchorBody{Record: "rec-x", Manifest: HashBytes([]byte{byte(round)})})
			if err != nil {
				t.Fatal(err)
			}
			w.entries = append(w.entries, alt)
		}
		// Fresh requests to decide, plus the logged ones (now replays).
		for range 30 {
			requests = append(requests, newRequest(t, grantees[rng.IntN(len(grantees))], owners[rng.IntN(len(owners))].ID(),
				records[rng.IntN(len(records))], scopes[rng.IntN(len(scopes))], purposes[rng.IntN(len(purposes))], t0))
		}

		// An honest decider never shows a violation in the audit, whatever
		// else happened (the as-of view holds no more than it knew).
		for _, f := range AuditLedger(w.entries).Findings {
			if f.Kind == FindingViolation {
				t.Fatalf("round %d: honest decision reported as a violation: %+v", round, f)
			}
		}

		var want []Decision
		for p := range 8 {
			v := NewView()
			order := rng.Perm(len(w.entries))
			for _, i := range order {
				if _, err := v.Ingest(w.entries[i]); err != nil && !errors.Is(err, ErrEquivocation) {
					t.Fatal(err)
				}
			}
			if v.Pending() != 0 && round%2 == 0 {
				t.Fatalf("round %d: %d entries still pending after full delivery", round, v.Pending())
			}
			var got []Decision
			for _, r := range requests {
				got = append(got, Decide(v, r, t0))
			}
			if p == 0 {
				want = got
				for _, d := range got {
					reasons[d.Reason]++
				}
				continue
			}
			if !reflect.DeepEqual(got, want) {
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("round %d, order %d: request %d decided %+v, first order decided %+v", round, p, i, got[i], want[i])
					}
				}
			}
		}
	}
	// The property is only worth something if the decisions vary.
	for _, r := range []Reason{ReasonGranted, ReasonReplay, ReasonEquivocating, ReasonScope, ReasonPurpose, ReasonRecord} {
		if reasons[r] == 0 {
			t.Errorf("no decision with reason %s in any round: %v", r, reasons)
		}
	}
}

func TestPurposeCovers(t *testing.T) {
	for _, c := range []struct {
		g, r string
		want bool
	}{
		{"TREAT", "TREAT", true}, {"TREAT", "ETREAT", true}, {"TREAT", "BTG", true},
		{"ETREAT", "TREAT", false}, {"HPAYMT", "COVERAGE", true}, {"HPAYMT", "TREAT", false}, {"TREAT", "NOPE", false},
	} {
		if got := PurposeCovers(c.g, c.r); got != c.want {
			t.Errorf("PurposeCovers(%s, %s) = %v", c.g, c.r, got)
		}
	}
	if _, err := LookupPurpose("treat"); err == nil || !errors.Is(err, ErrUnknownPurpose) {
		t.Errorf("lower-case code accepted: %v", err)
	}
	for _, p := range Purposes {
		if p.Parent != "" {
			if _, ok := purposeIndex[p.Parent]; !ok {
				t.Errorf("%s has unknown parent %s", p.Code, p.Parent)
			}
		}
	}
}
