package consent

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

const testDeviceAge = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

// enrol opens dev's feed with owner's device entry.
func (w *world) enrol(owner, dev Signer, label string) *Entry {
	w.tb.Helper()
	b, err := NewDeviceBody(owner, dev.ID(), testDeviceAge, []byte(label))
	if err != nil {
		w.tb.Fatal(err)
	}
	return w.add(dev, t0.Add(-2*time.Hour), KindDevice, b)
}

// A device entry must carry the owner's signature over this device, its
// recipient and its label; any change, or another signer, is refused.
func TestDeviceBodyForged(t *testing.T) {
	alice, phone, mallory := testSigner(t, "alice"), testSigner(t, "phone"), testSigner(t, "mallory")
	for name, mut := range map[string]func(b *DeviceBody){
		"other owner":     func(b *DeviceBody) { b.Owner = mallory.ID() },
		"other device":    func(b *DeviceBody) { b.Device = mallory.ID() },
		"other recipient": func(b *DeviceBody) { b.AgeRecipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj" },
		"other label":     func(b *DeviceBody) { b.Label = []byte("laptop") },
		"no signature":    func(b *DeviceBody) { b.Sig = nil },
		"own owner":       func(b *DeviceBody) { b.Owner = b.Device },
		"long label":      func(b *DeviceBody) { b.Label = make([]byte, MaxDeviceLabel+1) },
	} {
		t.Run(name, func(t *testing.T) {
			b, err := NewDeviceBody(alice, phone.ID(), testDeviceAge, []byte("phone"))
			if err != nil {
				t.Fatal(err)
			}
			mut(b)
			if _, err := NewEntry(phone, Head{}, t0, KindDevice, b); !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("forged device entry: %v, want refused", err)
			}
		})
	}
}

// deviceWorld: alice (primary) enrolled phone and laptop; mallory
// enrolled her own device, which signs "for alice" in vain.
type deviceWorld struct {
	*world
	alice, phone, laptop, bob, carol, dave, mallory, mdev *KeySigner
}

func newDeviceWorld(t *testing.T) *deviceWorld {
	w := &deviceWorld{world: newWorld(t)}
	for _, p := range []struct {
		s    **KeySigner
		name string
	}{{&w.alice, "alice"}, {&w.phone, "phone"}, {&w.laptop, "laptop"}, {&w.bob, "bob"}, {&w.carol, "carol"},
		{&w.dave, "dave"}, {&w.mallory, "mallory"}, {&w.mdev, "mallory's device"}} {
		*p.s = testSigner(t, p.name)
	}
	w.add(w.alice, t0.Add(-3*time.Hour), KindIdentity, &IdentityBody{AgeRecipient: "age1example", Role: "patient"})
	w.enrol(w.alice, w.phone, "phone")
	w.enrol(w.alice, w.laptop, "laptop")
	w.enrol(w.mallory, w.mdev, "")
	return w
}

func (w *deviceWorld) decide(requester Signer, record string) Decision {
	r := newRequest(w.tb, requester, w.alice.ID(), record, "patient/Observation.rs", "TREAT", t0)
	return Decide(w.view, r, t0)
}

func obs(grantee ID, rec string) Grant {
	return Grant{Grantee: grantee, Records: []string{rec}, Scopes: []string{"patient/Observation.rs"}}
}

