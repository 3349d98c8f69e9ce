package consent

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// richLedger is a random ledger (decide_prop_test.go: grants, revocations,
// credentials, break-glass, accesses, equivocations logged and handed)
// with the kinds randLedger does not write: identities, anchors, serve
// entries, sub-feeds (their links and access entries) and reviews.
func richLedger(t *testing.T, seed uint64, steps int) *randLedger {
	t.Helper()
	l := newRandLedger(t, seed)
	for i := range steps {
		l.step()
		if i%8 == 0 {
			l.otherKinds()
		}
		if i%8 == 4 {
			l.shlKinds() // shl_test.go
		}
		if i%16 == 10 {
			l.ageKeyKinds() // agekey_test.go
		}
	}
	return l
}

func (l *randLedger) otherKinds() {
	o := pick(l, l.owners)
	switch l.rng.IntN(7) {
	case 0:
		l.add(o, KindIdentity, &IdentityBody{AgeRecipient: fmt.Sprint("age1owner", l.rng.IntN(3)), Role: "patient"})
	case 1:
		l.add(o, KindAnchor, &AnchorBody{Record: pick(l, []string{"rec-1", "rec-2"}), Manifest: HashBytes([]byte(fmt.Sprint(l.rng.Uint64())))})
	case 2:
		peers := []ID{l.peer.ID(), pick(l, l.people).ID()}
		slices.Sort(peers)
		peers = slices.Compact(peers)
		l.add(o, KindServe, &ServeBody{Peers: peers})
	case 3:
		// The peer decides through its sub-feed about the owner.
		sf, err := NewSubFeed(l.peer, o.ID())
		if err != nil {
			l.tb.Fatal(err)
		}
		if l.head(sf.ID()).Seq == 0 {
			l.add(sf, KindLink, sf.Link())
		}
		r := l.request(l.at)
		d := Decide(l.view, r, l.at)
		body := AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant,
			OwnerHead: l.head(r.Owner), Issuer: d.Issuer, Credential: d.Credential, Until: d.Until}
		if !r.BreakGlass.IsZero() {
			h := l.head(r.Requester)
			body.RequesterHead = &h
		}
		if d.Issuer != "" {
			h := l.head(d.Issuer)
			body.IssuerHead = &h
		}
		l.add(sf, KindAccess, &body)
		l.requests = append(l.requests, r)
	case 5: // retire.go
		l.add(o, KindRetire, &RetireBody{Record: pick(l, []string{"rec-1", "rec-2"}), Manifest: HashBytes([]byte(fmt.Sprint(l.rng.Uint64()))), Removed: true})
	case 4:
		if len(l.bgs) == 0 {
			return
		}
		bg := pick(l, l.bgs)
		b, _ := l.view.BreakGlass(bg)
		by := o
		if l.rng.IntN(3) > 0 {
			by = l.signerOf(b.Owner) // mostly the owner the entry names
		}
		l.add(by, KindReview, &ReviewBody{Access: bg, Outcome: pick(l, []string{ReviewOK, ReviewDispute}), Note: []byte("note")})
	case 6: // guardian_test.go; twice, so that approvals find a recovery to approve
		l.guardianKinds(o)
		l.guardianKinds(o)
	}
	if l.rrng.IntN(3) == 0 {
		l.repair()
	}
}

