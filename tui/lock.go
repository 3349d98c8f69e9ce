package tui

import (
	"errors"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// lockModel is the lock screen: a password field whose value unlocks the
// keyring again through Options.Unlock.
type lockModel struct {
	c       *common
	input   textinput.Model
	err     string
	working bool
}

type unlockedMsg struct {
	w   *wallet.Wallet
	err error
}

var keyUnlock = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "unlock"))
var keyQuitLocked = key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit"))

func newLock(c *common) *lockModel {
	in := textinput.New()
	in.Prompt = "Keyring passphrase: "
	in.EchoMode = textinput.EchoPassword
	in.EchoCharacter = '*'
	in.Focus()
	return &lockModel{c: c, input: in}
}

func (l *lockModel) init() tea.Cmd { return nil }

func (l *lockModel) fail(err error) {
	l.working = false
	l.input.SetValue("")
	switch {
	case errors.Is(err, keystore.ErrBadPassphrase):
		l.err = "wrong passphrase"
	default:
		l.err = errorText(err)
	}
}

func (l *lockModel) update(msg tea.Msg) (*lockModel, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok && key.Matches(k, keyUnlock) {
		if l.working || l.c.opts.Unlock == nil {
			return l, nil
		}
		l.working, l.err = true, ""
		pass, unlock := l.input.Value(), l.c.opts.Unlock
		return l, func() tea.Msg {
			w, err := unlock(pass)
			return unlockedMsg{w, err}
		}
	}
	var cmd tea.Cmd
	l.input, cmd = l.input.Update(msg)
	return l, cmd
}

func (l *lockModel) view() string {
	s := "The wallet is locked. Unlock the keyring to continue.\n\n" + l.input.View() + "\n"
	if l.working {
		s += "\nunlocking..."
	}
	if l.err != "" {
		s += "\n" + l.c.st.errText.Render(l.err)
	}
	return s
}

func (l *lockModel) keys() []key.Binding { return []key.Binding{keyUnlock, keyQuitLocked} }
