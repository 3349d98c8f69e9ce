package tui

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/medwallet/medwallet/wallet"
)

// Options configure the TUI.
type Options struct {
	// Idle is the time without a key or mouse event after which the screen
	// is cleared and the keyring must be unlocked again; 0 means DefaultIdle.
	Idle time.Duration
	// Poll is how often the access log pulls the ledger; 0 means 2s.
	Poll time.Duration
	// Unlock opens the wallet afresh and reads its secrets from the
	// keyring, with passphrase for the file backend. It is called on the
	// lock screen.
	Unlock func(passphrase string) (*wallet.Wallet, error)
	// ImportDir is where the inbox imports records; "" means ".".
	ImportDir string
	// Renderer draws the styles; nil means lipgloss's default renderer.
	Renderer *lipgloss.Renderer
}

// screen is one tab: its own Update and a pure View.
type screen interface {
	update(msg tea.Msg) (screen, tea.Cmd)
	view() string
	// keys are the bindings for the help line.
	keys() []key.Binding
	// capturing is true while a text field has the focus, so that global
	// keys (q, digits, tab) go to the screen.
	capturing() bool
	// load starts the calls that fill the screen.
	load() tea.Cmd
}

var tabNames = []string{"Records", "People", "Grants", "Access log", "Inbox", "Identity"}

// Model is the TUI's root model.
type Model struct {
	c       *common
	tab     int
	screens []screen
	lock    *lockModel // non-nil while locked
	last    time.Time  // last key or mouse event
	ticking bool       // an idle check is scheduled
	status  string
	isErr   bool
	help    help.Model
}

// Global keys.
var (
	keyQuit    = key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit"))
	keyNextTab = key.NewBinding(key.WithKeys("tab", "right"), key.WithHelp("tab", "next screen"))
	keyPrevTab = key.NewBinding(key.WithKeys("shift+tab", "left"))
	keyLock    = key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "lock"))
	keyTabs    = key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6"), key.WithHelp("1-6", "screen"))
)

// New returns the TUI for the unlocked wallet w (nil starts locked).
func New(w *wallet.Wallet, opts Options) *Model {
	if opts.Idle <= 0 {
		opts.Idle = DefaultIdle
	}
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	if opts.ImportDir == "" {
		opts.ImportDir = "."
	}
	r := opts.Renderer
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	c := &common{now: time.Now, width: 80, height: 24, st: newStyles(r), r: r, w: w, mu: &sync.Mutex{}, opts: opts}
	m := &Model{c: c, help: help.New()}
	m.help.Styles.ShortKey = c.st.help
	m.help.Styles.ShortDesc = c.st.help
	m.help.Styles.ShortSeparator = c.st.help
	m.resetScreens()
	m.last = c.now()
	if w == nil {
		m.lock = newLock(c)
	}
	return m
}

func (m *Model) resetScreens() {
	c := m.c
	m.screens = []screen{newRecords(c), newPeople(c), newGrants(c), newAccessLog(c), newInbox(c), newIdentity(c)}
}

// Init implements tea.Model.
func (m *Model) Init() tea.Cmd {
	if m.lock != nil {
		return m.lock.init()
	}
	return tea.Batch(m.loadAll(), m.idleTick())
}

func (m *Model) loadAll() tea.Cmd {
	cmds := make([]tea.Cmd, 0, len(m.screens))
	for _, s := range m.screens {
		cmds = append(cmds, s.load())
	}
	return tea.Batch(cmds...)
}

// idleMsg asks the model to check for inactivity. One check at a time is
// scheduled, for when the idle time would run out.
type idleMsg struct{}

func (m *Model) idleTick() tea.Cmd {
	if m.ticking || m.lock != nil {
		return nil
	}
	m.ticking = true
	wait := m.c.opts.Idle - m.c.now().Sub(m.last)
	return tea.Tick(max(wait, time.Millisecond), func(time.Time) tea.Msg { return idleMsg{} })
}

// Locked reports whether the lock screen is shown.
func (m *Model) Locked() bool { return m.lock != nil }

