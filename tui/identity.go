package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// identityModel shows the wallet's public identity and its card.
type identityModel struct{ c *common }

func newIdentity(c *common) *identityModel { return &identityModel{c: c} }

func (m *identityModel) load() tea.Cmd                    { return nil }
func (m *identityModel) capturing() bool                  { return false }
func (m *identityModel) keys() []key.Binding              { return nil }
func (m *identityModel) update(tea.Msg) (screen, tea.Cmd) { return m, nil }

func (m *identityModel) view() string {
	c := m.c
	if c.w == nil {
		return ""
	}
	card := c.w.Card()
	var b strings.Builder
	b.WriteString(c.st.title.Render("Identity") + "\n\n")
	fmt.Fprintf(&b, "name:     %s\n", card.Name)
	fmt.Fprintf(&b, "role:     %s\n", card.Role)
	fmt.Fprintf(&b, "id:       %s\n", card.ID)
	fmt.Fprintf(&b, "age:      %s\n", card.AgeRecipient)
	fmt.Fprintf(&b, "created:  %s\n", dateText(time.Unix(card.Created, 0)))
	fmt.Fprintf(&b, "keyring:  %s\n\n", c.w.KeyringBackend())
	b.WriteString("Card (public; others add it with 'medwallet contact add NAME CARD'):\n")
	b.WriteString(wrap(card.String(), max(c.width, 20)))
	return b.String()
}

// wrap cuts s into lines of n characters (a card has no spaces).
func wrap(s string, n int) string {
	var lines []string
	for len(s) > n {
		lines = append(lines, s[:n])
		s = s[n:]
	}
	return strings.Join(append(lines, s), "\n")
}
