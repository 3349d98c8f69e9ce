package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/ledgersync"
	"github.com/medwallet/medwallet/p2p/shares"
	"github.com/medwallet/medwallet/p2p/store"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// This file is the one place where errors become the words a user reads:
// the packages below cmd return typed errors that carry the facts (which
// input, which record, how many peers), and describe turns them into one
// line, a hint naming the flag or command that fixes it, and, where the
// line hides a raw internal error, the detail (shown under --verbose and in
// --json's error object).

// hintError is an error of this package with the hint to print after it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// withHint attaches a hint to err; it takes precedence over the hint that
// describe would give err's own type.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// usageHint follows every usage error.
const usageHint = "see 'medwallet --help' or 'medwallet COMMAND --help'"

// keyringPassphraseHint names the ways to give the file keyring's passphrase
// without a terminal.
const keyringPassphraseHint = "set $MEDWALLET_PASSPHRASE or pass --passphrase-file FILE"

// describe turns err into the message, hint and detail the user sees.
// detail is empty unless the message rewords a raw internal error.
func describe(err error) (msg, hint, detail string) {
	msg = err.Error()
	var kp *vault.ParamsError
	if errors.As(err, &kp) {
		msg = fmt.Sprintf("--k %d --n %d: %v: need 1 <= k < n <= %d", kp.K, kp.N, wallet.ErrInvalid, vault.MaxShares)
	} else if line, ok := reword(err); ok {
		detail = oneLine(msg)
		msg = line
	}
	var he *hintError
	if errors.As(err, &he) {
		hint = he.hint
	} else {
		hint = hintFor(err)
	}
	return oneLine(msg), hint, detail
}

// reword replaces the part of err's message that a patient cannot read (a
// CBOR offset, a reset TCP stream, a bare peer count) with plain words,
// keeping whatever context the callers added around it.
func reword(err error) (string, bool) {
	var (
		pe *wallet.PeersError
		ne *wallet.NetworkError
		in *wallet.InputError
		hp *wallet.HappyError
	)
	switch {
	case errors.As(err, &hp):
		return replaceIn(err, hp, fmt.Sprintf("only %d distinct peers could take the record's shares and --happy asks for %d, so the record was not added", hp.Placed, hp.Happy)), true
	case errors.As(err, &in) && in.Field == wallet.FieldCard && errors.Is(err, consent.ErrBadCard):
		return replaceIn(err, in, "this is not a valid identity card: it is incomplete, damaged or altered"), true
	case errors.As(err, &pe):
		return replaceIn(err, pe, peersLine(pe)), true
	case errors.As(err, &ne):
		return replaceIn(err, ne, networkLine(ne)), true
	}
	return "", false
}

// replaceIn is err's message with inner's part of it replaced by line.
func replaceIn(err, inner error, line string) string {
	full, part := err.Error(), inner.Error()
	if i := strings.LastIndex(full, part); i >= 0 {
		return full[:i] + line + full[i+len(part):]
	}
	return line
}

func peersLine(e *wallet.PeersError) string {
	var who string
	switch {
	case e.Configured == 1 && e.Answered == 0:
		who = "the one peer in the network did not answer"
	case e.Answered == 0:
		who = fmt.Sprintf("none of the %d peers in the network answered", e.Configured)
	case e.Answered == e.Configured:
		who = fmt.Sprintf("the network has only %d peer(s), and all answered", e.Configured)
	default:
		who = fmt.Sprintf("only %d of the %d peers in the network answered", e.Answered, e.Configured)
	}
	if e.K > 0 {
		return fmt.Sprintf("%s; storing this record needs at least %d, so that it can still be rebuilt after losing one", who, e.Needed)
	}
	return fmt.Sprintf("%s; at least %d must", who, e.Needed)
}

func networkLine(e *wallet.NetworkError) string {
	switch e.Op {
	case wallet.OpStoreShares:
		if why := storageRefusal(e); why != "" {
			return "no peer left would take one of the record's shares (" + why + "), so the record was not added"
		}
		return "a peer failed while storing the record's shares, so the record was not added"
	case wallet.OpPublish:
		if errors.Is(e, ledgersync.ErrRecoveryCap) {
			return "no peer took the recovery request: the identity has as many pending recovery requests from new keys as its peers keep, or this key has one already"
		}
		if errors.Is(e, ledgersync.ErrNotAuthorised) {
			return "no peer took the update to your ledger: they refused it (not authorised)"
		}
		return "no peer took the update to your ledger"
	case wallet.OpPull:
		if errors.Is(e, ledgersync.ErrNotAuthorised) {
			return "no peer sent its copy of the ledger: they refused (not authorised)"
		}
		return "no peer sent its copy of the ledger"
	}
	return "the peers failed while " + e.Op
}

