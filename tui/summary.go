package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/wallet"
)

// summaryModel is a record's summary, decrypted in memory by
// wallet.ShowRecord: one tab per section in a scrollable viewport, and a
// result's trend drawn in place. It lives inside the records screen, so
// the lock (which rebuilds every screen) drops it at once.
type summaryModel struct {
	c       *common
	rec     wallet.RecordInfo
	sum     *recordview.Summary
	err     error
	tab     int
	vp      viewport.Model
	asking  bool // the trend prompt is open
	input   textinput.Model
	trend   *recordview.Trend
	loading string // what is being read, "" when nothing
}

type summaryMsg struct {
	id  string
	sum *recordview.Summary
	err error
}

var errNoSections = errors.New("the record's summary is empty")

type trendMsg struct {
	trend *recordview.Trend
	err   error
}

var (
	keySection     = key.NewBinding(key.WithKeys("tab", "right", "l"), key.WithHelp("tab/←→", "section"))
	keyPrevSection = key.NewBinding(key.WithKeys("shift+tab", "left", "h"))
	keyScroll      = key.NewBinding(key.WithKeys("up", "down", "pgup", "pgdown"), key.WithHelp("↑↓ pgup pgdn", "scroll"))
	keyTrend       = key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "trend"))
	keyInfo        = key.NewBinding(key.WithKeys("i"), key.WithHelp("i", "info"))
	keyDraw        = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "draw"))
)

// openSummary starts reading the record's summary.
func openSummary(c *common, rec wallet.RecordInfo) (*summaryModel, tea.Cmd) {
	in := textinput.New()
	in.Prompt = "Trend of (result name or LOINC code): "
	s := &summaryModel{c: c, rec: rec, input: in, loading: "reading and decrypting the record in memory..."}
	s.vp = viewport.New(c.width, max(c.bodyHeight()-3, 1))
	id := rec.ID
	cmd := c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
		_, sum, err := w.ShowRecord(ctx, id, wallet.RecordOptions{})
		return summaryMsg{id: id, sum: sum, err: err}
	})
	return s, cmd
}

func (s *summaryModel) keys() []key.Binding {
	if s.asking {
		return []key.Binding{keyDraw, keyCancel}
	}
	if s.trend != nil {
		return []key.Binding{keyScroll, keyBack, keyLock}
	}
	ks := []key.Binding{keySection, keyScroll}
	if s.rec.Metadata.Format == "fhir-r4" {
		ks = append(ks, keyTrend)
	}
	return append(ks, keyInfo, keyBack, keyLock)
}

// update handles the summary's messages and keys; back reports esc on the
// summary itself (the records screen closes it).
func (s *summaryModel) update(msg tea.Msg) (cmd tea.Cmd, back, info bool) {
	switch msg := msg.(type) {
	case summaryMsg:
		if msg.id != s.rec.ID {
			return nil, false, false
		}
		s.loading = ""
		s.sum, s.err = msg.sum, msg.err
		if s.sum != nil {
			// An empty "other" section is no tab.
			kept := s.sum.Sections[:0:0]
			for _, sec := range s.sum.Sections {
				if sec.Key != recordview.KeyOther || sec.Count > 0 {
					kept = append(kept, sec)
				}
			}
			s.sum.Sections = kept
			if len(kept) == 0 {
				s.sum = nil
				s.err = errNoSections
			}
		}
		s.tab = 0
		s.refresh()
		return nil, false, false
	case trendMsg:
		s.loading = ""
		if msg.err != nil {
			return func() tea.Msg { return doneMsg{err: msg.err} }, false, false
		}
		s.trend = msg.trend
		s.refresh()
		s.vp.GotoTop()
		return nil, false, false
	case tea.WindowSizeMsg:
		s.refresh()
		return nil, false, false
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil, false, false
}

func (s *summaryModel) key(msg tea.KeyMsg) (tea.Cmd, bool, bool) {
	if s.vp.Width != s.c.width || s.vp.Height != max(s.c.bodyHeight()-3, 1) {
		s.refresh() // the terminal was resized
	}
	switch {
	case s.asking:
		switch {
		case key.Matches(msg, keyCancel):
			s.asking = false
			s.input.Blur()
			return nil, false, false
		case key.Matches(msg, keyDraw):
			s.asking = false
			s.input.Blur()
			return s.drawTrend(strings.TrimSpace(s.input.Value())), false, false
		}
		var cmd tea.Cmd
		s.input, cmd = s.input.Update(msg)
		return cmd, false, false
	case key.Matches(msg, keyBack):
		if s.trend != nil {
			s.trend = nil
			s.refresh()
			return nil, false, false
		}
		return nil, true, false
	case s.trend == nil && key.Matches(msg, keyInfo):
		return nil, false, true
	case s.trend == nil && s.sum != nil && key.Matches(msg, keySection):
		s.tab = (s.tab + 1) % len(s.sum.Sections)
		s.refresh()
		s.vp.GotoTop()
		return nil, false, false
	case s.trend == nil && s.sum != nil && key.Matches(msg, keyPrevSection):
		s.tab = (s.tab + len(s.sum.Sections) - 1) % len(s.sum.Sections)
		s.refresh()
		s.vp.GotoTop()
		return nil, false, false
	case s.trend == nil && s.sum != nil && s.rec.Metadata.Format == "fhir-r4" && key.Matches(msg, keyTrend):
		s.asking = true
		s.input.SetValue(s.suggestTrend())
		s.input.CursorEnd()
		s.input.Focus()
		return nil, false, false
	}
	var cmd tea.Cmd
	s.vp, cmd = s.vp.Update(msg)
	return cmd, false, false
}

// suggestTrend is the newest numeric result of the section shown.
func (s *summaryModel) suggestTrend() string {
	for _, it := range s.sum.Sections[s.tab].Items {
		if it.Value != nil {
			return it.Title
		}
	}
	return ""
}

func (s *summaryModel) drawTrend(query string) tea.Cmd {
	if query == "" {
		return nil
	}
	s.loading = "reading the records for " + query + "..."
	return s.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
		t, err := w.Trend(ctx, query, wallet.TrendOptions{})
		return trendMsg{t, err}
	})
}

