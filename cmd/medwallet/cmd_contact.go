package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func newContactCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contact",
		Short: "Manage the address book of verified identity cards",
		Example: `  medwallet whoami --card > alice.card            # give this line to others
  medwallet contact add "Dr Bob" "$(cat bob.card)"  # verify and save theirs
  medwallet contact ls
  medwallet contact rm "Dr Bob"`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newContactAddCommand(g), newContactLsCommand(g), newContactRmCommand(g))
	return cmd
}

// contactJSON is the --json shape of a contact.
type contactJSON struct {
	Name         string    `json:"name"`
	ID           string    `json:"id"`
	CardName     string    `json:"card_name"`
	Role         string    `json:"role"`
	AgeRecipient string    `json:"age_recipient"`
	Added        time.Time `json:"added"`
}

func newContactJSON(c wallet.Contact) contactJSON {
	return contactJSON{Name: c.Name, ID: string(c.Card.ID), CardName: c.Card.Name, Role: c.Card.Role,
		AgeRecipient: c.Card.AgeRecipient, Added: c.Added}
}

// contactAddOptions are the flags of contact add.
type contactAddOptions struct{}

func newContactAddCommand(g *globalOptions) *cobra.Command {
	var opts contactAddOptions
	return &cobra.Command{
		Use:   "add NAME CARD",
		Short: "Verify an identity card and save it under NAME",
		Long: `Verify the signature of an identity card (the line printed by
'medwallet whoami --card') and save it in the address book under NAME.
CARD may be "-" to read the card from stdin. A tampered or malformed card
is refused.`,
		Example: `  medwallet contact add "Dr Bob" "$(cat bob.card)"
  medwallet contact add Mercy - < mercy.card`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return runContactAdd(cmd.Context(), opts, g, args) },
	}
}

// runContactAdd saves the card args[1] (or stdin for "-") as contact args[0].
func runContactAdd(_ context.Context, _ contactAddOptions, g *globalOptions, args []string) error {
	name, card := args[0], args[1]
	if card == "-" {
		b, err := io.ReadAll(io.LimitReader(g.stdin, 16<<10))
		if err != nil {
			return err
		}
		card = strings.TrimSpace(string(b))
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	c, err := w.AddContact(name, card)
	if err != nil {
		return err
	}
	return g.emit(newContactJSON(c), func(out io.Writer) {
		fmt.Fprintf(out, "added %s (%s, %s %q)\n", c.Name, c.Card.ID, c.Card.Role, c.Card.Name)
	})
}

// contactLsOptions are the flags of contact ls.
type contactLsOptions struct{}

func newContactLsCommand(g *globalOptions) *cobra.Command {
	var opts contactLsOptions
	return &cobra.Command{
		Use:     "ls",
		Short:   "List contacts",
		Example: "  medwallet contact ls --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runContactLs(cmd.Context(), opts, g) },
	}
}

func runContactLs(_ context.Context, _ contactLsOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	cs, err := w.Contacts()
	if err != nil {
		return err
	}
	out := make([]contactJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, newContactJSON(c))
	}
	return g.emit(out, func(o io.Writer) {
		if len(out) == 0 {
			g.note("medwallet: no contacts yet; add one with 'medwallet contact add NAME CARD'")
			return
		}
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tID\tCARD NAME")
		for _, c := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Role, c.ID, c.CardName)
		}
		tw.Flush()
	})
}

// contactRmOptions are the flags of contact rm.
type contactRmOptions struct{}

func newContactRmCommand(g *globalOptions) *cobra.Command {
	var opts contactRmOptions
	return &cobra.Command{
		Use:     "rm NAME",
		Short:   "Remove a contact",
		Example: `  medwallet contact rm "Dr Bob"`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runContactRm(cmd.Context(), opts, g, args) },
	}
}

// removedJSON is the --json shape of commands that delete something.
type removedJSON struct {
	Removed string `json:"removed"`
}

// runContactRm removes the contact args[0].
func runContactRm(_ context.Context, _ contactRmOptions, g *globalOptions, args []string) error {
	name := args[0]
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	if err := w.RemoveContact(name); err != nil {
		return err
	}
	return g.emit(removedJSON{Removed: name}, func(out io.Writer) { fmt.Fprintf(out, "removed %s\n", name) })
}