// hintFor is the hint for err's type, if any.
func hintFor(err error) string {
	var (
		in *wallet.InputError
		nf *wallet.NotFoundError
		am *wallet.AmbiguousError
		ex *wallet.ExistsError
		de *wallet.DeniedError
		pe *wallet.PeersError
		ne *wallet.NetworkError
		ae *wallet.AuditError
		re *wallet.RecordError
		kp *vault.ParamsError
		ce *wallet.CardError
		lr *wallet.LinkRefusedError
		ue usageError
		hp *wallet.HappyError
	)
	switch {
	case errors.As(err, &ce):
		return cardHint(ce)
	case errors.As(err, &lr):
		return shlHint(lr)
	case errors.As(err, &hp):
		return "start more peers or add them to the network file, or lower --happy"
	case errors.As(err, &ue) || isCobraUsage(err):
		return usageHint
	case errors.As(err, &kp):
		return "for example --k 3 --n 5: any 3 of 5 shares rebuild the record"
	case errors.As(err, &in):
		return inputHint(in)
	case errors.As(err, &nf):
		return notFoundHint(nf)
	case errors.As(err, &am):
		return "give more characters of the ID"
	case errors.As(err, &ex):
		if ex.Kind == wallet.KindWallet {
			return "choose another directory with --home or $MEDWALLET_HOME"
		}
		if ex.Kind == wallet.KindIssuer {
			return fmt.Sprintf("remove it first with 'medwallet issuer rm %s', or choose another name", quoteArg(ex.Ref))
		}
		if ex.Kind == wallet.KindContact {
			return fmt.Sprintf("remove it first with 'medwallet contact rm %s', or choose another name", quoteArg(ex.Ref))
		}
	case errors.As(err, &de):
		switch de.Reason {
		case wallet.DenyNoCredential:
			return "list yours with 'medwallet credential ls'"
		case wallet.DenyEmergencyGrant:
			return "in an emergency, run 'medwallet import --emergency --patient ID --reason TEXT'"
		}
		if de.Record != "" {
			return "the grant may be revoked or expired: check 'medwallet inbox'"
		}
	case errors.As(err, &pe):
		switch {
		case pe.K > 0 && pe.Answered == pe.Configured:
			return "add peers to the network file, or lower --k"
		case pe.K > 0:
			return "check the peers with 'medwallet peers' and start the ones that are down, or lower --k"
		}
		return "are the peers running? check with 'medwallet peers'"
	case errors.Is(err, ledgersync.ErrRecoveryCap):
		return "the patient can refuse the requests it did not start ('medwallet recover --refuse CODE' on its device; its guardians see them with 'medwallet guardian requests'); otherwise try again once they lapse, a day after their waiting period"
	case errors.Is(err, ledgersync.ErrNotAuthorised):
		return "peers keep and share a patient's ledger only with the patient, the parties its entries name and the peers that serve it: check that the network file lists your own peers with 'medwallet peers'"
	case errors.Is(err, wallet.ErrNoSHLPeer):
		return "a peer of your network must serve links over HTTPS: its operator starts it with 'medwallet peer --shl-listen ADDR --shl-cert F --shl-key F'"
	case errors.As(err, &ne):
		if ne.Op == wallet.OpStoreShares {
			if h := storageRefusalHint(ne); h != "" {
				return h
			}
			if errors.Is(ne, shares.ErrRelayOnly) {
				return relayOnlyHint
			}
			return "check the peers with 'medwallet peers', then add the record again"
		}
		return "check the peers with 'medwallet peers', then retry with 'medwallet sync'"
	case errors.As(err, &ae):
		return "see every finding with 'medwallet audit verify' (without --json)"
	case refusedWith(err, shares.ErrRateLimited):
		return "peers limit how fast one requester may fetch, and refused some of your requests: wait a minute, then retry"
	case refusedWith(err, shares.ErrRelayOnly):
		return relayOnlyHint
	case refusedWith(err, shares.ErrBusy):
		return "some peers were busy (catching up with the ledger after a restart, or serving many transfers) and refused for now: retry in a minute; 'medwallet peers' shows which peers answer"
	case errors.As(err, &re) && errors.Is(err, vault.ErrNotEnoughShares):
		return "run 'medwallet record verify " + short(re.Record, 8) + "' to see the state of every share"
	case errors.Is(err, wallet.ErrBadLedger):
		return "run 'medwallet ledger verify' or 'medwallet audit verify' for details; restore " + wallet.LedgerFile + " from a backup or a peer"
	case errors.Is(err, wallet.ErrNoNetwork):
		return "start one with 'medwallet devnet' and set $MEDWALLET_NETWORK, or pass --network FILE"
	case errors.Is(err, keystore.ErrNoPassphrase):
		return keyringPassphraseHint
	case errors.Is(err, keystore.ErrUnavailable):
		return "choose a backend with --keyring-backend or $MEDWALLET_KEYRING_BACKEND (file works everywhere)"
	case errors.Is(err, wallet.ErrBadExport) && errors.Is(err, wallet.ErrVerify):
		return "use the passphrase given to 'medwallet key export'"
	case storageRefusal(err) != "": // a manifest copy no peer would take
		return storageRefusalHint(err)
	}
	return ""
}

