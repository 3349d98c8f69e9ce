package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/wallet"
)

// Scopes offered by the grant form; the command line takes any SMART scope.
var formScopes = []string{
	"patient/*.rs",
	"patient/Observation.rs",
	"patient/Condition.rs",
	"patient/MedicationRequest.rs",
	"patient/AllergyIntolerance.rs",
	"patient/Immunization.rs",
	"patient/Encounter.rs",
	"patient/DiagnosticReport.rs",
	"patient/DocumentReference.rs",
}

// grantsModel lists the grants given and received, creates one with a
// form, and revokes one after a confirmation.
type grantsModel struct {
	c        *common
	grants   []wallet.GrantInfo
	err      error
	cur      int
	form     *grantForm // non-nil while the form is open
	confirm  bool       // revoke confirmation shown for grants[cur]
	contacts []wallet.Contact
	records  []wallet.RecordInfo
	loaded   bool // a grantsMsg has arrived: the lists above are the wallet's
}

type grantsMsg struct {
	grants   []wallet.GrantInfo
	contacts []wallet.Contact
	records  []wallet.RecordInfo
	err      error
}

var (
	keyNewGrant = key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new grant"))
	keyRevoke   = key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "revoke"))
	keyYes      = key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "revoke"))
	keyNo       = key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "keep"))
	keyToggle   = key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "toggle"))
	keyGrant    = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "grant"))
)

func newGrants(c *common) *grantsModel { return &grantsModel{c: c} }

func (m *grantsModel) load() tea.Cmd {
	return m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
		gs, err := w.Grants(ctx)
		if err != nil {
			return grantsMsg{err: err}
		}
		cs, err := w.Contacts()
		if err != nil {
			return grantsMsg{err: err}
		}
		rs, err := w.ListRecords(ctx)
		return grantsMsg{gs, cs, rs, err}
	})
}

func (m *grantsModel) capturing() bool { return m.form != nil || m.confirm }

func (m *grantsModel) keys() []key.Binding {
	switch {
	case m.form != nil:
		return m.form.keys()
	case m.confirm:
		return []key.Binding{keyYes, keyNo}
	}
	return []key.Binding{keyUp, keyNewGrant, keyRevoke, keyReload}
}

func (m *grantsModel) update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case grantsMsg:
		m.grants, m.contacts, m.records, m.err = msg.grants, msg.contacts, msg.records, msg.err
		m.cur = clamp(m.cur, len(m.grants))
		m.loaded = true
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *grantsModel) key(msg tea.KeyMsg) (screen, tea.Cmd) {
	switch {
	case m.form != nil:
		if key.Matches(msg, keyCancel) {
			m.form = nil
			return m, nil
		}
		if key.Matches(msg, keyGrant) {
			opts, err := m.form.options()
			if err != nil {
				m.form.err = err.Error()
				return m, nil
			}
			m.form = nil
			return m, m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
				gi, err := w.Grant(ctx, opts)
				if err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{note: fmt.Sprintf("granted %s to %s", shortID(gi.ID.String(), 12), who(gi.GranteeName, gi.Grantee.Short())), reload: true}
			})
		}
		return m, m.form.update(msg)
	case m.confirm:
		switch {
		case key.Matches(msg, keyYes):
			m.confirm = false
			ref := m.grants[m.cur].ID.String()
			return m, m.c.call(func(ctx context.Context, w *wallet.Wallet) tea.Msg {
				gi, err := w.Revoke(ctx, ref)
				if err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{note: fmt.Sprintf("revoked %s", shortID(gi.ID.String(), 12)), reload: true}
			})
		case key.Matches(msg, keyNo):
			m.confirm = false
		}
		return m, nil
	}
	switch {
	case key.Matches(msg, keyNewGrant):
		if !m.loaded {
			return m, nil // the form offers the contacts and records once they are read
		}
		if len(m.contacts) == 0 || len(m.records) == 0 {
			return m, func() tea.Msg {
				return doneMsg{err: errors.New("a grant needs a contact and a record: add them on the People and Records screens")}
			}
		}
		m.form = newGrantForm(m.c, m.contacts, m.records)
	case key.Matches(msg, keyRevoke):
		if len(m.grants) > 0 {
			g := m.grants[m.cur]
			if !g.Given || g.Status == wallet.GrantRevoked {
				return m, func() tea.Msg { return doneMsg{err: errors.New("only an unrevoked grant you gave can be revoked")} }
			}
			m.confirm = true
		}
	case key.Matches(msg, keyReload):
		return m, m.load()
	default:
		m.cur = moveCursor(msg, m.cur, len(m.grants))
	}
	return m, nil
}

