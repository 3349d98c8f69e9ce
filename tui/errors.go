package tui

import (
	"errors"
	"fmt"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// errorText words an error for the status line. The wallet's errors carry
// facts and no advice; the TUI words them for its own screens, which have
// no flags, and falls back to the error's own message.
func errorText(err error) string {
	var (
		pe *wallet.PeersError
		ne *wallet.NetworkError
		in *wallet.InputError
		nf *wallet.NotFoundError
		ex *wallet.ExistsError
		de *wallet.DeniedError
	)
	switch {
	case errors.As(err, &pe):
		if pe.K > 0 {
			return fmt.Sprintf("only %d of %d peers answered, and storing a record needs %d: are the peers running?",
				pe.Answered, pe.Configured, pe.Needed)
		}
		return fmt.Sprintf("none of the %d peers answered: are they running?", pe.Configured)
	case errors.As(err, &ne):
		return "the peers failed while " + ne.Op + "; check that they are running and try again"
	case errors.Is(err, wallet.ErrNoNetwork):
		return "no network is configured: records stay on this computer until one is"
	case errors.Is(err, keystore.ErrNoPassphrase):
		return "the keyring needs its passphrase"
	case errors.As(err, &in) && in.Field == wallet.FieldCard && errors.Is(err, consent.ErrBadCard):
		return "this is not a valid identity card: ask the contact for their card and paste it whole"
	case errors.As(err, &ex) && ex.Kind == wallet.KindContact:
		return fmt.Sprintf("a contact named %q already exists: choose another name", ex.Ref)
	case errors.As(err, &nf) && nf.Kind == wallet.KindIdentity:
		return fmt.Sprintf("%s is not among your contacts: add their card on the People screen", nf.Ref)
	case errors.As(err, &de) && de.Record != "":
		return fmt.Sprintf("a peer refused record %s (%s): the grant may be revoked or expired", short(de.Record), de.Reason)
	case errors.As(err, &in) && in.Field == wallet.FieldExpiry:
		if in.Problem == wallet.Rejected {
			return "the expiry is in the past: give a later date, or a duration such as 30d"
		}
		return "the expiry is not understood: give a duration (30d, 12h, 2w) or a date (2026-12-31)"
	}
	return err.Error()
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
