package tui

import (
	"context"
	"errors"
	"fmt"
	"github.com/medwallet/medwallet/internal/units"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/medwallet/medwallet/wallet"
)

// recordsModel lists the records, shows one's metadata (never its
// contents), and adds a file with a progress bar.
type recordsModel struct {
	c       *common
	recs    []wallet.RecordInfo
	err     error
	cur     int
	detail  bool
	adding  bool // the add form is open
	path    textinput.Model
	label   textinput.Model
	focus   int
	running *addRun
	bar     progress.Model
	sum     *summaryModel // the summary being read, nil when closed
}

// addRun is an add in progress: the wallet's progress callback counts
// plaintext bytes.
type addRun struct {
	done  atomic.Int64
	total int64
}

// Add implements vault.Progress.
func (a *addRun) Add(n int64) { a.done.Add(n) }

type recordsMsg struct {
	recs []wallet.RecordInfo
	err  error
}

type addTickMsg struct{}

type recordAddedMsg struct{ done doneMsg }

func newRecords(c *common) *recordsModel {
	path := textinput.New()
	path.Prompt = "File:  "
	label := textinput.New()
	label.Prompt = "Label: "
	bar := progress.New(progress.WithoutPercentage(), progress.WithWidth(40), progress.WithFillCharacters('#', '.'),
		progress.WithColorProfile(c.r.ColorProfile()), progress.WithSolidFill("10"))
	return &recordsModel{c: c, path: path, label: label, bar: bar}
}

func (m *recordsModel) load() tea.Cmd {
	return m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
		recs, err := w.ListRecords(ctx)
		return recordsMsg{recs, err}
	})
}

func (m *recordsModel) capturing() bool { return m.adding || m.sum != nil }

var (
	keyAddFile = key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add"))
	keyRead    = key.NewBinding(key.WithKeys(keyEnter.Keys()...), key.WithHelp("enter", "read"))
)

func (m *recordsModel) keys() []key.Binding {
	switch {
	case m.running != nil:
		return nil
	case m.adding:
		return []key.Binding{keyTab, keySubmit, keyCancel}
	case m.detail:
		return []key.Binding{keyBack}
	case m.sum != nil:
		return m.sum.keys()
	}
	return []key.Binding{keyUp, keyRead, keyAddFile, keyReload}
}

func (m *recordsModel) update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case recordsMsg:
		m.recs, m.err = msg.recs, msg.err
		m.cur = clamp(m.cur, len(m.recs))
		return m, nil
	case addTickMsg:
		if m.running == nil {
			return m, nil
		}
		return m, addTick()
	case recordAddedMsg:
		m.running = nil
		d := msg.done
		return m, func() tea.Msg { return d }
	case summaryMsg, trendMsg:
		if m.sum == nil {
			return m, nil
		}
		cmd, _, _ := m.sum.update(msg)
		return m, cmd
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func addTick() tea.Cmd {
	return tea.Tick(100*time.Millisecond, func(time.Time) tea.Msg { return addTickMsg{} })
}

func (m *recordsModel) key(msg tea.KeyMsg) (screen, tea.Cmd) {
	switch {
	case m.running != nil:
		return m, nil
	case m.adding:
		switch {
		case key.Matches(msg, keyCancel):
			m.adding = false
			return m, nil
		case key.Matches(msg, keyTab), msg.String() == "shift+tab":
			m.focus = 1 - m.focus
			m.focusFields()
			return m, nil
		case key.Matches(msg, keySubmit):
			return m, m.start()
		}
		var cmd tea.Cmd
		if m.focus == 0 {
			m.path, cmd = m.path.Update(msg)
		} else {
			m.label, cmd = m.label.Update(msg)
		}
		return m, cmd
	case m.detail:
		if key.Matches(msg, keyBack) {
			m.detail = false
		}
		return m, nil
	case m.sum != nil:
		cmd, back, info := m.sum.update(msg)
		if back {
			m.sum.drop()
			m.sum = nil
		}
		m.detail = info
		return m, cmd
	}
	switch {
	case key.Matches(msg, keyRead) && len(m.recs) > 0:
		var cmd tea.Cmd
		m.sum, cmd = openSummary(m.c, m.recs[m.cur])
		return m, cmd
	case key.Matches(msg, keyInfo):
		m.detail = len(m.recs) > 0
	case key.Matches(msg, keyAddFile):
		m.adding, m.focus = true, 0
		m.path.SetValue("")
		m.label.SetValue("")
		m.focusFields()
	case key.Matches(msg, keyReload):
		return m, m.load()
	default:
		m.cur = moveCursor(msg, m.cur, len(m.recs))
	}
	return m, nil
}