// The devices' grants and revocations are the owner's: a grant signed by
// one device allows, a revocation by another device (or the primary)
// withdraws it, and a device's request for the owner's record is the
// owner's own. Another owner's device grants nothing for alice.
func TestDeviceGrantsCountForOwner(t *testing.T) {
	w := newDeviceWorld(t)
	if o, ok := w.view.DeviceOwner(w.phone.ID()); !ok || o != w.alice.ID() {
		t.Fatalf("DeviceOwner(phone) = %s %v", o, ok)
	}
	if ds := w.view.Devices(w.alice.ID()); len(ds) != 2 {
		t.Fatalf("alice has %d devices, want 2", len(ds))
	}
	g1 := w.grant(w.phone, obs(w.bob.ID(), "rec-1"))
	g2 := w.grant(w.laptop, obs(w.carol.ID(), "rec-2"))
	g3 := w.grant(w.alice, obs(w.carol.ID(), "rec-3"))
	w.grant(w.mdev, obs(w.dave.ID(), "rec-1"))
	if gi, _ := w.view.Grant(g1); gi.Author != w.alice.ID() || gi.Device != w.phone.ID() || gi.Seq != 2 {
		t.Fatalf("phone's grant: author %s device %s seq %d", gi.Author.Short(), gi.Device.Short(), gi.Seq)
	}
	for _, c := range []struct {
		who    Signer
		rec    string
		allow  bool
		reason Reason
	}{
		{w.bob, "rec-1", true, ReasonGranted},
		{w.carol, "rec-2", true, ReasonGranted},
		{w.carol, "rec-3", true, ReasonGranted},
		{w.dave, "rec-1", false, ReasonWrongGrantee},
		{w.phone, "rec-9", true, ReasonOwner},
		{w.laptop, "rec-1", true, ReasonOwner},
		{w.mdev, "rec-1", false, ReasonWrongGrantee},
	} {
		if d := w.decide(c.who, c.rec); d.Allow != c.allow || d.Reason != c.reason {
			t.Errorf("%s on %s: %+v, want %v %s", c.who.ID().Short(), c.rec, d, c.allow, c.reason)
		}
	}
	// Cross revocations: the laptop withdraws the phone's grant, the
	// phone the primary's, the primary the laptop's.
	w.add(w.laptop, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: g1})
	w.add(w.phone, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: g3})
	w.add(w.alice, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: g2})
	for _, g := range []Hash{g1, g2, g3} {
		if !w.view.Revoked(g) {
			t.Errorf("grant %s not revoked", g)
		}
	}
	for _, c := range []struct {
		who Signer
		rec string
	}{{w.bob, "rec-1"}, {w.carol, "rec-2"}, {w.carol, "rec-3"}} {
		if d := w.decide(c.who, c.rec); d.Allow || d.Reason != ReasonRevoked {
			t.Errorf("%s on %s after revocation: %+v", c.who.ID().Short(), c.rec, d)
		}
	}
}

// A device-revoke cuts the device's feed: its grants up to the cut still
// count, later ones do not, and none of its requests is the owner's any
// longer. The smallest cut of several counts; a revoke by anyone but the
// owner counts for nothing.
func TestDeviceRevokeCut(t *testing.T) {
	w := newDeviceWorld(t)
	g1 := w.grant(w.phone, obs(w.bob.ID(), "rec-1")) // phone seq 2
	w.add(w.mallory, t0.Add(-time.Minute), KindDeviceRevoke, &DeviceRevokeBody{Device: w.phone.ID(), Cut: 0})
	if _, ok := w.view.DeviceCut(w.phone.ID()); ok {
		t.Fatal("mallory revoked alice's device")
	}
	w.add(w.alice, t0.Add(-time.Minute), KindDeviceRevoke, &DeviceRevokeBody{Device: w.phone.ID(), Cut: 3})
	w.grant(w.phone, obs(w.carol.ID(), "rec-2")) // seq 3: within the cut
	w.add(w.alice, t0.Add(-time.Minute), KindDeviceRevoke, &DeviceRevokeBody{Device: w.phone.ID(), Cut: 2})
	g3 := w.grant(w.phone, obs(w.dave.ID(), "rec-3")) // seq 4: after it
	if cut, ok := w.view.DeviceCut(w.phone.ID()); !ok || cut != 2 {
		t.Fatalf("cut = %d %v, want 2", cut, ok)
	}
	if d := w.decide(w.bob, "rec-1"); !d.Allow || d.Grant != g1 {
		t.Errorf("grant within the cut: %+v", d)
	}
	if d := w.decide(w.carol, "rec-2"); d.Allow || d.Reason != ReasonDeviceRevoked {
		t.Errorf("grant after the smaller cut: %+v", d)
	}
	if d := w.decide(w.dave, "rec-3"); d.Allow || d.Reason != ReasonDeviceRevoked || d.Grant != g3 {
		t.Errorf("grant after the cut: %+v", d)
	}
	if d := w.decide(w.phone, "rec-1"); d.Allow || d.Reason != ReasonDeviceRevoked {
		t.Errorf("revoked device reads: %+v", d)
	}
	if d := w.decide(w.laptop, "rec-1"); !d.Allow || d.Reason != ReasonOwner {
		t.Errorf("other device reads: %+v", d)
	}
	// Its revocations still withdraw (fail closed).
	g4 := w.grant(w.laptop, obs(w.carol.ID(), "rec-4"))
	w.add(w.phone, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: g4})
	if d := w.decide(w.carol, "rec-4"); d.Allow || d.Reason != ReasonRevoked {
		t.Errorf("revocation by a revoked device: %+v", d)
	}
}

