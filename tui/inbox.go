package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/medwallet/medwallet/wallet"
)

// inboxModel lists the grants made to this wallet and imports one.
type inboxModel struct {
	c      *common
	loaded bool
	grants []wallet.GrantInfo
	err    error
	cur    int
}

type inboxMsg struct {
	grants []wallet.GrantInfo
	err    error
}

var keyImport = key.NewBinding(key.WithKeys("i"), key.WithHelp("i", "import"))

func newInbox(c *common) *inboxModel { return &inboxModel{c: c} }

func (m *inboxModel) load() tea.Cmd {
	return m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
		gs, err := w.Inbox(ctx)
		return inboxMsg{gs, err}
	})
}

func (m *inboxModel) capturing() bool { return false }

func (m *inboxModel) keys() []key.Binding {
	return []key.Binding{keyUp, keyImport, keyReload}
}

func (m *inboxModel) update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case inboxMsg:
		m.loaded, m.grants, m.err = true, msg.grants, msg.err
		m.cur = clamp(m.cur, len(m.grants))
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, keyImport):
			if len(m.grants) == 0 {
				return m, nil
			}
			g := m.grants[m.cur]
			if g.Status != wallet.GrantActive {
				return m, func() tea.Msg {
					return doneMsg{err: fmt.Errorf("grant %s is %s", shortID(g.ID.String(), 12), g.Status)}
				}
			}
			dir, ref := m.c.opts.ImportDir, g.ID.String()
			return m, m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
				recs, err := w.Import(ctx, wallet.ImportOptions{Grant: ref, OutDir: dir})
				if err != nil {
					return doneMsg{err: errors.Join(err, fmt.Errorf("%d record(s) imported before the error", len(recs)))}
				}
				return doneMsg{note: fmt.Sprintf("imported %d record(s) into %s; they are decrypted on this disk now", len(recs), dir)}
			})
		case key.Matches(msg, keyReload):
			return m, m.load()
		default:
			m.cur = moveCursor(msg, m.cur, len(m.grants))
		}
	}
	return m, nil
}

func (m *inboxModel) view() string {
	c := m.c
	var b strings.Builder
	switch {
	case m.err != nil:
		return c.st.errText.Render("error: " + errorText(m.err))
	case !m.loaded:
		return "Pulling the ledger..."
	case len(m.grants) == 0:
		return "No grants made to you yet."
	}
	fmt.Fprintf(&b, "  %-10s  %-12s  %-13s  %-8s  %-10s  %s\n", "GRANT", "FROM", "STATUS", "PURPOSE", "EXPIRES", "RECORDS")
	from, to := window(m.cur, len(m.grants), c.bodyHeight()-2)
	for i := from; i < to; i++ {
		g := m.grants[i]
		line := fmt.Sprintf("%-10s  %s  %-13s  %-8s  %-10s  %s", shortID(g.ID.String(), 10), cell(who(g.AuthorName, g.Author.Short()), 12),
			g.Status, g.Purpose.Code, dayText(g.Expires), recordCount(g))
		b.WriteString(c.row(i == m.cur, line) + "\n")
	}
	b.WriteString(c.st.dim.Render("i imports the selected grant's records into " + m.c.opts.ImportDir))
	return b.String()
}
