package main

// SMART Health Card output shared by record add and import --shc.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/medwallet/medwallet/internal/units"
	"github.com/medwallet/medwallet/smarthealth"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/wallet"
)

// provenanceText says where a record came from, for humans:
// "[card verified: spec-example]" or "[card UNVERIFIED: the issuer is not trusted]".
func provenanceText(p *vault.Provenance) string {
	switch p.Status {
	case vault.ProvenanceUnsigned:
		return "[from a SMART Health Link at " + p.Issuer + ", unsigned]"
	case vault.ProvenanceVerified:
		return "[card verified: " + who(p.IssuerName, p.Issuer) + revocationText(p.Revocation) + "]"
	}
	return "[card UNVERIFIED: " + p.Problem + "]"
}

// revocationText qualifies "card verified" by what the issuer's
// revocation list said at import.
func revocationText(status string) string {
	switch status {
	case smarthealth.RevocationChecked:
		return ", not revoked"
	case smarthealth.RevocationStale:
		return ", revocation list out of date"
	case smarthealth.RevocationMissing:
		return ", revocation not checked"
	}
	return ""
}

// addCards imports the SMART Health Cards read from in and reports them:
// one record ID per line, or under --json one object (several: an array,
// or always an array when list is set).
func addCards(ctx context.Context, g *globalOptions, w *wallet.Wallet, in io.Reader, opts wallet.SHCImportOptions, list bool) error {
	res, err := w.ImportSHC(ctx, in, opts)
	out := reportCards(g, res)
	if err != nil {
		return err
	}
	var v any = out
	if len(out) == 1 && !list {
		v = out[0]
	}
	return g.emit(v, func(o io.Writer) {
		for _, r := range out {
			fmt.Fprintln(o, r.ID)
		}
	})
}

// reportCards notes each imported card on stderr and returns their JSON.
func reportCards(g *globalOptions, res []wallet.SHCResult) []recordJSON {
	out := make([]recordJSON, 0, len(res))
	for _, r := range res {
		p := r.Provenance
		switch p.Status {
		case vault.ProvenanceUnsigned:
			g.note("medwallet: added a FHIR file of the SMART Health Link at %s as record %s (%s); it carries no signature of its own",
				p.Issuer, r.Record.ID, units.Size(r.Record.Metadata.Size))
		case vault.ProvenanceVerified:
			g.note("medwallet: added SMART Health Card from %s (%s) as FHIR record %s (%s), signature verified",
				who(p.IssuerName, p.Issuer), p.Issuer, r.Record.ID, units.Size(r.Record.Metadata.Size))
			switch p.Revocation {
			case smarthealth.RevocationMissing, smarthealth.RevocationStale:
				g.note("medwallet: warning: the issuer may revoke cards of this key, and the wallet holds no current revocation list for it: the card was not checked against the newest; fetch it with 'medwallet issuer crl %s'",
					quoteArg(who(p.IssuerName, p.Issuer)))
			}
		default:
			g.note("medwallet: warning: added SMART Health Card claiming to be from %s as FHIR record %s, UNVERIFIED: %s",
				p.Issuer, r.Record.ID, p.Problem)
		}
		out = append(out, newRecordJSON(r.Record))
	}
	return out
}

// runImportSHC imports the SMART Health Cards in --shc FILE.
func runImportSHC(ctx context.Context, o importOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	in := g.stdin
	if o.shc != "-" {
		f, err := os.Open(o.shc)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%q: %w", o.shc, wallet.ErrNotFound)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	return addCards(ctx, g, w, in, wallet.SHCImportOptions{Unverified: o.unverified,
		AddRecordOptions: wallet.AddRecordOptions{RecordOptions: wallet.RecordOptions{Local: g.localShares}, Label: o.label}}, true)
}

// cardHint says what to do about a refused card.
func cardHint(e *wallet.CardError) string {
	const anyway = "--unverified stores it anyway, marked unverified everywhere"
	switch {
	case errors.Is(e, smarthealth.ErrUnknownIssuer):
		return "if you know the issuer is genuine, trust its keys with 'medwallet issuer add JWKS-FILE|URL --name NAME --iss URL'; " + anyway
	case errors.Is(e, smarthealth.ErrUnknownKey):
		return "the issuer may have new keys: fetch them again ('medwallet issuer rm NAME', then 'medwallet issuer add'); " + anyway
	case errors.Is(e, smarthealth.ErrSignature):
		return "the card was changed after it was signed, or forged; " + anyway
	case errors.Is(e, smarthealth.ErrRevoked):
		return "the issuer withdrew this card (issued by mistake, or replaced): ask the issuer for a current one; " + anyway
	}
	return anyway
}