// lockNow drops the wallet and every screen's content.
func (m *Model) lockNow() tea.Cmd {
	m.c.w = nil
	m.c.epoch++
	m.resetScreens()
	m.status, m.isErr = "locked after inactivity or on request", false
	m.lock = newLock(m.c)
	return tea.Batch(tea.ClearScreen, m.lock.init())
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.c.width, m.c.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		return m, nil
	case idleMsg:
		m.ticking = false
		if m.lock != nil {
			return m, nil
		}
		if m.c.now().Sub(m.last) >= m.c.opts.Idle {
			return m, m.lockNow()
		}
		return m, m.idleTick()
	case unlockedMsg:
		if m.lock == nil {
			return m, nil
		}
		if msg.err != nil {
			m.lock.fail(msg.err)
			return m, nil
		}
		m.c.w = msg.w
		m.lock = nil
		m.status, m.isErr = "unlocked", false
		m.last = m.c.now()
		return m, tea.Batch(m.loadAll(), m.idleTick())
	case loaded:
		if msg.epoch != m.c.epoch || m.lock != nil {
			return m, nil // started before a lock: drop it
		}
		return m.Update(msg.msg)
	case doneMsg:
		if msg.err != nil {
			m.status, m.isErr = errorText(msg.err), true
		} else {
			m.status, m.isErr = msg.note, false
		}
		if msg.reload && msg.err == nil {
			return m, m.loadAll()
		}
		return m, nil
	case tea.KeyMsg, tea.MouseMsg:
		m.last = m.c.now()
		if m.lock != nil {
			if k, ok := msg.(tea.KeyMsg); ok && k.String() == "ctrl+c" {
				return m, tea.Quit
			}
			var cmd tea.Cmd
			m.lock, cmd = m.lock.update(msg)
			return m, cmd
		}
		cmds := []tea.Cmd{m.idleTick()}
		if mm, ok := msg.(tea.MouseMsg); ok {
			k, ok := m.mouse(mm)
			if !ok {
				return m, cmds[0]
			}
			msg = k
		}
		if k, ok := msg.(tea.KeyMsg); ok {
			if cmd, done := m.globalKey(k); done {
				return m, tea.Batch(append(cmds, cmd)...)
			}
		}
		s, cmd := m.screens[m.tab].update(msg)
		m.screens[m.tab] = s
		return m, tea.Batch(append(cmds, cmd)...)
	}
	if m.lock != nil {
		return m, nil
	}
	// Data and ticks go to every screen: each ignores what is not its own.
	var cmds []tea.Cmd
	for i, s := range m.screens {
		s, cmd := s.update(msg)
		m.screens[i] = s
		cmds = append(cmds, cmd)
	}
	return m, tea.Batch(cmds...)
}

// mouse turns the wheel into up and down keys and a click on the tab bar
// into the screen's digit; other mouse events only count as activity.
func (m *Model) mouse(mm tea.MouseMsg) (tea.KeyMsg, bool) {
	switch {
	case mm.Button == tea.MouseButtonWheelUp:
		return tea.KeyMsg{Type: tea.KeyUp}, true
	case mm.Button == tea.MouseButtonWheelDown:
		return tea.KeyMsg{Type: tea.KeyDown}, true
	case mm.Action == tea.MouseActionPress && mm.Button == tea.MouseButtonLeft && mm.Y == 0 && !m.screens[m.tab].capturing():
		x := 0
		for i, t := range m.tabs() {
			x += lipgloss.Width(t)
			if mm.X < x {
				return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{rune('1' + i)}}, true
			}
		}
	}
	return tea.KeyMsg{}, false
}

func (m *Model) tabs() []string {
	tabs := make([]string, len(tabNames))
	for i, n := range tabNames {
		label := fmt.Sprintf("%d %s", i+1, n)
		if i == m.tab {
			tabs[i] = m.c.st.activeTab.Render("[" + label + "]")
		} else {
			tabs[i] = m.c.st.tab.Render(" " + label + " ")
		}
	}
	return tabs
}

// globalKey handles the keys that work on every screen.
func (m *Model) globalKey(k tea.KeyMsg) (tea.Cmd, bool) {
	if k.String() == "ctrl+c" {
		return tea.Quit, true
	}
	if key.Matches(k, keyLock) {
		return m.lockNow(), true
	}
	if m.screens[m.tab].capturing() {
		return nil, false
	}
	switch {
	case key.Matches(k, keyQuit):
		return tea.Quit, true
	case key.Matches(k, keyNextTab):
		m.tab = (m.tab + 1) % len(m.screens)
		return nil, true
	case key.Matches(k, keyPrevTab):
		m.tab = (m.tab + len(m.screens) - 1) % len(m.screens)
		return nil, true
	case key.Matches(k, keyTabs):
		m.tab = int(k.String()[0] - '1')
		return nil, true
	}
	return nil, false
}

// View implements tea.Model.
func (m *Model) View() string {
	c := m.c
	var b strings.Builder
	if m.lock != nil {
		b.WriteString(c.st.title.Render("medwallet — locked"))
		b.WriteString("\n\n")
		b.WriteString(m.lock.view())
	} else {
		b.WriteString(lipgloss.JoinHorizontal(lipgloss.Top, m.tabs()...))
		b.WriteString("\n")
		b.WriteString(lipgloss.NewStyle().Height(c.bodyHeight()).MaxHeight(c.bodyHeight()).Render(m.screens[m.tab].view()))
	}
	b.WriteString("\n")
	switch {
	case m.status == "":
	case m.isErr:
		b.WriteString(c.st.errText.Render("error: " + m.status))
	default:
		b.WriteString(c.st.note.Render(m.status))
	}
	b.WriteString("\n")
	b.WriteString(m.helpLine())
	return lipgloss.NewStyle().MaxWidth(c.width).MaxHeight(c.height).Render(b.String())
}

// keyMap is the help line's bindings: the screen's own, then the global
// ones. It implements help.KeyMap.
type keyMap []key.Binding

// ShortHelp implements help.KeyMap.
func (k keyMap) ShortHelp() []key.Binding { return k }

// FullHelp implements help.KeyMap.
func (k keyMap) FullHelp() [][]key.Binding { return [][]key.Binding{k} }

var _ help.KeyMap = keyMap(nil)

func (m *Model) helpLine() string {
	var ks keyMap
	if m.lock != nil {
		ks = m.lock.keys()
	} else {
		ks = m.screens[m.tab].keys()
		if !m.screens[m.tab].capturing() {
			ks = append(ks, keyTabs, keyLock, keyQuit)
		}
	}
	return m.help.View(ks)
}
