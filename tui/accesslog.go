package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/medwallet/medwallet/wallet"
)

// accessLogModel is the live access log: it pulls the ledger every
// Options.Poll, like 'medwallet log --watch', and marks the accesses that
// arrived while it was open. Denied accesses stand out.
type accessLogModel struct {
	c      *common
	loaded bool
	seen   map[string]bool
	fresh  map[string]bool
	items  []wallet.AccessInfo
	err    error
	cur    int
	polled bool // a poll is scheduled
}

type accessMsg struct {
	items []wallet.AccessInfo
	err   error
}

type pollMsg struct{}

// emergencyPurposes are the PurposeOfUse codes of emergency access, shown
// apart even when allowed.
var emergencyPurposes = map[string]bool{"ETREAT": true, "BTG": true, "ERTREAT": true}

func newAccessLog(c *common) *accessLogModel {
	return &accessLogModel{c: c, seen: map[string]bool{}, fresh: map[string]bool{}}
}

func (m *accessLogModel) load() tea.Cmd {
	return m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
		var pullErr error
		if w.HasNetwork() {
			_, pullErr = w.PullLedger(ctx)
		}
		as, err := w.AccessLog(ctx)
		if err == nil {
			err = pullErr
		}
		return accessMsg{as, err}
	})
}

func (m *accessLogModel) poll() tea.Cmd {
	epoch := m.c.epoch
	return tea.Tick(m.c.opts.Poll, func(time.Time) tea.Msg { return loaded{epoch, pollMsg{}} })
}

func (m *accessLogModel) capturing() bool { return false }

func (m *accessLogModel) keys() []key.Binding { return []key.Binding{keyUp} }

func (m *accessLogModel) update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case accessMsg:
		first := !m.loaded
		m.loaded, m.err = true, msg.err
		if msg.items != nil || msg.err == nil {
			for _, a := range msg.items {
				k := a.Entry.String()
				if !m.seen[k] {
					m.seen[k] = true
					m.fresh[k] = !first
				}
			}
			m.items = msg.items
		}
		m.cur = clamp(m.cur, len(m.items))
		if m.polled {
			return m, nil // a reload between two polls
		}
		m.polled = true
		return m, m.poll()
	case pollMsg:
		m.polled = false
		return m, m.load()
	case tea.KeyMsg:
		m.cur = moveCursor(msg, m.cur, len(m.items))
	}
	return m, nil
}

func (m *accessLogModel) view() string {
	c := m.c
	var b strings.Builder
	if m.err != nil {
		b.WriteString(c.st.errText.Render("error: "+errorText(m.err)) + "\n")
	}
	switch {
	case !m.loaded:
		b.WriteString("Pulling the ledger...")
		return b.String()
	case len(m.items) == 0:
		b.WriteString("No access to your records yet. New accesses appear here as they happen.")
		return b.String()
	}
	fmt.Fprintf(&b, "      %-16s  %-9s  %-15s  %-8s  %-8s  %s\n", "TIME", "DECISION", "REQUESTER", "PURPOSE", "RECORD", "REASON")
	// Newest first.
	n := len(m.items)
	from, to := window(m.cur, n, c.bodyHeight()-2)
	for i := from; i < to; i++ {
		a := m.items[n-1-i]
		mark := "  "
		if m.fresh[a.Entry.String()] {
			mark = c.st.fresh.Render("* ")
		}
		verdict, loud := "allowed", !a.Allow
		switch {
		case !a.Allow && a.Repeats > 1:
			verdict = fmt.Sprintf("DENIED×%d", a.Repeats) // a peer's summary of repeats within a minute
		case !a.Allow:
			verdict = "DENIED"
		case a.Emergency() || emergencyPurposes[a.Purpose]:
			verdict, loud = "EMERGENCY", true
		}
		line := fmt.Sprintf("%-16s  %-9s  %s  %-8s  %-8s  %s", dateText(a.Time), verdict, cell(who(a.RequesterName, a.Requester.Short()), 15),
			a.Purpose, shortID(a.Record, 8), reasonText(a))
		switch {
		case i == m.cur:
			line = c.row(true, line)
		case loud:
			line = c.st.denied.Render("  " + line)
		default:
			line = "  " + line
		}
		if loud {
			mark += c.st.denied.Render("! ")
		} else {
			mark += "  "
		}
		b.WriteString(mark + line + "\n")
	}
	b.WriteString(c.st.dim.Render("live: pulled every " + c.opts.Poll.String() + "; * new since opened, ! denied or emergency"))
	return b.String()
}

// reasonText is the decision's reason, with the clinician's stated reason
// for a break-glass access.
func reasonText(a wallet.AccessInfo) string {
	if a.Emergency() && a.EmergencyReason != "" {
		return fmt.Sprintf("%s: %q", a.Reason, a.EmergencyReason)
	}
	return string(a.Reason)
}