func mustEncodeState(t *testing.T, v *View) []byte {
	t.Helper()
	b, err := EncodeState(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStateRoundTrip: a view restored from the state of v answers every
// question as v does, and its state encodes to the same bytes; and so
// does one restored from a state saved again after more entries (only
// what changed is written).
func TestStateRoundTrip(t *testing.T) {
	seeds, steps := 8, 200
	if testing.Short() {
		seeds = 4
	}
	kinds := map[Kind]int{}
	for seed := range uint64(seeds) {
		l := richLedger(t, seed, steps)
		for _, e := range l.entries {
			kinds[e.Kind]++
		}
		b := mustEncodeState(t, l.view)
		var env stateEnvelope // written by hand: it is canonical CBOR all the same
		if err := Unmarshal(b, &env); err != nil || env.Version != StateVersion {
			t.Fatalf("seed %d: envelope: %v", seed, err)
		}
		r, ms := restored(t, l.view)
		if again := mustEncodeState(t, r); !bytes.Equal(again, b) {
			diffStates(t, again, b)
			t.Fatalf("seed %d: the restored view's state differs (%d bytes, want %d)", seed, len(again), len(b))
		}
		sameAnswers(t, l, l.view, r)

		// More entries, ingested by both views; r saves what changed.
		r, err := restoreFrom(ms, l.view.store)
		if err != nil {
			t.Fatal(err)
		}
		ne, nx := len(l.entries), len(l.extra)
		for i := range 40 {
			l.step()
			if i%8 == 0 {
				l.otherKinds()
			}
		}
		for _, e := range append(slices.Clone(l.entries[ne:]), l.extra[nx:]...) {
			acc, err := r.Ingest(e)
			r.stored(acc) // l.view wrote them to the store
			if err != nil && !errors.Is(err, ErrEquivocation) {
				t.Fatal(err)
			}
		}
		if err := r.saveTo(ms, r.count()); err != nil {
			t.Fatal(err)
		}
		if ms.puts > 4*(len(l.entries)-ne+len(l.extra)-nx)+2*len(r.feeds)+1 {
			t.Fatalf("seed %d: an incremental save wrote %d keys for %d entries", seed, ms.puts, len(l.entries)-ne)
		}
		r2, err := restoreFrom(ms, l.view.store)
		if err != nil {
			t.Fatal(err)
		}
		want := mustEncodeState(t, l.view)
		if got := mustEncodeState(t, r2); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: the state saved again differs (%d bytes, want %d)", seed, len(got), len(want))
		}
		sameAnswers(t, l, l.view, r2)
	}
	for k := range kindNames {
		if kinds[k] == 0 {
			t.Errorf("no %s entry in the generated ledgers", k)
		}
	}
}

// sameAnswers asks both views every question the package answers from a
// view, about every party, record and grant of l.
func sameAnswers(t *testing.T, l *randLedger, want, got *View) {
	t.Helper()
	fail := func(what string, g, w any) {
		t.Helper()
		t.Fatalf("%s: restored %v, want %v", what, g, w)
	}
	eq := func(what string, g, w any) {
		t.Helper()
		if !reflect.DeepEqual(g, w) {
			fail(what, g, w)
		}
	}
	eq("authors", got.Authors(), want.Authors())
	eq("pending", got.Pending(), want.Pending())
	var ids []ID
	for _, a := range want.Authors() {
		ids = append(ids, a)
		eq("head "+a.Short(), got.Head(a), want.Head(a))
		for seq := uint64(0); seq <= want.Head(a).Seq+1; seq++ {
			gh, gok := got.HashAt(a, seq)
			wh, wok := want.HashAt(a, seq)
			if gh != wh || gok != wok {
				fail(fmt.Sprintf("hash %s#%d", a.Short(), seq), gh, wh)
			}
		}
	}
	for _, e := range append(slices.Clone(l.entries), l.extra...) {
		ge, gok := got.Entry(e.Hash())
		we, wok := want.Entry(e.Hash())
		if gok != wok || gok && !bytes.Equal(ge.Encode(), we.Encode()) {
			fail("entry "+e.Hash().String(), gok, wok)
		}
	}
	for _, x := range [][]*KeySigner{l.people, l.owners, l.issuers} {
		for _, s := range x {
			ids = append(ids, s.ID())
		}
	}
	for _, rs := range l.roleIDs {
		ids = append(ids, rs...)
	}
	sortedIDs := func(xs []ID) []ID { xs = slices.Clone(xs); slices.Sort(xs); return xs }
	for _, id := range ids {
		eq("equivocating "+id.Short(), got.Equivocating(id), want.Equivocating(id))
		gp, _ := got.Proof(id)
		wp, _ := want.Proof(id)
		if (gp == nil) != (wp == nil) || gp != nil && (!bytes.Equal(gp.A, wp.A) || !bytes.Equal(gp.B, wp.B) || gp.Author() != wp.Author() || gp.Seq() != wp.Seq()) {
			fail("proof "+id.Short(), gp, wp)
		}
		eq("proof logs "+id.Short(), got.ProofLogs(id), want.ProofLogs(id))
		gi, gok := got.Identity(id)
		wi, wok := want.Identity(id)
		eq("identity "+id.Short(), fmt.Sprint(gok, gi), fmt.Sprint(wok, wi))
		gk, gok := got.AgeKey(id)
		wk, wok := want.AgeKey(id)
		eq("age key "+id.Short(), fmt.Sprint(gok, gk), fmt.Sprint(wok, wk))
		eq("age recipient "+id.Short(), got.AgeRecipient(id), want.AgeRecipient(id))
		for _, rec := range []string{"rec-1", "rec-2", "fork"} {
			ga, gok := got.Anchor(id, rec)
			wa, wok := want.Anchor(id, rec)
			eq("anchor "+id.Short(), fmt.Sprint(gok, ga), fmt.Sprint(wok, wa))
		}
		eq("credentials of "+id.Short(), got.CredentialsOf(id), want.CredentialsOf(id))
		eq("grantors of "+id.Short(), sortedIDs(got.Grantors(id)), sortedIDs(want.Grantors(id)))
		eq("serving "+id.Short(), got.ServingPeers(id), want.ServingPeers(id))
		eq("sub-feeds about "+id.Short(), got.SubFeeds(id), want.SubFeeds(id))
		gpa, gs, gok := got.SubFeedOf(id)
		wpa, ws, wok := want.SubFeedOf(id)
		eq("sub-feed "+id.Short(), fmt.Sprint(gpa, gs, gok), fmt.Sprint(wpa, ws, wok))
		eq("decider "+id.Short(), got.Decider(id), want.Decider(id))
		for _, o := range l.owners {
			eq("names", got.Names(o.ID(), id), want.Names(o.ID(), id))
		}
		for _, g := range l.emGrants {
			gb, _ := got.FirstBreakGlass(id, g)
			wb, _ := want.FirstBreakGlass(id, g)
			eq("first break-glass", gb, wb)
		}
	}
	for _, o := range l.owners {
		eq("emergency accesses", EmergencyAccesses(got, o.ID()), EmergencyAccesses(want, o.ID()))
		eq("disclosures", Disclosures(got, o.ID(), time.Time{}), Disclosures(want, o.ID(), time.Time{}))
	}
	eq("proofs", len(got.Proofs()), len(want.Proofs()))
	sameRecoveryAnswers(t, ids, want, got) // guardian_test.go
	eq("credentials", got.Credentials(), want.Credentials())
	for _, c := range want.Credentials() {
		eq("credential revoked", got.CredentialRevoked(c.ID), want.CredentialRevoked(c.ID))
	}
	gg, wg := got.Grants(), want.Grants()
	if len(gg) != len(wg) {
		fail("grants", len(gg), len(wg))
	}
	for i := range wg {
		eq("grant", *gg[i], *wg[i])
		eq("grant scopes", gg[i].parsed, wg[i].parsed)
		eq("revoked", got.Revoked(wg[i].ID), want.Revoked(wg[i].ID))
	}
	eq("break-glass", got.BreakGlasses(), want.BreakGlasses())
	for _, b := range want.BreakGlasses() {
		gr, _ := got.Review(b.ID)
		wr, _ := want.Review(b.ID)
		eq("review", gr, wr)
	}
	for _, r := range l.requests {
		eq("nonce", got.NonceSeen(r.Requester, r.Nonce), want.NonceSeen(r.Requester, r.Nonce))
	}
	for _, e := range l.extra {
		if e.Kind == KindAccess {
			b, _ := e.DecodedBody()
			r, _ := DecodeRequest(b.(*AccessBody).Request)
			eq("nonce of a handed entry", got.NonceSeen(r.Requester, r.Nonce), want.NonceSeen(r.Requester, r.Nonce))
		}
	}
	// Decisions now, at random times, and as of every access entry.
	for range 300 {
		now := l.at.Add(time.Duration(l.rng.IntN(48*3600)-24*3600) * time.Second)
		r := l.request(now)
		if g, w := Decide(got, r, now), Decide(want, r, now); g != w {
			fail(fmt.Sprintf("Decide(%+v)", r), g, w)
		}
	}
	for i, e := range l.entries {
		if e.Kind != KindAccess || i%5 != 0 { // DecideAsOf reads the ledger
			continue
		}
		b, _ := e.DecodedBody()
		r, err := DecodeRequest(b.(*AccessBody).Request)
		if err != nil {
			t.Fatal(err)
		}
		gd, gerr := DecideAsOf(got, e, r)
		wd, werr := DecideAsOf(want, e, r)
		if gd != wd || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			fail("DecideAsOf", fmt.Sprint(gd, gerr), fmt.Sprint(wd, werr))
		}
	}
}