func (m *recordsModel) focusFields() { focusOne(m.focus, &m.path, &m.label) }

// start opens the file and adds it with wallet.AddRecord, as 'record add' does.
func (m *recordsModel) start() tea.Cmd {
	file, label := strings.TrimSpace(m.path.Value()), m.label.Value()
	if file == "" {
		return func() tea.Msg { return doneMsg{err: errors.New("name a file to add")} }
	}
	f, err := os.Open(file)
	if err != nil {
		return func() tea.Msg { return doneMsg{err: err} }
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return func() tea.Msg { return doneMsg{err: fmt.Errorf("%q is not a regular file", file)} }
	}
	run := &addRun{total: st.Size()}
	call := m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
		defer f.Close()
		info, err := w.AddRecord(ctx, f, wallet.AddRecordOptions{RecordOptions: wallet.RecordOptions{Progress: run}, Label: label})
		if err != nil {
			return recordAddedMsg{doneMsg{err: err}}
		}
		return recordAddedMsg{doneMsg{note: fmt.Sprintf("added %s record %s", info.Metadata.Format, shortID(info.ID, 12)), reload: true}}
	})
	if call == nil {
		f.Close()
		return nil
	}
	m.adding, m.running = false, run
	return tea.Batch(call, addTick())
}

func (m *recordsModel) view() string {
	c := m.c
	var b strings.Builder
	switch {
	case m.running != nil:
		frac := 0.0
		if m.running.total > 0 {
			frac = min(float64(m.running.done.Load())/float64(m.running.total), 1)
		}
		fmt.Fprintf(&b, "%s\n\n%s %3.0f%%\n", c.st.title.Render("Adding a record"), m.bar.ViewAs(frac), frac*100)
		return b.String()
	case m.adding:
		fmt.Fprintf(&b, "%s\n\n%s\n%s\n\n%s\n", c.st.title.Render("Add a record"), m.path.View(), m.label.View(),
			c.st.dim.Render("The file is encrypted, erasure-coded and stored; its format is detected."))
		return b.String()
	case m.err != nil:
		return c.st.errText.Render("error: " + errorText(m.err))
	case len(m.recs) == 0:
		return "No records yet. Press a to add a file."
	case m.detail:
		return m.detailView(m.recs[m.cur])
	case m.sum != nil:
		return m.sum.view()
	}
	fmt.Fprintf(&b, "  %-12s  %-10s  %-7s  %9s  %-6s  %s\n", "ID", "CREATED", "FORMAT", "SIZE", "SHARES", "LABEL")
	from, to := window(m.cur, len(m.recs), c.bodyHeight()-1)
	for i := from; i < to; i++ {
		r := m.recs[i]
		line := fmt.Sprintf("%-12s  %-10s  %-7s  %9s  %-6s  %s", shortID(r.ID, 12), r.Created.UTC().Format("2006-01-02"),
			r.Metadata.Format, units.Size(r.Metadata.Size), fmt.Sprintf("%d/%d", r.K, r.N), r.Metadata.Label)
		b.WriteString(c.row(i == m.cur, line) + "\n")
	}
	return b.String()
}

func (m *recordsModel) detailView(r wallet.RecordInfo) string {
	md := r.Metadata
	types := strings.Join(md.ResourceTypes(), ", ")
	var b strings.Builder
	b.WriteString(m.c.st.title.Render("Record "+r.ID) + "\n\n")
	fmt.Fprintf(&b, "label:      %s\n", orDash(md.Label))
	fmt.Fprintf(&b, "format:     %s (%s)\n", md.Format, orDash(md.MediaType))
	fmt.Fprintf(&b, "size:       %s\n", units.Size(md.Size))
	fmt.Fprintf(&b, "created:    %s\n", dateText(r.Created))
	fmt.Fprintf(&b, "shares:     any %d of %d rebuild it\n", r.K, r.N)
	fmt.Fprintf(&b, "resources:  %s\n", orDash(types))
	fmt.Fprintf(&b, "manifest:   %s\n", r.ManifestHash.String())
	b.WriteString("\n" + m.c.st.dim.Render("Contents stay encrypted; enter reads a summary, decrypted in memory only."))
	return b.String()
}
