package consent

import (
	"errors"
	"testing"
	"time"
)

const (
	testAgeCard = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
	testAgeNew1 = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	testAgeNew2 = "age1mrmfnwhtlprn4jquex0ukmwcm7y2nxlphuzgsgv8ew2k9mewy3rs8u7su5"
)

// An age-key body is refused unless its recipient is an X25519 recipient,
// its reason 1 to 64 printable bytes and its device, if any, an ID.
func TestAgeKeyBodyValidate(t *testing.T) {
	phone := testSigner(t, "phone")
	for _, c := range []struct {
		name string
		body AgeKeyBody
		ok   bool
	}{
		{"device revoke", AgeKeyBody{AgeRecipient: testAgeNew1, Reason: AgeKeyDeviceRevoke, Device: phone.ID()}, true},
		{"no device", AgeKeyBody{AgeRecipient: testAgeNew1, Reason: AgeKeyRotate}, true},
		{"empty recipient", AgeKeyBody{Reason: AgeKeyRotate}, false},
		{"not age1", AgeKeyBody{AgeRecipient: "ssh-ed25519 AAAA", Reason: AgeKeyRotate}, false},
		{"age1 but not X25519", AgeKeyBody{AgeRecipient: "age1example", Reason: AgeKeyRotate}, false},
		{"bad checksum", AgeKeyBody{AgeRecipient: testAgeNew1[:len(testAgeNew1)-1] + "q", Reason: AgeKeyRotate}, false},
		{"plugin recipient", AgeKeyBody{AgeRecipient: "age1yubikey1qwerty", Reason: AgeKeyRotate}, false},
		{"long recipient", AgeKeyBody{AgeRecipient: "age1" + string(make([]byte, 4096)), Reason: AgeKeyRotate}, false},
		{"no reason", AgeKeyBody{AgeRecipient: testAgeNew1}, false},
		{"long reason", AgeKeyBody{AgeRecipient: testAgeNew1, Reason: string(make([]byte, MaxAgeKeyReason+1))}, false},
		{"control in reason", AgeKeyBody{AgeRecipient: testAgeNew1, Reason: "a\nb"}, false},
		{"bad device", AgeKeyBody{AgeRecipient: testAgeNew1, Reason: AgeKeyDeviceRevoke, Device: "nope"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.body.Validate()
			if c.ok != (err == nil) {
				t.Fatalf("Validate: %v, want ok %v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate: %v, want ErrMalformed", err)
			}
			// The entry is refused the same way.
			_, err = NewEntry(testSigner(t, "alice"), Head{}, t0, KindAgeKey, &c.body)
			if c.ok != (err == nil) {
				t.Fatalf("NewEntry: %v, want ok %v", err, c.ok)
			}
		})
	}
}

// The current recipient of an identity is its identity entry's until its
// first age-key entry, then the newest age-key entry's; only the identity
// itself moves it: an age-key entry in a device's feed, or in another
// author's feed, changes nothing for alice. A restored view answers the
// same.
func TestAgeRecipientFollowsNewest(t *testing.T) {
	w := newWorld(t)
	alice, phone, mallory := testSigner(t, "alice"), testSigner(t, "phone"), testSigner(t, "mallory")
	if got := w.view.AgeRecipient(alice.ID()); got != "" {
		t.Fatalf("no entries: recipient %q, want none", got)
	}
	w.add(alice, t0.Add(-3*time.Hour), KindIdentity, &IdentityBody{AgeRecipient: testAgeCard, Role: "patient"})
	b, err := NewDeviceBody(alice, phone.ID(), testDeviceAge, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.add(phone, t0.Add(-3*time.Hour), KindDevice, b)
	want := func(step, r string) {
		t.Helper()
		if got := w.view.AgeRecipient(alice.ID()); got != r {
			t.Fatalf("%s: recipient %q, want %q", step, got, r)
		}
		rv, _ := restored(t, w.view)
		if got := rv.AgeRecipient(alice.ID()); got != r {
			t.Fatalf("%s, restored view: recipient %q, want %q", step, got, r)
		}
	}
	want("identity entry", testAgeCard)

	// Signed by the device (its own feed), or by someone else: not alice's.
	w.add(phone, t0.Add(-2*time.Hour), KindAgeKey, &AgeKeyBody{AgeRecipient: testAgeNew2, Reason: AgeKeyRotate})
	w.add(mallory, t0.Add(-2*time.Hour), KindAgeKey, &AgeKeyBody{AgeRecipient: testAgeNew2, Reason: AgeKeyRotate})
	want("device's and mallory's age-key entries", testAgeCard)
	if _, ok := w.view.AgeKey(phone.ID()); ok {
		t.Fatal("a device's own age-key entry counts")
	}

	w.add(alice, t0.Add(-time.Hour), KindAgeKey, &AgeKeyBody{AgeRecipient: testAgeNew1, Reason: AgeKeyDeviceRevoke, Device: phone.ID()})
	want("first rotation", testAgeNew1)
	k, ok := w.view.AgeKey(alice.ID())
	if !ok || k.Device != phone.ID() || k.Reason != AgeKeyDeviceRevoke || k.Seq != 2 {
		t.Fatalf("AgeKey = %+v, %v", k, ok)
	}
	w.add(alice, t0, KindAgeKey, &AgeKeyBody{AgeRecipient: testAgeNew2, Reason: AgeKeyRotate})
	want("second rotation", testAgeNew2)

	// Another view that gets alice's entries in reverse order (the later
	// ones wait for their predecessors) ends on the same recipient.
	v := NewView()
	for i := len(w.entries) - 1; i >= 0; i-- {
		if _, err := v.Ingest(w.entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.AgeRecipient(alice.ID()); got != testAgeNew2 {
		t.Fatalf("reverse order: recipient %q, want %q", got, testAgeNew2)
	}
}

// ageKeyKinds adds to a rich ledger (state_test.go) an age-key entry by
// an owner or, now and then, one of its devices (which counts for no one).
func (l *randLedger) ageKeyKinds() {
	o := pick(l, l.owners)
	b := AgeKeyBody{AgeRecipient: pick(l, []string{testAgeNew1, testAgeNew2, testAgeCard}), Reason: AgeKeyRotate}
	if ds := l.devices[o.ID()]; len(ds) > 0 && l.rng.IntN(2) == 0 {
		b.Reason, b.Device = AgeKeyDeviceRevoke, pick(l, ds).ID()
	}
	l.add(l.orDevice(o), KindAgeKey, &b)
}

// FuzzDecodeAgeKey: an age-key body is outside bytes (any feed carries
// it); decoding never panics, and what it accepts validates and encodes
// back to the same bytes.
func FuzzDecodeAgeKey(f *testing.F) {
	for _, b := range []AgeKeyBody{
		{AgeRecipient: testAgeNew1, Reason: AgeKeyDeviceRevoke, Device: testSigner(f, "phone").ID()},
		{AgeRecipient: testAgeNew2, Reason: AgeKeyRotate},
	} {
		enc, err := Marshal(&b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeBody(KindAgeKey, b)
		if err != nil {
			return
		}
		body := v.(*AgeKeyBody)
		if err := body.Validate(); err != nil {
			t.Fatalf("accepted a body that does not validate: %v", err)
		}
		if _, err := Marshal(body); err != nil {
			t.Fatal(err)
		}
	})
}