// refresh lays out the viewport's content for the current size, section
// or trend.
func (s *summaryModel) refresh() {
	c := s.c
	s.vp.Width = c.width
	s.vp.Height = max(c.bodyHeight()-3, 1)
	var b strings.Builder
	switch {
	case s.trend != nil:
		_ = recordview.RenderTrend(&b, s.trend, min(c.width, 120))
	case s.sum != nil && len(s.sum.Sections) > 0:
		sec := s.sum.Sections[s.tab]
		one := &recordview.Summary{Format: s.sum.Format, Sections: []recordview.Section{sec}, Partial: s.sum.Partial}
		_ = recordview.Render(&b, one, recordview.RenderOptions{Width: c.width})
		// The first line names the format, shown in the title already.
		text := b.String()
		if i := strings.Index(text, "\n"); i >= 0 {
			text = strings.TrimLeft(text[i+1:], "\n")
		}
		b.Reset()
		b.WriteString(text)
	}
	s.vp.SetContent(b.String())
}

// drop forgets the decrypted content (the lock, and leaving the view).
func (s *summaryModel) drop() {
	s.sum, s.trend = nil, nil
	s.vp.SetContent("")
	s.input.SetValue("")
}

func (s *summaryModel) view() string {
	c := s.c
	var b strings.Builder
	name := s.rec.Metadata.Label
	if name == "" {
		name = shortID(s.rec.ID, 12)
	}
	title := "Record " + name + " — " + s.rec.Metadata.Format
	if s.sum != nil && s.sum.Title != "" {
		title += ": " + s.sum.Title
	}
	b.WriteString(c.st.title.Render(cell(title, c.width)) + "\n")
	switch {
	case s.err != nil:
		b.WriteString("\n" + c.st.errText.Render("error: "+errorText(s.err)))
		return b.String()
	case s.loading != "" && s.sum == nil:
		b.WriteString("\n" + s.loading)
		return b.String()
	case s.sum == nil:
		return b.String()
	}
	switch {
	case s.asking:
		b.WriteString(s.input.View() + "\n")
	case s.loading != "":
		b.WriteString(s.loading + "\n")
	case s.trend != nil:
		b.WriteString(c.st.dim.Render("trend across your records") + "\n")
	default:
		b.WriteString(s.tabLine() + "\n")
	}
	b.WriteString("\n")
	b.WriteString(s.vp.View())
	return b.String()
}

// tabLine shows the section tabs, scrolled so the current one is seen.
func (s *summaryModel) tabLine() string {
	c := s.c
	tabs := make([]string, len(s.sum.Sections))
	for i, sec := range s.sum.Sections {
		label := sec.Title
		if len(sec.Items) > 0 || sec.Key != recordview.KeyOther && sec.Text == "" {
			label = fmt.Sprintf("%s %d", sec.Title, sec.Count)
		}
		if i == s.tab {
			tabs[i] = c.st.activeTab.Render("[" + label + "]")
		} else {
			tabs[i] = c.st.tab.Render(" " + label + " ")
		}
	}
	from := 0
	for from < s.tab && lipgloss.Width(strings.Join(tabs[from:s.tab+1], "")) > c.width-2 {
		from++
	}
	line := strings.Join(tabs[from:], "")
	if from > 0 {
		line = "‹" + line
	}
	if lipgloss.Width(line) > c.width {
		line = lipgloss.NewStyle().MaxWidth(c.width-1).Render(line) + "›"
	}
	return line
}