func who(name, fallback string) string {
	if name != "" {
		return name
	}
	return fallback
}

func grantRecords(g wallet.GrantInfo) string {
	if g.All {
		return "all records"
	}
	return fmt.Sprintf("%d record(s)", len(g.Records))
}

// recordCount is the RECORDS column of the grant lists.
func recordCount(g wallet.GrantInfo) string {
	if g.All {
		return "all"
	}
	return fmt.Sprint(len(g.Records))
}

func (m *grantsModel) view() string {
	c := m.c
	var b strings.Builder
	switch {
	case m.form != nil:
		return m.form.view()
	case m.err != nil:
		return c.st.errText.Render("error: " + errorText(m.err))
	case m.confirm:
		g := m.grants[m.cur]
		fmt.Fprintf(&b, "%s\n\n", c.st.title.Render("Revoke grant "+shortID(g.ID.String(), 12)+"?"))
		fmt.Fprintf(&b, "to:       %s\nrecords:  %s\nscopes:   %s\npurpose:  %s (%s)\n\n", who(g.GranteeName, g.Grantee.Short()),
			grantRecords(g), strings.Join(g.Scopes, " "), g.Purpose.Code, g.Purpose.Display)
		b.WriteString("Peers refuse every later request under this grant.\n")
		b.WriteString(c.st.dim.Render("[ ] rotate the record keys too: not available yet (issue 6)") + "\n\n")
		b.WriteString("Revoke? y/n")
		return b.String()
	case !m.loaded:
		return "Reading grants..."
	case len(m.grants) == 0:
		return "No grants yet. Press n to grant a contact access to records."
	}
	fmt.Fprintf(&b, "  %-10s  %-4s  %-12s  %-13s  %-8s  %-10s  %s\n", "GRANT", "DIR", "WHO", "STATUS", "PURPOSE", "EXPIRES", "RECORDS")
	from, to := window(m.cur, len(m.grants), c.bodyHeight()-1)
	for i := from; i < to; i++ {
		g := m.grants[i]
		dir, other := "to", who(g.GranteeName, g.Grantee.Short())
		if !g.Given {
			dir, other = "from", who(g.AuthorName, g.Author.Short())
		}
		line := fmt.Sprintf("%-10s  %-4s  %s  %-13s  %-8s  %-10s  %s", shortID(g.ID.String(), 10), dir, cell(other, 12), g.Status,
			g.Purpose.Code, dayText(g.Expires), recordCount(g))
		b.WriteString(c.row(i == m.cur, line) + "\n")
	}
	return b.String()
}

// grantForm offers the contacts, records, scopes, purposes and an expiry.
type grantForm struct {
	c        *common
	contacts []wallet.Contact
	records  []wallet.RecordInfo
	field    int // 0 to, 1 records, 2 scopes, 3 purpose, 4 expires
	cur      [4]int
	to       int
	all      bool
	recSel   map[int]bool
	scopeSel map[int]bool
	purpose  int
	expires  textinput.Model
	err      string
}

var fieldNames = []string{"To", "Records", "Scopes", "Purpose", "Expires"}

func newGrantForm(c *common, contacts []wallet.Contact, records []wallet.RecordInfo) *grantForm {
	exp := textinput.New()
	exp.Prompt = ""
	exp.Placeholder = "never"
	exp.SetValue("30d")
	return &grantForm{c: c, contacts: contacts, records: records, recSel: map[int]bool{}, scopeSel: map[int]bool{}, expires: exp}
}

func (f *grantForm) keys() []key.Binding {
	ks := []key.Binding{keyTab, keyUp}
	if f.field == 1 || f.field == 2 {
		ks = append(ks, keyToggle)
	}
	return append(ks, keyGrant, keyCancel)
}

// options are the wallet.GrantOptions the form describes.
func (f *grantForm) options() (wallet.GrantOptions, error) {
	o := wallet.GrantOptions{To: f.contacts[f.to].Name, All: f.all, Purpose: consent.Purposes[f.purpose].Code,
		Expires: strings.TrimSpace(f.expires.Value())}
	if !f.all {
		for i, r := range f.records {
			if f.recSel[i] {
				o.Records = append(o.Records, r.ID)
			}
		}
		if len(o.Records) == 0 {
			return o, errors.New("choose at least one record (space toggles)")
		}
	}
	for i, s := range formScopes {
		if f.scopeSel[i] {
			o.Scopes = append(o.Scopes, s)
		}
	}
	if len(o.Scopes) == 0 {
		return o, errors.New("choose at least one scope (space toggles)")
	}
	return o, nil
}

