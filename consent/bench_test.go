package consent

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func benchFeed(b *testing.B, kind Kind, n int) (ID, []*Entry) {
	alice, bob := testSigner(b, "alice"), testSigner(b, "bob")
	var es []*Entry
	var head Head
	for i := range n {
		var body any = &AnchorBody{Record: fmt.Sprintf("rec-%d", i), Manifest: HashBytes([]byte{byte(i)})}
		if kind == KindGrant {
			body = &Grant{Grantee: bob.ID(), Records: []string{fmt.Sprintf("rec-%d", i)},
				Scopes: []string{"patient/Observation.rs?category=laboratory"}, Purpose: "TREAT", NotBefore: t0.Unix(),
				Keys: []WrappedKey{{Record: fmt.Sprintf("rec-%d", i), Key: make([]byte, 200)}}}
		}
		e, err := NewEntry(alice, head, t0, kind, body)
		if err != nil {
			b.Fatal(err)
		}
		es = append(es, e)
		head = e.Head()
	}
	return alice.ID(), es
}

// BenchmarkFeedVerify compares verifying a whole feed (decode checks,
// canonical re-encoding, hashing, chaining, signatures) with raw
// crypto/ed25519 verification of the same signed messages, in one run.
// Compare the entries/s metrics of the sub-benchmarks. Every
// sub-benchmark gets the same input (the same entries, built before
// b.Run) and the same warm-up (one untimed pass, so that no case alone
// pays first-use costs such as Ed25519's lazily built tables).
func BenchmarkFeedVerify(b *testing.B) {
	const n = 1000
	for _, kind := range []Kind{KindAnchor, KindGrant} {
		author, es := benchFeed(b, kind, n)
		pub, _ := author.PublicKey()
		msgs := make([][]byte, n)
		for i, e := range es {
			msgs[i] = e.SignedMessage()
		}
		run := func(name string, f func() error) {
			b.Run(kind.String()+"/"+name, func(b *testing.B) {
				if err := f(); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if err := f(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
			})
		}
		run("raw-ed25519", func() error {
			for i, e := range es {
				if !ed25519.Verify(pub, msgs[i], e.Sig) {
					return errors.New("bad signature")
				}
			}
			return nil
		})
		run("VerifyFeed", func() error {
			_, err := VerifyFeed(author, es)
			return err
		})
		run("View.Ingest", func() error {
			v := NewView()
			for _, e := range es {
				if _, err := v.Ingest(e); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// decideView builds a view with 10,000 grants from alice (to 100
// grantees, 1,000 records) and 10,000 revocations (of every other grant
// and of 5,000 grants by carol).
func decideView(b *testing.B) (*View, *KeySigner, ID) {
	alice, carol := testSigner(b, "alice"), testSigner(b, "carol")
	grantees := make([]*KeySigner, 100)
	for i := range grantees {
		grantees[i] = testSigner(b, fmt.Sprintf("grantee-%d", i))
	}
	v := NewView()
	heads := map[ID]Head{}
	add := func(s *KeySigner, kind Kind, body any) Hash {
		e, err := NewEntry(s, heads[s.ID()], t0.Add(-time.Hour), kind, body)
		if err != nil {
			b.Fatal(err)
		}
		heads[s.ID()] = e.Head()
		if _, err := v.Ingest(e); err != nil {
			b.Fatal(err)
		}
		return e.Hash()
	}
	var ids []Hash
	for i := range 10000 {
		ids = append(ids, add(alice, KindGrant, &Grant{Grantee: grantees[i%100].ID(), Records: []string{fmt.Sprintf("rec-%d", i%1000)},
			Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: t0.Add(-2 * time.Hour).Unix()}))
	}
	for i := 0; i < 10000; i += 2 {
		add(alice, KindRevoke, &RevokeBody{Grant: ids[i]})
	}
	for i := range 5000 {
		add(carol, KindGrant, &Grant{Grantee: grantees[i%100].ID(), Records: []string{fmt.Sprintf("rec-%d", i%1000)},
			Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT", NotBefore: t0.Add(-2 * time.Hour).Unix()})
	}
	for i := 1; i < 10000; i += 2 {
		add(carol, KindRevoke, &RevokeBody{Grant: ids[i]}) // not carol's: no effect
	}
	return v, grantees[1], alice.ID()
}

// BenchmarkDecide measures one decision with 10,000 grants and 10,000
// revocations in the view. "policy" excludes the requester's signature
// check (one Ed25519 verification), which dominates "full".
func BenchmarkDecide(b *testing.B) {
	v, grantee, owner := decideView(b)
	if n := len(v.Grants()); n != 15000 {
		b.Fatalf("%d grants", n)
	}
	cases := map[string]*Request{
		"allow":  newRequest(b, grantee, owner, "rec-1", "patient/Observation.r", "TREAT", t0),
		"scope":  newRequest(b, grantee, owner, "rec-1", "patient/Condition.r", "TREAT", t0),
		"record": newRequest(b, grantee, owner, "rec-2", "patient/Observation.r", "TREAT", t0),
	}
	for name, r := range cases {
		d := Decide(v, r, t0)
		if (name == "allow") != d.Allow {
			b.Fatalf("%s: %+v", name, d)
		}
		b.Run(name+"/policy", func(b *testing.B) {
			for b.Loop() {
				decide(v, r, t0)
			}
		})
		b.Run(name+"/full", func(b *testing.B) {
			for b.Loop() {
				Decide(v, r, t0)
			}
		})
	}
}

// BenchmarkAuditLedger audits a ledger of 200 grants and 2,000 logged
// accesses by one peer (each access re-decided as of its entry).
func BenchmarkAuditLedger(b *testing.B) {
	alice, bob, dave := testSigner(b, "alice"), testSigner(b, "bob"), testSigner(b, "dave")
	w := newWorld(b)
	for i := range 200 {
		w.grant(alice, Grant{Grantee: bob.ID(), Records: []string{fmt.Sprintf("rec-%d", i)}, Scopes: []string{"patient/Observation.rs"}})
	}
	for i := range 2000 {
		r := newRequest(b, bob, alice.ID(), fmt.Sprintf("rec-%d", i%400), "patient/Observation.rs", "TREAT", t0)
		d := Decide(w.view, r, t0)
		w.add(dave, t0, KindAccess, &AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant, OwnerHead: w.view.Head(alice.ID())})
	}
	for b.Loop() {
		rep := AuditLedger(w.entries)
		if !rep.OK() || rep.Accesses != 2000 || rep.Allowed != 1000 {
			b.Fatalf("%+v", rep)
		}
	}
	b.ReportMetric(float64(b.N*len(w.entries))/b.Elapsed().Seconds(), "entries/s")
}

// longHistoryView builds a view in which alice granted bob rec-1 and
// revoked it again n times, then granted it once more (live). Entries are
// built unsigned and ingested as verified: the benchmark measures the
// indexes, not signatures.
func longHistoryView(b *testing.B, n int) (*View, *KeySigner, ID) {
	alice, bob := testSigner(b, "alice"), testSigner(b, "bob")
	v := NewView()
	var head Head
	at := t0.Add(-time.Hour).Unix()
	add := func(kind Kind, body any) Hash {
		e := &Entry{Author: alice.ID(), Seq: head.Seq + 1, Prev: head.Hash, Time: at, Kind: kind}
		var err error
		if e.Body, err = Marshal(body); err != nil {
			b.Fatal(err)
		}
		h := e.Hash()
		if _, err := v.ingestVerified(e, h); err != nil {
			b.Fatal(err)
		}
		head = Head{Seq: e.Seq, Hash: h, Time: e.Time}
		return h
	}
	g := Grant{Grantee: bob.ID(), Records: []string{"rec-1"}, Scopes: []string{"patient/Observation.rs"}, Purpose: "TREAT",
		NotBefore: t0.Add(-2 * time.Hour).Unix()}
	for i := range n {
		g.Keys = []WrappedKey{{Record: "rec-1", Key: []byte(fmt.Sprint(i))}}
		add(KindRevoke, &RevokeBody{Grant: add(KindGrant, &g)})
	}
	g.Keys = []WrappedKey{{Record: "rec-1", Key: []byte("live")}}
	add(KindGrant, &g)
	return v, bob, alice.ID()
}

// BenchmarkDecideLongHistory measures one decision on a key whose history
// holds n revoked grants and one live grant: the cost must not grow with n.
// "build" is the cost per grant+revoke pair of building the view.
func BenchmarkDecideLongHistory(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		var v *View
		var bob *KeySigner
		var alice ID
		b.Run(fmt.Sprintf("history=%d/build", n), func(b *testing.B) {
			for b.Loop() {
				v, bob, alice = longHistoryView(b, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pair")
		})
		if v == nil {
			continue
		}
		r := newRequest(b, bob, alice, "rec-1", "patient/Observation.r", "TREAT", t0)
		if d := decide(v, r, t0); !d.Allow {
			b.Fatalf("%+v", d)
		}
		b.Run(fmt.Sprintf("history=%d/decide", n), func(b *testing.B) {
			for b.Loop() {
				decide(v, r, t0)
			}
		})
	}
}

// auditLedger builds the ledger of the table: one patient (alice)
// grants one clinician (bob) a record, bob reads it three times through a
// peer (dave), alice revokes the grant and bob is denied once; repeated
// until the ledger holds about n entries. The logged decisions are what
// Decide gives (computed here without Decide, so that building the ledger
// does not depend on the code measured).
func auditLedger(b *testing.B, n int) []*Entry {
	alice, bob, dave := testSigner(b, "alice"), testSigner(b, "bob"), testSigner(b, "dave")
	heads := map[ID]Head{}
	var es []*Entry
	at := t0
	add := func(s Signer, kind Kind, body any) *Entry {
		e, err := NewEntry(s, heads[s.ID()], at, kind, body)
		if err != nil {
			b.Fatal(err)
		}
		heads[s.ID()] = e.Head()
		es = append(es, e)
		return e
	}
	var first Hash // smallest grant ID so far: the grant a revoked deny names
	access := func(g Hash, allow bool) {
		at = at.Add(time.Second)
		r := newRequest(b, bob, alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", at)
		body := &AccessBody{Request: r.Encode(), Allow: allow, Reason: ReasonGranted, Grant: g, OwnerHead: heads[alice.ID()]}
		if !allow {
			body.Reason, body.Grant = ReasonRevoked, first
		}
		add(dave, KindAccess, body)
	}
	for i := 0; len(es) < n; i++ {
		at = at.Add(time.Second)
		g := add(alice, KindGrant, &Grant{Grantee: bob.ID(), Records: []string{"rec-1"}, Scopes: []string{"patient/Observation.rs"},
			Purpose: "TREAT", NotBefore: t0.Unix(), Keys: []WrappedKey{{Record: "rec-1", Key: make([]byte, 200)}}}).Hash()
		if i == 0 || string(g[:]) < string(first[:]) {
			first = g
		}
		for range 3 {
			access(g, true)
		}
		at = at.Add(time.Second)
		add(alice, KindRevoke, &RevokeBody{Grant: g})
		access(Hash{}, false)
	}
	return es
}

// BenchmarkAuditLedgerHistory audits the ledger of the table
// (auditLedger) at 1,000, 10,000 and 100,000 entries.
func BenchmarkAuditLedgerHistory(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			es := auditLedger(b, n)
			runtime.GC()
			cpu0 := cpuTime()
			for b.Loop() {
				rep := AuditLedger(es)
				if !rep.OK() || len(rep.Findings) != 0 || rep.Accesses != len(es)/6*4 {
					b.Fatalf("%d findings, %d accesses", len(rep.Findings), rep.Accesses)
				}
			}
			// CPU seconds, not wall time: the machine may be shared.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-sys-MiB")
		})
	}
}

// cpuTime is the CPU time (user and system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
