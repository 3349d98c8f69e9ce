package tui

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// The golden files under testdata/ are rewritten with: go test ./tui -update
// (the flag is registered by charmbracelet/x/exp/golden).

func TestMain(m *testing.M) {
	os.Setenv("NO_COLOR", "1")
	os.Exit(m.Run())
}

const testPass = "secret"

// fixture is a patient wallet with one contact and one record, in memory.
type fixture struct {
	cfg   wallet.Config
	alice *wallet.Wallet
	rec   wallet.RecordInfo
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	cfg := wallet.Config{Home: t.TempDir(), Keystore: keystore.NewMemory()}
	alice, err := wallet.Init(cfg, "Alice", "patient")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := wallet.Init(wallet.Config{Home: t.TempDir(), Keystore: keystore.NewMemory()}, "Dr Bob", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact("Bob", bob.Card().String()); err != nil {
		t.Fatal(err)
	}
	rec, err := alice.AddRecord(ctx, strings.NewReader(`{"resourceType":"Observation","id":"o1","status":"final"}`),
		wallet.AddRecordOptions{Label: "labs 2026"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cfg: cfg, alice: alice, rec: rec}
}

// unlock stands for the file backend: only testPass opens the keyring.
func (f *fixture) unlock(pass string) (*wallet.Wallet, error) {
	if pass != testPass {
		return nil, keystore.ErrBadPassphrase
	}
	w, err := wallet.Open(f.cfg)
	if err != nil {
		return nil, err
	}
	_, err = w.Identity()
	return w, err
}

func plainRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return r
}

func (f *fixture) model(idle time.Duration) *Model {
	return New(f.alice, Options{Idle: idle, Poll: time.Hour, Unlock: f.unlock, ImportDir: "/tmp/in", Renderer: plainRenderer()})
}

// Fixed data for the golden views.
var (
	t0      = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	bobID   = consent.ID("12D3KooWJdNFv8nbpYKfimp86oWJtqCZy5cYqWA4onyYNMbCP5ZK")
	aliceID = consent.ID("12D3KooWKvEpGADEbPUQBA1ondpauNsij6NwePjz9XaqUGT3eoHR")
	recs    = []wallet.RecordInfo{
		{ID: "825a9b35a5f249ebaeb2ed04266b5694", Created: t0, K: 3, N: 5, Metadata: vault.Metadata{
			Format: "fhir-r4", MediaType: "application/fhir+json", Label: "2026 check-up", Size: 442811,
			FHIR: &vault.FHIRInfo{ResourceType: "Bundle", Resources: map[string]int{"Observation": 200, "Patient": 1}}}},
		{ID: "d21a33a3c9d65cce5a2c29cd3bed4c27", Created: t0.Add(time.Hour), K: 4, N: 6, Metadata: vault.Metadata{
			Format: "pdf", MediaType: "application/pdf", Size: 1 << 20}},
	}
	contacts = []wallet.Contact{{Name: "Bob", Added: t0, Card: consent.Card{ID: bobID, Name: "Dr Bob", Role: "clinician"}}}
	grants   = []wallet.GrantInfo{
		{ID: consent.Hash{0xce, 0x05, 0x0c}, Author: aliceID, Grantee: bobID, GranteeName: "Bob", Records: []string{recs[0].ID},
			Scopes: []string{"patient/Observation.rs"}, Purpose: consent.Purpose{Code: "TREAT", Display: "treatment"},
			Created: t0, Expires: t0.Add(30 * 24 * time.Hour), Status: wallet.GrantActive, Given: true},
		{ID: consent.Hash{0x9c, 0x2e, 0x41}, Author: aliceID, Grantee: bobID, GranteeName: "Bob", All: true,
			Scopes: []string{"patient/*.rs"}, Purpose: consent.Purpose{Code: "HPAYMT", Display: "healthcare payment"},
			Created: t0, Status: wallet.GrantRevoked, Given: true},
	}
	inbox = []wallet.GrantInfo{
		{ID: consent.Hash{0x3f, 0x2a}, Author: bobID, AuthorName: "Bob", Grantee: aliceID, All: true,
			Scopes: []string{"patient/*.rs"}, Purpose: consent.Purpose{Code: "PATRQT", Display: "patient requested"},
			Created: t0, Status: wallet.GrantActive},
	}
	accesses = []wallet.AccessInfo{
		{Entry: consent.Hash{1}, Time: t0, Requester: bobID, RequesterName: "Bob", Record: recs[0].ID, Purpose: "TREAT", Allow: true, Reason: "granted"},
		{Entry: consent.Hash{2}, Time: t0.Add(time.Minute), Requester: bobID, RequesterName: "Bob", Record: recs[1].ID, Purpose: "HMARKT", Allow: false, Reason: "no-grant"},
		{Entry: consent.Hash{3}, Time: t0.Add(2 * time.Minute), Requester: bobID, RequesterName: "Bob", Record: recs[0].ID, Purpose: "ETREAT", Allow: true, Reason: "emergency", BreakGlass: consent.Hash{9}, EmergencyReason: "unconscious"},
	}
)

func keys(m tea.Model, ks ...tea.KeyMsg) tea.Model {
	for _, k := range ks {
		m, _ = m.Update(k)
	}
	return m
}

func runes(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

var (
	keyMsgTab   = tea.KeyMsg{Type: tea.KeyTab}
	keyMsgDown  = tea.KeyMsg{Type: tea.KeyDown}
	keyMsgSpace = tea.KeyMsg{Type: tea.KeySpace, Runes: []rune(" ")}
	keyMsgEnter = tea.KeyMsg{Type: tea.KeyEnter}
	keyMsgEsc   = tea.KeyMsg{Type: tea.KeyEsc}
)

// filled is a model at 80x24 with the fixed data loaded, without calling
// the wallet.
func filled(t *testing.T) *Model {
	f := newFixture(t)
	m := f.model(time.Hour)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	for _, msg := range []tea.Msg{
		recordsMsg{recs: recs},
		contactsMsg{people: contacts},
		grantsMsg{grants: grants, contacts: contacts, records: recs},
		accessMsg{items: accesses[:1]},
		accessMsg{items: accesses}, // the second arrives while open: marked new
		inboxMsg{grants: inbox},
	} {
		m.Update(loaded{0, msg})
	}
	return m
}

func TestViews(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []tea.KeyMsg
	}{
		{"records", nil},
		{"record_detail", []tea.KeyMsg{keyMsgDown, runes("i")}},
		{"record_summary_loading", []tea.KeyMsg{keyMsgDown, keyMsgEnter}},
		{"record_add", []tea.KeyMsg{runes("a"), runes("/tmp/visit.json")}},
		{"people", []tea.KeyMsg{runes("2")}},
		{"people_add", []tea.KeyMsg{runes("2"), runes("a"), runes("Carol")}},
		{"grants", []tea.KeyMsg{runes("3")}},
		{"grant_form", []tea.KeyMsg{runes("3"), runes("n"), keyMsgTab, keyMsgDown, keyMsgSpace, keyMsgTab, keyMsgSpace}},
		{"grant_form_error", []tea.KeyMsg{runes("3"), runes("n"), keyMsgEnter}},
		{"revoke_confirm", []tea.KeyMsg{runes("3"), runes("x")}},
		{"access_log", []tea.KeyMsg{runes("4")}},
		{"inbox", []tea.KeyMsg{runes("5")}},
		{"locked", []tea.KeyMsg{{Type: tea.KeyCtrlL}, runes("abc")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := keys(filled(t), tc.keys...)
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

// The identity is random: its values are replaced before the comparison.
func TestViewIdentity(t *testing.T) {
	m := filled(t)
	keys(m, runes("6"))
	card := m.c.w.Card()
	out := m.View()
	for _, s := range []string{card.ID.String(), card.AgeRecipient, time.Unix(card.Created, 0).UTC().Format("2006-01-02 15:04")} {
		out = strings.ReplaceAll(out, s, "<"+strings.Repeat("x", 8)+">")
	}
	for _, l := range strings.Split(wrap(card.String(), 80), "\n") {
		out = strings.Replace(out, l, "<card line>", 1)
	}
	golden.RequireEqual(t, []byte(out))
}

func TestViewFitsSmallAndResizes(t *testing.T) {
	m := filled(t)
	for _, size := range [][2]int{{80, 24}, {40, 12}, {120, 40}} {
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for tab := range tabNames {
			keys(m, runes(string(rune('1'+tab))))
			lines := strings.Split(m.View(), "\n")
			if len(lines) > size[1] {
				t.Errorf("%dx%d tab %d: %d lines", size[0], size[1], tab+1, len(lines))
			}
			for _, l := range lines {
				if w := lipgloss.Width(l); w > size[0] {
					t.Errorf("%dx%d tab %d: line %q is %d wide", size[0], size[1], tab+1, l, w)
				}
			}
		}
	}
}

func TestGrantFormOptions(t *testing.T) {
	m := filled(t)
	keys(m, runes("3"), runes("n"), keyMsgTab, keyMsgDown, keyMsgDown, keyMsgSpace, keyMsgTab, keyMsgDown, keyMsgSpace,
		keyMsgTab, keyMsgDown, keyMsgTab)
	keys(m, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace}, runes("2w"))
	g := m.screens[2].(*grantsModel)
	o, err := g.form.options()
	if err != nil {
		t.Fatal(err)
	}
	want := wallet.GrantOptions{To: "Bob", Records: []string{recs[1].ID}, Scopes: []string{"patient/Observation.rs"},
		Purpose: consent.Purposes[1].Code, Expires: "2w"}
	if o.To != want.To || strings.Join(o.Records, ",") != strings.Join(want.Records, ",") ||
		strings.Join(o.Scopes, ",") != strings.Join(want.Scopes, ",") || o.Purpose != want.Purpose || o.Expires != want.Expires || o.All {
		t.Errorf("options = %+v, want %+v", o, want)
	}
	keys(m, keyMsgEsc)
	if g.form != nil {
		t.Error("esc did not close the form")
	}
}

func TestLockDropsContentAndLateResults(t *testing.T) {
	m := filled(t)
	now := m.last
	m.c.now = func() time.Time { return now.Add(time.Hour) }
	m.Update(idleMsg{})
	if !m.Locked() {
		t.Fatal("not locked after the idle message")
	}
	// A result of a call started before the lock arrives afterwards.
	m.Update(loaded{0, recordsMsg{recs: recs}})
	if m.screens[0].(*recordsModel).recs != nil {
		t.Error("a result from before the lock reached a screen")
	}
	for _, s := range []string{"check-up", "Bob", "825a9b35"} {
		if strings.Contains(m.View(), s) {
			t.Errorf("locked view shows %q", s)
		}
	}
	if m.c.w != nil {
		t.Error("the wallet is still held while locked")
	}
}

func TestStaleIdleTickIgnored(t *testing.T) {
	m := filled(t)
	start := m.last
	now := start.Add(50 * time.Minute)
	m.c.now = func() time.Time { return now }
	keys(m, keyMsgDown) // activity 50 minutes in
	now = start.Add(70 * time.Minute)
	m.Update(idleMsg{}) // the check scheduled at the start: 1h idle, but only 20 minutes since the key
	if m.Locked() {
		t.Error("locked although a key was pressed since")
	}
	now = start.Add(111 * time.Minute)
	m.Update(idleMsg{})
	if !m.Locked() {
		t.Error("not locked after an hour without a key")
	}
}

// waitFor waits until the output read from now on holds every one of ss.
// Output read by one call is gone for the next, so strings drawn in the
// same frame are waited for together.
func waitFor(t *testing.T, tm *teatest.TestModel, ss ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, s := range ss {
			if !bytes.Contains(b, []byte(s)) {
				return false
			}
		}
		return true
	},
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

func TestCreateAndRevokeGrantByKeys(t *testing.T) {
	f := newFixture(t)
	tm := teatest.NewTestModel(t, f.model(time.Hour), teatest.WithInitialTermSize(100, 30))
	waitFor(t, tm, "labs 2026")
	tm.Send(runes("3"))
	waitFor(t, tm, "No grants yet")
	// New grant: Bob (first contact), the record, patient/*.rs, TREAT, 30d.
	for _, k := range []tea.KeyMsg{runes("n"), keyMsgTab, keyMsgDown, keyMsgSpace, keyMsgTab, keyMsgSpace, keyMsgEnter} {
		tm.Send(k)
	}
	// The note comes before the list is read again; x acts on the list.
	waitFor(t, tm, "granted ", "active")
	gs := f.grants(t)
	if len(gs) != 1 || gs[0].Status != wallet.GrantActive || gs[0].GranteeName != "Bob" || len(gs[0].Records) != 1 ||
		gs[0].Records[0] != f.rec.ID || gs[0].Scopes[0] != "patient/*.rs" || gs[0].Purpose.Code != "TREAT" || gs[0].Expires.IsZero() {
		t.Fatalf("grants after the form: %+v", gs)
	}
	tm.Send(runes("x"))
	waitFor(t, tm, "Revoke? y/n")
	tm.Send(runes("y"))
	waitFor(t, tm, "revoked "+gs[0].ID.String()[:12])
	if gs := f.grants(t); len(gs) != 1 || gs[0].Status != wallet.GrantRevoked {
		t.Fatalf("grants after revoke: %+v", gs)
	}
	tm.Send(runes("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

func (f *fixture) grants(t *testing.T) []wallet.GrantInfo {
	t.Helper()
	w, err := wallet.Open(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := w.Grants(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

func TestIdleLockAndUnlock(t *testing.T) {
	f := newFixture(t)
	// The idle clock is the test's: it jumps an hour once the records
	// show, so the wallet locks at the next check, and stands still after
	// the unlock, so a reload slower than the idle time on a loaded
	// machine does not lock it again.
	base := time.Now()
	var ahead atomic.Int64
	m := f.model(300 * time.Millisecond)
	m.c.now = func() time.Time { return base.Add(time.Duration(ahead.Load())) }
	m.last = m.c.now()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	waitFor(t, tm, "labs 2026")
	ahead.Store(int64(time.Hour))
	waitFor(t, tm, "The wallet is locked")
	tm.Type("wrong")
	tm.Send(keyMsgEnter)
	waitFor(t, tm, "wrong passphrase")
	tm.Type(testPass)
	tm.Send(keyMsgEnter)
	waitFor(t, tm, "labs 2026") // reloaded after the unlock
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	m = tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if m.Locked() || m.c.w == nil {
		t.Error("not unlocked at the end")
	}
}

// A decision logged while the access log is open appears on the next pull,
// marked new; a denied one stands out.
func TestAccessLogIsLive(t *testing.T) {
	f := newFixture(t)
	m := New(f.alice, Options{Idle: time.Hour, Poll: 50 * time.Millisecond, Unlock: f.unlock, Renderer: plainRenderer()})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	tm.Send(runes("4"))
	waitFor(t, tm, "No access to your records yet")
	bob, err := wallet.Init(wallet.Config{Home: t.TempDir(), Keystore: keystore.NewMemory()}, "Mallory", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	req, err := bob.NewRequest(f.alice.ID(), f.rec.ID, "patient/Observation.rs", "HMARKT")
	if err != nil {
		t.Fatal(err)
	}
	decider, err := wallet.Open(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decider.DecideAccess(context.Background(), req); err == nil {
		t.Fatal("a request without a grant was allowed")
	}
	waitFor(t, tm, "* ! > ")
	tm.Send(runes("q"))
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	v := fm.View()
	if !strings.Contains(v, "DENIED") || !strings.Contains(v, "HMARKT") {
		t.Errorf("the denied access is not shown:\n%s", v)
	}
}

func TestAddRecordAndContactByKeys(t *testing.T) {
	f := newFixture(t)
	file := t.TempDir() + "/big.bin"
	if err := os.WriteFile(file, bytes.Repeat([]byte("medwallet "), 300_000), 0o600); err != nil {
		t.Fatal(err)
	}
	carol, err := wallet.Init(wallet.Config{Home: t.TempDir(), Keystore: keystore.NewMemory()}, "Carol", "clinician")
	if err != nil {
		t.Fatal(err)
	}
	tm := teatest.NewTestModel(t, f.model(time.Hour), teatest.WithInitialTermSize(80, 24))
	waitFor(t, tm, "labs 2026")
	tm.Send(runes("a"))
	tm.Type(file)
	tm.Send(keyMsgTab)
	tm.Type("big one")
	tm.Send(keyMsgEnter)
	waitFor(t, tm, "added binary record", "big one")
	tm.Send(runes("2"))
	waitFor(t, tm, "Dr Bob")
	tm.Send(runes("a"))
	tm.Type("Carol")
	tm.Send(keyMsgTab)
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(carol.Card().String()), Paste: true})
	tm.Send(keyMsgEnter)
	waitFor(t, tm, "added Carol (clinician")
	tm.Send(runes("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	recs, err := f.alice.ListRecords(context.Background())
	if err != nil || len(recs) != 2 {
		t.Fatalf("records after the add: %+v, %v", recs, err)
	}
	added := recs[0]
	if added.ID == f.rec.ID {
		added = recs[1]
	}
	if added.Metadata.Label != "big one" || added.Metadata.Size != 3_000_000 {
		t.Errorf("added record: %+v", added)
	}
	cs, err := f.alice.Contacts()
	if err != nil || len(cs) != 2 {
		t.Fatalf("contacts after the add: %+v, %v", cs, err)
	}
}

// No screen shows a record's contents or a secret.
func TestViewsHoldNoContents(t *testing.T) {
	f := newFixture(t)
	m := f.model(time.Hour)
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 60})
	recs, err := f.alice.ListRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m.Update(loaded{0, recordsMsg{recs: recs}})
	id, err := f.alice.Identity()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{`"status":"final"`, "Observation\",\"id\"", id.Age.String()}
	for tab := range tabNames {
		for _, ks := range [][]tea.KeyMsg{{runes(string(rune('1' + tab)))}, {keyMsgEnter}} {
			v := keys(m, ks...).View()
			for _, s := range secrets {
				if strings.Contains(v, s) {
					t.Errorf("tab %d shows %q", tab+1, s)
				}
			}
		}
	}
}

func TestViewAddProgress(t *testing.T) {
	m := filled(t)
	run := &addRun{total: 1000}
	run.Add(400)
	m.screens[0].(*recordsModel).running = run
	golden.RequireEqual(t, []byte(m.View()))
}

func TestMouse(t *testing.T) {
	m := filled(t)
	m.Update(tea.MouseMsg{X: 20, Y: 0, Action: tea.MouseActionPress, Button: tea.MouseButtonLeft}) // "2 People"
	if m.tab != 1 {
		t.Fatalf("click on the tab bar: tab %d", m.tab+1)
	}
	keys(m, runes("1"))
	m.Update(tea.MouseMsg{Button: tea.MouseButtonWheelDown, Action: tea.MouseActionPress})
	if cur := m.screens[0].(*recordsModel).cur; cur != 1 {
		t.Errorf("wheel down: cursor %d", cur)
	}
}

// Before the grants screen has read the wallet it says so, and n waits: it
// neither opens an empty form nor claims there are no contacts.
func TestGrantsBeforeLoad(t *testing.T) {
	f := newFixture(t)
	m := f.model(time.Hour)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	keys(m, runes("3"), runes("n"))
	if out := m.View(); !strings.Contains(out, "Reading grants") || strings.Contains(out, "No grants yet") || strings.Contains(out, "needs a contact") {
		t.Fatalf("grants screen before its load:\n%s", out)
	}
	m.Update(loaded{0, grantsMsg{contacts: contacts, records: recs}})
	keys(m, runes("n"))
	if out := m.View(); !strings.Contains(out, contacts[0].Name) {
		t.Fatalf("n after the load opens no form:\n%s", out)
	}
}
