// Package tui is medwallet's interactive terminal interface: records,
// people, grants, the access log, the inbox and the identity of one wallet,
// on screens built with bubbletea. Every action calls the same wallet
// functions as the command line; this package only presents them.
package tui

import (
	"context"
	"github.com/charmbracelet/bubbles/textinput"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/medwallet/medwallet/internal/termquiet"
	"github.com/medwallet/medwallet/wallet"
)

// Package termquiet kept bubbletea's init from querying the terminal on
// stdout; bubbletea, which tui imports, has initialised by now, so TERM
// goes back to the user's.
func init() { termquiet.Restore() }

// DefaultIdle is the idle time after which the TUI locks itself.
const DefaultIdle = 5 * time.Minute

// callTimeout bounds one wallet call started from the TUI.
const callTimeout = 2 * time.Minute

// styles are the shared styles; under NO_COLOR (the Ascii profile) they
// render as plain text, so every state also has a textual marker.
type styles struct {
	tab, activeTab, title, help, selected, denied, fresh, errText, note, dim lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	s := r.NewStyle()
	return styles{
		tab:       s.Padding(0, 1),
		activeTab: s.Padding(0, 1).Bold(true).Reverse(true),
		title:     s.Bold(true),
		help:      s.Faint(true),
		selected:  s.Bold(true).Foreground(lipgloss.Color("12")),
		denied:    s.Bold(true).Foreground(lipgloss.Color("9")),
		fresh:     s.Foreground(lipgloss.Color("10")),
		errText:   s.Foreground(lipgloss.Color("9")),
		note:      s.Foreground(lipgloss.Color("10")),
		dim:       s.Faint(true),
	}
}

// common is the state every screen shares: size, styles and the opened
// wallet (nil while locked). Wallet calls are serialised by mu.
type common struct {
	width, height int
	st            styles
	r             *lipgloss.Renderer
	w             *wallet.Wallet
	epoch         int // incremented at each lock: results of older calls are dropped
	mu            *sync.Mutex
	opts          Options
	now           func() time.Time // the idle clock; tests replace it
}

// loaded carries the result of a wallet call with the epoch it started in.
type loaded struct {
	epoch int
	msg   tea.Msg
}

// call runs f on the wallet in a command; nil while locked.
func (c *common) call(f func(ctx context.Context, w *wallet.Wallet) tea.Msg) tea.Cmd {
	w, epoch, mu := c.w, c.epoch, c.mu
	if w == nil {
		return nil
	}
	return func() tea.Msg {
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		return loaded{epoch, f(ctx, w)}
	}
}

// bodyHeight is the number of lines a screen may use: the terminal less the
// tab bar, the status line and the help line.
func (c *common) bodyHeight() int { return max(c.height-4, 3) }

// doneMsg reports the end of an action: a note or an error for the status
// line, and the screens to reload.
type doneMsg struct {
	note   string
	err    error
	reload bool
}

// cursor list helpers

func clamp(i, n int) int {
	if i >= n {
		i = n - 1
	}
	return max(i, 0)
}

// window returns the range [from, to) of n items to show in h lines so that
// cur is visible.
func window(cur, n, h int) (int, int) {
	if n <= h {
		return 0, n
	}
	from := max(cur-h/2, 0)
	if from+h > n {
		from = n - h
	}
	return from, from + h
}

// row renders a list line with a textual cursor marker.
func (c *common) row(selected bool, s string) string {
	if selected {
		return c.st.selected.Render("> " + s)
	}
	return "  " + s
}

func shortID(s string, n int) string { return s[:min(n, len(s))] }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dateText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// cell cuts s to n display cells and pads it to n.
func cell(s string, n int) string {
	if lipgloss.Width(s) > n {
		r := []rune(s)
		for lipgloss.Width(string(r)) > n-1 {
			r = r[:len(r)-1]
		}
		s = string(r) + "…"
	}
	return padCell(s, n)
}

// padCell pads s with spaces to n display cells (%-Ns counts bytes).
func padCell(s string, n int) string {
	if w := lipgloss.Width(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}

func dayText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

// keys shared by the list screens.
var (
	keyUp     = key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑↓", "move"))
	keyDown   = key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓", "down"))
	keyEnter  = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details"))
	keyBack   = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back"))
	keyReload = key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "reload"))
	keyTab    = key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next field"))
	keySubmit = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "save"))
	keyCancel = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))
)

// moveCursor handles up and down on a list of n items.
func moveCursor(msg tea.KeyMsg, cur, n int) int {
	switch {
	case key.Matches(msg, keyUp):
		return clamp(cur-1, n)
	case key.Matches(msg, keyDown):
		return clamp(cur+1, n)
	}
	return cur
}

// focusOne focuses the form field at index i and blurs the others.
func focusOne(i int, fields ...*textinput.Model) {
	for j, f := range fields {
		if j == i {
			f.Focus()
		} else {
			f.Blur()
		}
	}
}