// relayOnlyHint follows a share transfer that failed with a peer behind
// NAT reachable only through a relay (shares.RelayError).
const relayOnlyHint = "a peer behind NAT was reachable only through its relay, hole punching gave no direct connection, and the relay's budget per connection ran out: retry, or ask the peer's operator to forward a port to it and announce it (medwallet peer --announce), or to use a relay with a larger --relay-budget-mib"

// inputHint names the flag that gives the input e is about.
func inputHint(e *wallet.InputError) string {
	switch e.Field {
	case wallet.FieldCard:
		return "ask the contact for the line printed by 'medwallet whoami --card' and paste it whole, in quotes"
	case wallet.FieldCategory:
		return "sensitive categories: substance-use, psychotherapy, hiv, genetic, reproductive, restricted"
	case wallet.FieldScope:
		switch e.Problem {
		case wallet.Missing:
			return "add --scope patient/Observation.rs (or patient/*.rs for every type)"
		case wallet.Rejected:
			return "check --scope, or name a sensitive category with --allow-sensitive"
		}
		return "write scopes like --scope patient/Observation.rs or --scope 'patient/Observation.rs?category=laboratory'"
	case wallet.FieldPasscode:
		switch e.Problem {
		case wallet.Conflict: // import --shl of a link without P
			return "drop --passcode"
		case wallet.Rejected: // share --shl
			return "pass --passcode with 4 to 128 characters, and --attempts 1 to 100 only with it"
		}
		return "pass --passcode CODE: whoever sent the link gives the passcode apart from it"
	case wallet.FieldWholeRecord:
		return "grant --scope patient/" + e.Value + ".rs to release the document whole, or pass --whole-record"
	case wallet.FieldPurpose:
		return "use an HL7 v3 PurposeOfUse code, e.g. --purpose TREAT"
	case wallet.FieldRecords:
		return "pass --record ID (repeatable) or --all"
	case wallet.FieldRecord:
		return listHint(wallet.KindRecord)
	case wallet.FieldResult:
		return listHint(wallet.KindResult)
	case wallet.FieldCredential:
		return listHint(wallet.KindCredential)
	case wallet.FieldEmergencyAccess:
		return listHint(wallet.KindEmergencyAccess)
	case wallet.FieldGrantee:
		if e.Problem == wallet.Conflict {
			return "drop --to, or drop --role and --issuer"
		}
		return "pass --to CONTACT or --to ID"
	case wallet.FieldIssuer:
		if e.Problem == wallet.Conflict {
			return "add --role ROLE"
		}
		return "pass --issuer CONTACT"
	case wallet.FieldRole:
		return "name a role, e.g. --role emergency-physician"
	case wallet.FieldTimeBox:
		return "give 1m to 168h, e.g. --max 4h"
	case wallet.FieldExpiry:
		if e.Problem == wallet.Rejected {
			return "give a later date, or a duration such as --expires 30d"
		}
		return "use --expires 30d, 12h, 2w, 2026-12-31 or 2026-12-31T17:00:00Z"
	case wallet.FieldSince:
		return "use --since 2026-01-31 or --since 2026-01-31T09:00:00Z"
	case wallet.FieldReason:
		return `pass --reason "unconscious after a car crash"`
	case wallet.FieldPatient:
		if e.Problem == wallet.Conflict {
			return "add --emergency, or name a grant"
		}
		return "pass --patient ID (or a contact name)"
	case wallet.FieldGrant:
		switch e.Problem {
		case wallet.Conflict:
			return "an emergency import takes --patient ID --reason TEXT, and no GRANT_ID or --from"
		case wallet.Missing:
			return "pass GRANT_ID or --from CONTACT"
		case wallet.Rejected:
			return "revoke and rotate in one step with 'medwallet revoke " + e.Value + " --rotate'"
		case wallet.Malformed:
			return listHint(wallet.KindGrant)
		}
	case wallet.FieldOutcome:
		return "pass --ok or --dispute"
	case wallet.FieldAttempts:
		return "pass --passcode with 4 to 128 characters, and --attempts 1 to 100 only with it"
	case wallet.FieldLabel:
		return "keep --label to 80 characters, without control characters"
	case wallet.FieldShare:
		return "a link holds at most 16 records, each at most 16 MiB once encrypted: share fewer or smaller records, in several links"
	case wallet.FieldLink:
		return "list your links with 'medwallet share --list'"
	}
	return ""
}