func (f *grantForm) optionCount() int {
	switch f.field {
	case 0:
		return len(f.contacts)
	case 1:
		return len(f.records) + 1 // "all records" first
	case 2:
		return len(formScopes)
	case 3:
		return len(consent.Purposes)
	}
	return 0
}

func (f *grantForm) update(msg tea.KeyMsg) tea.Cmd {
	f.err = ""
	switch msg.String() {
	case "tab", "shift+tab":
		if msg.String() == "tab" {
			f.field = (f.field + 1) % len(fieldNames)
		} else {
			f.field = (f.field + len(fieldNames) - 1) % len(fieldNames)
		}
		if f.field == 4 {
			f.expires.Focus()
		} else {
			f.expires.Blur()
		}
		return nil
	}
	if f.field == 4 {
		var cmd tea.Cmd
		f.expires, cmd = f.expires.Update(msg)
		return cmd
	}
	f.cur[f.field] = moveCursor(msg, f.cur[f.field], f.optionCount())
	cur := f.cur[f.field]
	switch f.field {
	case 0:
		f.to = cur
	case 3:
		f.purpose = cur
	case 1:
		if key.Matches(msg, keyToggle) {
			if cur == 0 {
				f.all = !f.all
			} else {
				f.recSel[cur-1] = !f.recSel[cur-1]
			}
		}
	case 2:
		if key.Matches(msg, keyToggle) {
			f.scopeSel[cur] = !f.scopeSel[cur]
		}
	}
	return nil
}

func check(on bool) string {
	if on {
		return "[x] "
	}
	return "[ ] "
}

func recordName(r wallet.RecordInfo) string {
	s := shortID(r.ID, 12) + " " + r.Metadata.Format
	if r.Metadata.Label != "" {
		s += " " + r.Metadata.Label
	}
	return s
}

// summary is the one-line value of a field that does not have the focus.
func (f *grantForm) summary(field int) string {
	switch field {
	case 0:
		c := f.contacts[f.to]
		return fmt.Sprintf("%s (%s)", c.Name, c.Card.Role)
	case 1:
		if f.all {
			return "all records"
		}
		var names []string
		for i, r := range f.records {
			if f.recSel[i] {
				names = append(names, shortID(r.ID, 12))
			}
		}
		return orDash(strings.Join(names, " "))
	case 2:
		var names []string
		for i, s := range formScopes {
			if f.scopeSel[i] {
				names = append(names, s)
			}
		}
		return orDash(strings.Join(names, " "))
	case 3:
		p := consent.Purposes[f.purpose]
		return fmt.Sprintf("%s (%s)", p.Code, p.Display)
	}
	return f.expires.View()
}

func (f *grantForm) option(field, i int) string {
	switch field {
	case 0:
		c := f.contacts[i]
		return fmt.Sprintf("%s (%s, %s)", c.Name, c.Card.Role, c.Card.ID.Short())
	case 1:
		if i == 0 {
			return check(f.all) + "all records (present and future keys: those present now)"
		}
		return check(f.all || f.recSel[i-1]) + recordName(f.records[i-1])
	case 2:
		return check(f.scopeSel[i]) + formScopes[i]
	case 3:
		p := consent.Purposes[i]
		return fmt.Sprintf("%-8s %s", p.Code, p.Display)
	}
	return ""
}

func (f *grantForm) view() string {
	c := f.c
	var b strings.Builder
	b.WriteString(c.st.title.Render("New grant") + "\n")
	// Four summary lines, the title, the error line and the focused list.
	listH := max(c.bodyHeight()-8, 3)
	for field, name := range fieldNames {
		marker := "  "
		if field == f.field {
			marker = "> "
		}
		head := fmt.Sprintf("%s%-8s ", marker, name+":")
		if field != f.field || field == 4 {
			b.WriteString(head + f.summary(field) + "\n")
			continue
		}
		b.WriteString(c.st.selected.Render(head) + "\n")
		n := f.optionCount()
		from, to := window(f.cur[field], n, listH)
		for i := from; i < to; i++ {
			b.WriteString("    " + c.row(i == f.cur[field], f.option(field, i)) + "\n")
		}
	}
	if f.err != "" {
		b.WriteString(c.st.errText.Render(f.err) + "\n")
	}
	return b.String()
}
