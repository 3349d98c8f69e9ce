package wallet

// Contacts: the address book of identity cards (Contacts, AddContact,
// RemoveContact, Resolve, NameOf), and the contact book a command reads
// once to name the parties of many rows (contactBook).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/internal/fsutil"
)

const contactsFile = "contacts.json"

// Contact is an entry of the address book: a local name for a verified card.
type Contact struct {
	Name  string       `json:"name"`
	Card  consent.Card `json:"card"`
	Added time.Time    `json:"added"`
}

type contactsJSON struct {
	Version  int           `json:"version"`
	Contacts []contactJSON `json:"contacts"`
}

type contactJSON struct {
	Name  string    `json:"name"`
	Card  string    `json:"card"`
	Added time.Time `json:"added"`
}

// Contacts returns the address book sorted by name. Every card is verified
// again on load, so a hand-edited file cannot slip in a forged one.
func (w *Wallet) Contacts() ([]Contact, error) {
	if cs := w.held.Load(); cs != nil {
		return slices.Clone(*cs), nil
	}
	if testHookReadContacts != nil {
		testHookReadContacts()
	}
	b, err := os.ReadFile(filepath.Join(w.cfg.Home, contactsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cj contactsJSON
	if err := json.Unmarshal(b, &cj); err != nil || cj.Version != 1 {
		return nil, fmt.Errorf("%s is damaged: %w", contactsFile, ErrInvalid)
	}
	out := make([]Contact, 0, len(cj.Contacts))
	for _, c := range cj.Contacts {
		card, err := consent.ParseCard(c.Card)
		if err != nil {
			return nil, fmt.Errorf("%s: contact %q: %w", contactsFile, c.Name, err)
		}
		out = append(out, Contact{Name: c.Name, Card: card, Added: c.Added})
	}
	return out, nil
}

func (w *Wallet) saveContacts(cs []Contact) error {
	slices.SortFunc(cs, func(a, b Contact) int { return strings.Compare(a.Name, b.Name) })
	cj := contactsJSON{Version: 1, Contacts: make([]contactJSON, 0, len(cs))}
	for _, c := range cs {
		cj.Contacts = append(cj.Contacts, contactJSON{Name: c.Name, Card: c.Card.String(), Added: c.Added.UTC()})
	}
	b, _ := json.MarshalIndent(cj, "", "  ")
	return fsutil.WriteFileAtomic(filepath.Join(w.cfg.Home, contactsFile), append(b, '\n'), 0o600)
}

// AddContact verifies card and saves it under name. A name or an ID that is
// already in the address book is refused rather than replaced.
func (w *Wallet) AddContact(name, card string) (Contact, error) {
	if err := consent.ValidateName(name); err != nil {
		return Contact{}, fmt.Errorf("contact name: %w: %w", ErrInvalid, err)
	}
	c, err := consent.ParseCard(card)
	if err != nil {
		return Contact{}, &InputError{Field: FieldCard, Problem: Malformed, Err: err}
	}
	if c.ID == w.ID() {
		return Contact{}, fmt.Errorf("that is your own card: %w", ErrInvalid)
	}
	cs, err := w.Contacts()
	if err != nil {
		return Contact{}, err
	}
	for _, old := range cs {
		if old.Name == name {
			return Contact{}, &ExistsError{Kind: KindContact, Ref: name}
		}
		if old.Card.ID == c.ID {
			return Contact{}, fmt.Errorf("this card is already saved as contact %q: %w", old.Name, ErrExists)
		}
	}
	nc := Contact{Name: name, Card: c, Added: w.Now().UTC().Truncate(time.Second)}
	if err := w.saveContacts(append(cs, nc)); err != nil {
		return Contact{}, err
	}
	return nc, nil
}

// RemoveContact deletes the contact called name.
func (w *Wallet) RemoveContact(name string) error {
	cs, err := w.Contacts()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cs, func(c Contact) bool { return c.Name == name })
	if i < 0 {
		return &NotFoundError{Kind: KindContact, Ref: name}
	}
	return w.saveContacts(slices.Delete(cs, i, i+1))
}

// Resolve finds a contact by name or by ID.
func (w *Wallet) Resolve(nameOrID string) (Contact, error) {
	cs, err := w.Contacts()
	if err != nil {
		return Contact{}, err
	}
	for _, c := range cs {
		if c.Name == nameOrID || string(c.Card.ID) == nameOrID {
			return c, nil
		}
	}
	return Contact{}, &NotFoundError{Kind: KindContact, Ref: nameOrID}
}

// testHookReadContacts, when set by a test, is called each time the
// address book is read from disk (and its cards verified).
var testHookReadContacts func()

// NameOf returns the display name for id: the contact's name, the wallet's
// own name, or "" when id is unknown. It reads the address book; a command
// naming the parties of many rows reads it once with contactBook instead.
func (w *Wallet) NameOf(id consent.ID) string {
	return w.contactBook().nameOf(id)
}

// contactBook is the address book as read once by a command: display
// names by ID, the wallet's own included.
type contactBook struct {
	names map[consent.ID]string
}

// contactBook reads the address book once (verifying every card) for a
// command that names the parties of many rows. A damaged address book
// yields a book that knows only the wallet itself, as NameOf always did.
func (w *Wallet) contactBook() *contactBook {
	b := &contactBook{names: map[consent.ID]string{}}
	if cs, err := w.Contacts(); err == nil {
		for _, c := range cs {
			if _, ok := b.names[c.Card.ID]; !ok {
				b.names[c.Card.ID] = c.Name
			}
		}
	}
	b.names[w.ID()] = w.card.Name
	return b
}

// nameOf returns the display name for id, or "" when id is unknown.
func (b *contactBook) nameOf(id consent.ID) string { return b.names[id] }