// notFoundHint says how to find or make what e looked for.
func notFoundHint(e *wallet.NotFoundError) string {
	switch e.Kind {
	case wallet.KindWallet:
		return "create one with 'medwallet init --name NAME', restore one with 'medwallet key import FILE', or point --home at it"
	case wallet.KindKey:
		return "restore it with 'medwallet key import FILE', or select the keyring that holds it with --keyring-backend"
	case wallet.KindIdentity:
		return "add their card first with 'medwallet contact add NAME CARD'"
	case wallet.KindEmergencyPolicy:
		return "the patient enables one with 'medwallet emergency enable --issuer ISSUER'"
	case wallet.KindCredential:
		if e.Owner != "" {
			return "the issuer publishes credentials with 'medwallet credential issue'; then run 'medwallet sync'"
		}
	}
	return listHint(e.Kind)
}

// listHint names the command that lists things of kind k.
func listHint(k wallet.Kind) string {
	switch k {
	case wallet.KindContact:
		return "add their card first with 'medwallet contact add NAME CARD', or list contacts with 'medwallet contact ls'"
	case wallet.KindRecord:
		return "list the records with 'medwallet record ls'"
	case wallet.KindResult:
		return "results are named as 'medwallet record show ID --section results' lists them; a LOINC code such as 2339-0 works too"
	case wallet.KindGrant:
		return "list grants with 'medwallet grants'"
	case wallet.KindCredential:
		return "list credentials with 'medwallet credential ls'"
	case wallet.KindEmergencyAccess:
		return "list emergency accesses with 'medwallet audit verify' or 'medwallet emergency ls'"
	case wallet.KindIssuer:
		return "list trusted issuers with 'medwallet issuer ls'"
	}
	return ""
}

// refusedWith reports whether err is, or names among the shares that
// could not be read, a peer's refusal target (shares.ErrRateLimited,
// shares.ErrBusy): the vault keeps each share's failure as text.
func refusedWith(err, target error) bool {
	var ne *vault.NotEnoughSharesError
	if errors.Is(err, target) || !errors.As(err, &ne) {
		return errors.Is(err, target)
	}
	for _, h := range ne.Shares {
		if strings.Contains(h.Detail, target.Error()) {
			return true
		}
	}
	return false
}

// quoteArg quotes s for a command line that a hint shows between single
// quotes: double quotes, so that the quotes do not nest.
func quoteArg(s string) string {
	if strings.ContainsAny(s, " \t'\"\\$`") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
	}
	return s
}

// short is the first n characters of an ID.
func short(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// The peers' storage refusals (store's admission errors), in the words of
// networkLine and the hint that fixes each.
var storageRefusals = []struct {
	err        error
	line, hint string
}{
	{store.ErrNotAllowed, "a peer stores only for the IDs on its allowlist",
		"ask the peers' operators to add your ID ('medwallet whoami') to their allowlist, or add open peers to the network file"},
	{store.ErrQuota, "your storage quota on a peer is used up",
		"remove records you no longer need with 'medwallet record rm ID', or add peers to the network file"},
	{store.ErrStorageFull, "a peer's disk is nearly full",
		"add peers to the network file, or ask the peers' operators to free disk space"},
	{store.ErrPutRate, "you stored faster than a peer's put rate allows",
		"wait a minute, then add the record again"},
}

// storageRefusal names the peers' refusals in err, or is "".
func storageRefusal(err error) string {
	var why []string
	for _, r := range storageRefusals {
		if errors.Is(err, r.err) {
			why = append(why, r.line)
		}
	}
	return strings.Join(why, "; ")
}

// storageRefusalHint is the hint for the first of the peers' refusals in err.
func storageRefusalHint(err error) string {
	for _, r := range storageRefusals {
		if errors.Is(err, r.err) {
			return r.hint
		}
	}
	return ""
}
