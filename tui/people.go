package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/medwallet/medwallet/wallet"
)

// peopleModel lists the contacts and adds one from a card.
type peopleModel struct {
	c      *common
	people []wallet.Contact
	err    error
	cur    int
	adding bool
	name   textinput.Model
	card   textinput.Model
	focus  int
}

type contactsMsg struct {
	people []wallet.Contact
	err    error
}

var keyAddCard = key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add from card"))

func newPeople(c *common) *peopleModel {
	name := textinput.New()
	name.Prompt = "Name: "
	card := textinput.New()
	card.Prompt = "Card: "
	return &peopleModel{c: c, name: name, card: card}
}

func (m *peopleModel) load() tea.Cmd {
	return m.c.call(func(_ context.Context, w *wallet.Wallet) tea.Msg {
		cs, err := w.Contacts()
		return contactsMsg{cs, err}
	})
}

func (m *peopleModel) capturing() bool { return m.adding }

func (m *peopleModel) keys() []key.Binding {
	if m.adding {
		return []key.Binding{keyTab, keySubmit, keyCancel}
	}
	return []key.Binding{keyUp, keyAddCard, keyReload}
}

func (m *peopleModel) update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case contactsMsg:
		m.people, m.err = msg.people, msg.err
		m.cur = clamp(m.cur, len(m.people))
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *peopleModel) key(msg tea.KeyMsg) (screen, tea.Cmd) {
	if m.adding {
		switch {
		case key.Matches(msg, keyCancel):
			m.adding = false
			return m, nil
		case key.Matches(msg, keyTab), msg.String() == "shift+tab":
			m.focus = 1 - m.focus
			m.focusFields()
			return m, nil
		case key.Matches(msg, keySubmit):
			name, card := strings.TrimSpace(m.name.Value()), strings.TrimSpace(m.card.Value())
			m.adding = false
			return m, m.c.call(func(_ context.Context, w *wallet.Wallet) tea.Msg {
				ct, err := w.AddContact(name, card)
				if err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{note: fmt.Sprintf("added %s (%s, %s)", ct.Name, ct.Card.Role, ct.Card.ID.Short()), reload: true}
			})
		}
		var cmd tea.Cmd
		if m.focus == 0 {
			m.name, cmd = m.name.Update(msg)
		} else {
			m.card, cmd = m.card.Update(msg)
		}
		return m, cmd
	}
	switch {
	case key.Matches(msg, keyAddCard):
		m.adding, m.focus = true, 0
		m.name.SetValue("")
		m.card.SetValue("")
		m.focusFields()
	case key.Matches(msg, keyReload):
		return m, m.load()
	default:
		m.cur = moveCursor(msg, m.cur, len(m.people))
	}
	return m, nil
}

func (m *peopleModel) focusFields() { focusOne(m.focus, &m.name, &m.card) }

func (m *peopleModel) view() string {
	c := m.c
	var b strings.Builder
	switch {
	case m.adding:
		fmt.Fprintf(&b, "%s\n\n%s\n%s\n\n%s\n", c.st.title.Render("Add a contact from a card"), m.name.View(), m.card.View(),
			c.st.dim.Render("Paste the card they printed with 'medwallet whoami --card'; its signature is checked."))
		return b.String()
	case m.err != nil:
		return c.st.errText.Render("error: " + errorText(m.err))
	case len(m.people) == 0:
		return "No contacts yet. Press a to add one from their card."
	}
	fmt.Fprintf(&b, "  %-16s  %-18s  %-10s  %-15s  %s\n", "NAME", "CARD NAME", "ROLE", "ID", "ADDED")
	from, to := window(m.cur, len(m.people), c.bodyHeight()-1)
	for i := from; i < to; i++ {
		p := m.people[i]
		line := fmt.Sprintf("%s  %s  %-10s  %s  %s", cell(p.Name, 16), cell(p.Card.Name, 18), p.Card.Role, padCell(p.Card.ID.Short(), 15), p.Added.UTC().Format("2006-01-02"))
		b.WriteString(c.row(i == m.cur, line) + "\n")
	}
	return b.String()
}