// Two devices that equivocate no one: the devices sign in their own feeds
// at the same moment; a device that does equivocate loses its grants.
func TestDeviceEquivocates(t *testing.T) {
	w := newDeviceWorld(t)
	w.grant(w.phone, obs(w.bob.ID(), "rec-1"))
	w.grant(w.laptop, obs(w.carol.ID(), "rec-1"))
	if len(w.view.Proofs()) != 0 {
		t.Fatal("two devices signing at once equivocated")
	}
	// The phone signs another entry at seq 2.
	g := obs(w.dave.ID(), "rec-1")
	g.NotBefore, g.Purpose = t0.Add(-time.Hour).Unix(), "TREAT"
	first, err := w.view.EntryAt(w.phone.ID(), 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEntry(w.phone, first.Head(), t0, KindGrant, &g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.view.Ingest(e); !errors.Is(err, ErrEquivocation) {
		t.Fatalf("ingest: %v, want equivocation", err)
	}
	if d := w.decide(w.bob, "rec-1"); d.Allow || d.Reason != ReasonEquivocating {
		t.Errorf("equivocating device's grant: %+v", d)
	}
	if d := w.decide(w.carol, "rec-1"); !d.Allow {
		t.Errorf("other device's grant: %+v", d)
	}
	if d := w.decide(w.phone, "rec-1"); d.Allow || d.Reason != ReasonEquivocating {
		t.Errorf("equivocating device reads: %+v", d)
	}
}

// Whatever order the feeds arrive in, a view decides the same, and a view
// restored from a saved state (version 4) decides as the view it saved.
func TestDeviceAnyOrder(t *testing.T) {
	w := newDeviceWorld(t)
	g1 := w.grant(w.phone, obs(w.bob.ID(), "rec-1"))
	w.grant(w.laptop, obs(w.carol.ID(), "rec-2"))
	w.grant(w.phone, obs(w.dave.ID(), "rec-3"))
	w.add(w.laptop, t0.Add(-time.Minute), KindRevoke, &RevokeBody{Grant: g1})
	w.add(w.alice, t0.Add(-time.Minute), KindDeviceRevoke, &DeviceRevokeBody{Device: w.phone.ID(), Cut: 2})
	type q struct {
		who Signer
		rec string
	}
	qs := []q{{w.bob, "rec-1"}, {w.carol, "rec-2"}, {w.dave, "rec-3"}, {w.phone, "rec-1"}, {w.laptop, "rec-1"}}
	want := make([]Decision, len(qs))
	for i, c := range qs {
		want[i] = w.decide(c.who, c.rec)
	}
	if want[1].Reason != ReasonGranted || want[2].Reason != ReasonDeviceRevoked || want[0].Reason != ReasonRevoked {
		t.Fatalf("decisions: %+v", want)
	}
	check := func(name string, v *View) {
		t.Helper()
		for i, c := range qs {
			r := newRequest(t, c.who, w.alice.ID(), c.rec, "patient/Observation.rs", "TREAT", t0)
			if d := Decide(v, r, t0); d != want[i] {
				t.Errorf("%s: %s on %s: %+v, want %+v", name, c.who.ID().Short(), c.rec, d, want[i])
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		es := append([]*Entry(nil), w.entries...)
		rng.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		v := NewView()
		if err := v.IngestAll(es); err != nil {
			t.Fatal(err)
		}
		check("shuffled", v)
	}
	r, _ := restored(t, w.view)
	check("restored", r)
	if cut, ok := r.DeviceCut(w.phone.ID()); !ok || cut != 2 {
		t.Fatalf("restored cut = %d %v", cut, ok)
	}
	if gi, _ := r.Grant(g1); gi.Device != w.phone.ID() {
		t.Fatalf("restored grant device = %s", gi.Device)
	}
}

// The audit re-runs decisions on the device heads an access entry names:
// honest decisions on device grants pass, an allow on a grant past the
// device's cut is a violation, and an allow that names no device head
// cannot rely on a device's grant.
func TestDeviceAudit(t *testing.T) {
	w := newDeviceWorld(t)
	g1 := w.grant(w.phone, obs(w.bob.ID(), "rec-1"))
	log := func(r *Request, at time.Time, forced *Decision, heads bool) {
		d := Decide(w.view, r, at)
		if forced != nil {
			d = *forced
		}
		body := &AccessBody{Request: r.Encode(), Allow: d.Allow, Reason: d.Reason, Grant: d.Grant, OwnerHead: w.view.Head(r.Owner)}
		if heads {
			body.DeviceHeads = DeviceHeads(w.view, r.Owner)
		}
		w.add(w.dave, at, KindAccess, body)
	}
	req := func(who Signer, rec string, at time.Time) *Request {
		return newRequest(t, who, w.alice.ID(), rec, "patient/Observation.rs", "TREAT", at)
	}
	log(req(w.bob, "rec-1", t0), t0, nil, true)
	log(req(w.phone, "rec-1", t0), t0, nil, true)
	w.add(w.laptop, t0.Add(time.Minute), KindRevoke, &RevokeBody{Grant: g1})
	log(req(w.bob, "rec-1", t0.Add(2*time.Minute)), t0.Add(2*time.Minute), nil, true)
	w.add(w.alice, t0.Add(3*time.Minute), KindDeviceRevoke, &DeviceRevokeBody{Device: w.phone.ID(), Cut: 2})
	g2 := w.grant(w.phone, obs(w.carol.ID(), "rec-2")) // seq 3, past the cut
	log(req(w.carol, "rec-2", t0.Add(4*time.Minute)), t0.Add(4*time.Minute), nil, true)
	log(req(w.phone, "rec-1", t0.Add(4*time.Minute)), t0.Add(4*time.Minute), nil, true)
	if rep := AuditLedger(w.entries); !rep.OK() || len(rep.Findings) != 0 {
		t.Fatalf("honest ledger with devices: %s", kinds(rep))
	}
	allow := &Decision{Allow: true, Reason: ReasonGranted, Grant: g2}
	log(req(w.carol, "rec-2", t0.Add(5*time.Minute)), t0.Add(5*time.Minute), allow, true)
	if rep := AuditLedger(w.entries); rep.OK() || kinds(rep) != "violation:device-revoked" {
		t.Fatalf("allow past the cut: %s %+v", kinds(rep), rep)
	}
}

// deviceCases are TestDecideTable's cases about devices: alice's phone
// grants, and alice revokes the phone after its first grant.
func deviceCases(t *testing.T, w *world, alice *KeySigner) []decideCase {
	phone, bob := testSigner(t, "alice's phone"), testSigner(t, "bob")
	lab := "patient/Observation.rs?category=laboratory"
	w.enrol(alice, phone, "phone")
	gIn := w.grant(phone, Grant{Grantee: bob.ID(), Records: []string{"rec-phone-1"}, Scopes: []string{lab}})
	w.add(alice, t0.Add(-time.Minute), KindDeviceRevoke, &DeviceRevokeBody{Device: phone.ID(), Cut: 2})
	gOut := w.grant(phone, Grant{Grantee: bob.ID(), Records: []string{"rec-phone-2"}, Scopes: []string{lab}})
	return []decideCase{
		{"device grant within the cut", newRequest(t, bob, alice.ID(), "rec-phone-1", lab, "TREAT", t0), ReasonGranted, gIn, Hash{}, 0},
		{"device grant after the cut", newRequest(t, bob, alice.ID(), "rec-phone-2", lab, "TREAT", t0), ReasonDeviceRevoked, gOut, Hash{}, 0},
		{"revoked device reads", newRequest(t, phone, alice.ID(), "rec-1", lab, "TREAT", t0), ReasonDeviceRevoked, Hash{}, Hash{}, 0},
	}
}

// A decider that names no device head cannot rely on a device's grant:
// the audit re-decides without it, and an allow is a violation. Naming a
// head that is not in the device's feed is one too.
func TestDeviceAuditNeedsHeads(t *testing.T) {
	w := newDeviceWorld(t)
	w.grant(w.phone, obs(w.bob.ID(), "rec-1"))
	r := newRequest(t, w.bob, w.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	d := Decide(w.view, r, t0)
	if !d.Allow {
		t.Fatalf("decision %+v", d)
	}
	w.add(w.dave, t0, KindAccess, &AccessBody{Request: r.Encode(), Allow: true, Reason: d.Reason, Grant: d.Grant,
		OwnerHead: w.view.Head(w.alice.ID())})
	if rep := AuditLedger(w.entries); rep.OK() || kinds(rep) != "violation:no-grant" {
		t.Fatalf("allow without device heads: %s", kinds(rep))
	}
	w2 := newDeviceWorld(t)
	w2.grant(w2.phone, obs(w2.bob.ID(), "rec-1"))
	r2 := newRequest(t, w2.bob, w2.alice.ID(), "rec-1", "patient/Observation.rs", "TREAT", t0)
	d2 := Decide(w2.view, r2, t0)
	heads := DeviceHeads(w2.view, w2.alice.ID())
	for i := range heads {
		heads[i].Head.Hash[0] ^= 1
	}
	w2.add(w2.dave, t0, KindAccess, &AccessBody{Request: r2.Encode(), Allow: true, Reason: d2.Reason, Grant: d2.Grant,
		OwnerHead: w2.view.Head(w2.alice.ID()), DeviceHeads: heads})
	if rep := AuditLedger(w2.entries); rep.OK() || kinds(rep) != "violation:" {
		t.Fatalf("allow naming a device head not in its feed: %s", kinds(rep))
	}
}