// A core table that does not decode, of another version, or whose bytes
// changed is refused, never half-read; feed tables of the wrong shape are
// refused at open or, read later, rebuilt from the entries.
func TestStateRefused(t *testing.T) {
	l := richLedger(t, 1, 60)
	ms := saveState(t, l.view)
	if _, err := restoreFrom(ms, l.view.store); err != nil {
		t.Fatal(err)
	}
	b := ms.tables[tableCore][tableCore]
	v2, err := Marshal(stateEnvelope{Version: StateVersion + 1, Sum: []byte{1}, Payload: []byte{2}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := Marshal([]any{uint64(StateVersion + 1), "another shape"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrStateCorrupt},
		{"truncated", b[:len(b)-1], ErrStateCorrupt},
		{"flipped bit at the end", flip(b, len(b)-1), ErrStateCorrupt},
		{"flipped bit in the middle", flip(b, len(b)/2), ErrStateCorrupt},
		{"flipped bit in the checksum", flip(b, 5), ErrStateCorrupt},
		{"trailing byte", append(slices.Clone(b), 0), ErrStateCorrupt},
		{"version not in its shortest form", append([]byte{0x83, 0x18, StateVersion}, b[2:]...), ErrStateCorrupt},
		{"not an array", b[1:], ErrStateCorrupt},
		{"next version", v2, ErrStateVersion},
		{"next version, another shape", other, ErrStateVersion},
	} {
		ms.tables[tableCore][tableCore] = tc.b
		_, err := restoreFrom(ms, l.view.store)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	ms.tables[tableCore][tableCore] = b
	for _, tc := range []struct {
		name  string
		table string
		spoil func(k string, v []byte) []byte
	}{
		{"a hash chunk cut short", tableHashes, func(_ string, v []byte) []byte { return v[:len(v)-1] }},
		{"a hash chunk missing", tableHashes, func(string, []byte) []byte { return nil }},
		{"access seqs out of order", tableAccess, func(_ string, v []byte) []byte {
			if len(v) < 16 {
				return nil
			}
			v = slices.Clone(v)
			copy(v, v[len(v)-8:])
			return v
		}},
	} {
		saved := ms.tables[tc.table]
		spoilt := make(map[string][]byte)
		for k, v := range saved {
			spoilt[k] = v
		}
		for k, v := range saved {
			if nv := tc.spoil(k, v); nv == nil {
				delete(spoilt, k)
			} else {
				spoilt[k] = nv
			}
			break
		}
		ms.tables[tc.table] = spoilt
		// Refused at open (the chunk of a head), or read when first used
		// and rebuilt from the entries.
		r, err := restoreFrom(ms, l.view.store)
		switch {
		case err == nil:
			sameAnswers(t, l, l.view, r)
			if !r.src.broken.Load() {
				t.Errorf("%s: not noticed", tc.name)
			}
		case !errors.Is(err, ErrStateCorrupt):
			t.Errorf("%s: %v, want %v", tc.name, err, ErrStateCorrupt)
		}
		ms.tables[tc.table] = saved
	}
}

func flip(b []byte, i int) []byte {
	b = slices.Clone(b)
	b[i] ^= 0x10
	return b
}

// A view with entries waiting for a predecessor has no state: they are in
// no store.
func TestStatePending(t *testing.T) {
	w := newWorld(t)
	alice := testSigner(t, "alice")
	e1, err := NewEntry(alice, Head{}, t0, KindIdentity, &IdentityBody{AgeRecipient: "age1alice", Role: "patient"})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := NewEntry(alice, e1.Head(), t0, KindAnchor, &AnchorBody{Record: "rec-1", Manifest: HashBytes([]byte("m"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.view.Ingest(e2); err != nil {
		t.Fatal(err)
	}
	if _, err := EncodeState(w.view); !errors.Is(err, ErrStatePending) {
		t.Fatalf("EncodeState with a pending entry: %v", err)
	}
	if _, err := w.view.Ingest(e1); err != nil {
		t.Fatal(err)
	}
	if _, err := EncodeState(w.view); err != nil {
		t.Fatal(err)
	}
}

// diffStates names the tables where two encoded states differ.
func diffStates(t *testing.T, got, want []byte) {
	t.Helper()
	dec := func(b []byte) *viewState {
		p, err := openState(b)
		if err != nil {
			t.Fatal(err)
		}
		st := &viewState{}
		if err := stateDec.Unmarshal(p, st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	g, w := dec(got), dec(want)
	gv, wv := reflect.ValueOf(*g), reflect.ValueOf(*w)
	for i := 1; i < gv.NumField(); i++ {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Logf("table %s differs", gv.Type().Field(i).Name)
		}
	}
	gc, wc := reflect.ValueOf(g.Core), reflect.ValueOf(w.Core)
	for i := 1; i < gc.NumField(); i++ {
		if !reflect.DeepEqual(gc.Field(i).Interface(), wc.Field(i).Interface()) {
			t.Logf("core table %s differs:\n%v\n%v", gc.Type().Field(i).Name, gc.Field(i).Interface(), wc.Field(i).Interface())
		}
	}
}
