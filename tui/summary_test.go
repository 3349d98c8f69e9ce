package tui

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/wallet"
)

// markerBundle is a FHIR record whose patient name is a marker that must
// never reach the disk in plaintext.
const markerBundle = `{"resourceType":"Bundle","type":"collection","entry":[
 {"resource":{"resourceType":"Patient","name":[{"given":["Zyxwoq"],"family":"Plaintextmarker"}],"birthDate":"1970-01-01","gender":"female"}},
 {"resource":{"resourceType":"AllergyIntolerance","code":{"text":"Peanut"},"recordedDate":"2020-02-01","criticality":"high"}},
 {"resource":{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"effectiveDateTime":"2019-01-01","valueQuantity":{"value":88,"unit":"mg/dL"}}},
 {"resource":{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"effectiveDateTime":"2020-01-01","valueQuantity":{"value":101,"unit":"mg/dL"},"referenceRange":[{"low":{"value":70},"high":{"value":99}}]}},
 {"resource":{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"effectiveDateTime":"2020-06-01","valueQuantity":{"value":95,"unit":"mg/dL"}}}
]}`

const marker = "Plaintextmarker"

func markerSummary(t *testing.T) *recordview.Summary {
	t.Helper()
	s, err := recordview.SummarizeBytes([]byte(markerBundle), vault.Metadata{Format: vault.FormatFHIR})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// summaryShown is the filled model with the first record's summary open
// and loaded (without calling the wallet).
func summaryShown(t *testing.T) *Model {
	m := keys(filled(t), keyMsgEnter)
	m.(*Model).Update(loaded{0, summaryMsg{id: recs[0].ID, sum: markerSummary(t)}})
	return m.(*Model)
}

func TestViewSummary(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []tea.KeyMsg
	}{
		{"summary_patient", nil},
		{"summary_results", []tea.KeyMsg{keyMsgTab, keyMsgTab, keyMsgTab, keyMsgTab, keyMsgTab}},
		{"summary_back_tab", []tea.KeyMsg{{Type: tea.KeyShiftTab}}},
		{"summary_trend_prompt", []tea.KeyMsg{keyMsgTab, keyMsgTab, keyMsgTab, keyMsgTab, keyMsgTab, runes("t")}},
		{"summary_info", []tea.KeyMsg{runes("i")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := keys(summaryShown(t), tc.keys...)
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

func TestSummaryKeys(t *testing.T) {
	m := summaryShown(t)
	if !strings.Contains(m.View(), marker) {
		t.Fatalf("the patient tab does not show the patient:\n%s", m.View())
	}
	// Global keys are the summary's while it is open: tab moves sections,
	// q does not quit, a digit does not switch screens.
	keys(m, runes("3"), runes("q"))
	if m.tab != 0 || m.screens[0].(*recordsModel).sum == nil {
		t.Fatal("a global key left the summary")
	}
	keys(m, keyMsgEsc)
	rs := m.screens[0].(*recordsModel)
	if rs.sum != nil || strings.Contains(m.View(), marker) {
		t.Fatal("esc kept the summary")
	}
	// A summary arriving after the view was closed is dropped.
	m.Update(loaded{0, summaryMsg{id: recs[0].ID, sum: markerSummary(t)}})
	if strings.Contains(m.View(), marker) {
		t.Error("a late summary was shown")
	}
	// A trend arrives and is drawn in place; esc returns to the section.
	m = summaryShown(t)
	tr := &recordview.Trend{Name: "Glucose", Unit: "mg/dL", Records: 1, Points: []recordview.TrendPoint{
		{Date: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), Value: 88, Unit: "mg/dL"},
		{Date: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Value: 101, Unit: "mg/dL"}}}
	m.Update(loaded{0, trendMsg{trend: tr}})
	if v := m.View(); !strings.Contains(v, "2 values from 2019-01-01 to 2020-01-01") || !strings.Contains(v, "┤") {
		t.Errorf("trend not drawn:\n%s", v)
	}
	keys(m, keyMsgEsc)
	if v := m.View(); !strings.Contains(v, marker) {
		t.Errorf("esc from the trend did not return to the summary:\n%s", v)
	}
}

// TestLockDropsSummary: ctrl+l and the idle lock drop the decrypted
// summary at once, and a summary read before the lock that arrives after
// it is dropped too.
func TestLockDropsSummary(t *testing.T) {
	for _, how := range []string{"ctrl+l", "idle"} {
		t.Run(how, func(t *testing.T) {
			m := summaryShown(t)
			if how == "ctrl+l" {
				m.Update(tea.KeyMsg{Type: tea.KeyCtrlL})
			} else {
				now := m.last
				m.c.now = func() time.Time { return now.Add(time.Hour) }
				m.Update(idleMsg{})
			}
			if !m.Locked() {
				t.Fatal("not locked")
			}
			if m.screens[0].(*recordsModel).sum != nil || strings.Contains(m.View(), marker) {
				t.Error("the summary survived the lock")
			}
			m.Update(loaded{0, summaryMsg{id: recs[0].ID, sum: markerSummary(t)}})
			if strings.Contains(m.View(), marker) {
				t.Error("a summary read before the lock was shown after it")
			}
		})
	}
}

// TestSummaryByKeys opens a real record's summary, draws a trend, locks,
// and then finds no plaintext in the wallet's home or the temporary
// directory.
func TestSummaryByKeys(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := newFixture(t)
	if _, err := f.alice.AddRecord(context.Background(), strings.NewReader(markerBundle), wallet.AddRecordOptions{Label: "marker"}); err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	var ahead atomic.Int64
	m := f.model(time.Hour)
	m.c.now = func() time.Time { return base.Add(time.Duration(ahead.Load())) }
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	waitFor(t, tm, "labs 2026", "marker")
	list, err := f.alice.ListRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if r.Metadata.Label == "marker" {
			break
		}
		tm.Send(keyMsgDown)
	}
	tm.Send(keyMsgEnter)
	waitFor(t, tm, "Zyxwoq "+marker)
	for range 5 {
		tm.Send(keyMsgTab)
	}
	waitFor(t, tm, "value 101 mg/dL; range 70-99; flag H")
	tm.Send(runes("t"))
	waitFor(t, tm, "Trend of")
	tm.Send(keyMsgEnter)
	waitFor(t, tm, "3 values from 2019-01-01 to 2020-06-01")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlL})
	waitFor(t, tm, "The wallet is locked")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if fm.screens[0].(*recordsModel).sum != nil || strings.Contains(fm.View(), marker) {
		t.Error("the summary survived the lock")
	}
	for _, dir := range []string{f.cfg.Home, tmp} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(marker)) {
				t.Errorf("%s holds the record's plaintext", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
