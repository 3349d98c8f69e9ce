package wallet

// Import of SMART Health Cards (ImportSHC, SniffCard): a card is verified
// against the trust directory (issuers.go) and its FHIR Bundle stored as
// a FHIR record whose manifest keeps the provenance.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/medwallet/medwallet/smarthealth"
	"github.com/medwallet/medwallet/vault"
)

// CardError reports a SMART Health Card that failed verification: which
// card of the input (from 1) and why (a *smarthealth.VerifyError). It is
// ErrVerify.
type CardError struct {
	Index, Of int
	Err       error
}

func (e *CardError) Error() string {
	where := "the card"
	if e.Of > 1 {
		where = fmt.Sprintf("card %d of %d", e.Index, e.Of)
	}
	return fmt.Sprintf("%s is refused: %v: %v", where, e.Err, ErrVerify)
}

func (e *CardError) Unwrap() []error { return []error{ErrVerify, e.Err} }

// SHCImportOptions configure ImportSHC.
type SHCImportOptions struct {
	AddRecordOptions
	// Unverified stores cards that fail verification (untrusted issuer,
	// bad signature, expired, wrong type), marked unverified with the
	// reason, instead of refusing them.
	Unverified bool
	// Via overrides how the card arrived (the input's form): e.g.
	// "smart-health-link".
	Via string
}

// SHCResult describes one imported card.
type SHCResult struct {
	Record     RecordInfo
	Provenance vault.Provenance
}

// SniffCard reads the start of r and reports whether it is a SMART Health
// Card (vault.IsSmartHealthCard). The reader it returns gives all of r's
// bytes: r itself, sought back, when r can seek.
func SniffCard(r io.Reader) (io.Reader, bool, error) {
	prefix := make([]byte, vault.SniffSize)
	n, err := io.ReadFull(r, prefix)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("reading the record: %w", err)
	}
	prefix = prefix[:n]
	card := vault.IsSmartHealthCard(prefix)
	if s, ok := r.(io.Seeker); ok {
		if _, err := s.Seek(-int64(n), io.SeekCurrent); err == nil {
			return r, card, nil
		}
	}
	return io.MultiReader(bytes.NewReader(prefix), r), card, nil
}

// ImportSHC reads SMART Health Cards from r (a .smart-health-card file,
// numeric shc:/ QR payloads or a bare JWS), verifies every card against
// the trusted issuers at the wallet's time, and stores each card's FHIR
// Bundle as a record with its provenance. Without Unverified, one card
// that fails refuses the whole input before anything is stored.
func (w *Wallet) ImportSHC(ctx context.Context, r io.Reader, opts SHCImportOptions) ([]SHCResult, error) {
	data, err := io.ReadAll(io.LimitReader(r, smarthealth.MaxCardInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading the card: %w", err)
	}
	return w.importCards(ctx, data, opts)
}

func (w *Wallet) importCards(ctx context.Context, data []byte, opts SHCImportOptions) ([]SHCResult, error) {
	trust, _, err := w.readTrust()
	if err != nil {
		return nil, err
	}
	cards, err := prepareCards(data, trust, w.Now(), opts)
	if err != nil {
		return nil, err
	}
	return w.storeCards(ctx, cards, opts.AddRecordOptions)
}

// preparedCard is a card read and checked, ready to store.
type preparedCard struct {
	bundle []byte
	prov   vault.Provenance
}

// prepareCards reads and verifies every card in data; without
// opts.Unverified the first card that fails is the error.
func prepareCards(data []byte, trust smarthealth.Trust, now time.Time, opts SHCImportOptions) ([]preparedCard, error) {
	via := opts.Via
	if via == "" {
		via = smarthealth.DetectCard(data)
	}
	jwss, err := smarthealth.ParseCards(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	out := make([]preparedCard, len(jwss))
	for i, jws := range jwss {
		c, err := smarthealth.ParseJWS(jws)
		if err != nil {
			// A card that no longer parses may have been changed after it
			// was signed: say so when a trusted key shows it.
			var ve *smarthealth.VerifyError
			if serr := smarthealth.CheckCompactSignature(jws, trust); errors.As(serr, &ve) {
				return nil, &CardError{Index: i + 1, Of: len(jwss), Err: serr}
			}
			if len(jwss) > 1 {
				return nil, fmt.Errorf("card %d of %d: %w: %w", i+1, len(jwss), ErrInvalid, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		p := vault.Provenance{Source: vault.FormatSHC, Via: via, Issuer: c.Issuer, Kid: c.Header.Kid,
			Status: vault.ProvenanceVerified}
		if !c.NotBefore.IsZero() {
			p.IssuedAt = c.NotBefore.Unix()
		}
		if !c.Expires.IsZero() {
			p.Expires = c.Expires.Unix()
		}
		v, verr := c.Verify(trust, now)
		p.IssuerName = v.IssuerName
		if v.Revocation != smarthealth.RevocationNone {
			p.Revocation = v.Revocation
		}
		if verr != nil {
			if !opts.Unverified {
				return nil, &CardError{Index: i + 1, Of: len(jwss), Err: verr}
			}
			p.Status, p.Problem = vault.ProvenanceUnverified, problemText(verr)
		}
		out[i] = preparedCard{bundle: c.Bundle, prov: p}
	}
	return out, nil
}

// storeCards stores each prepared card's Bundle as a record.
func (w *Wallet) storeCards(ctx context.Context, cards []preparedCard, opts AddRecordOptions) ([]SHCResult, error) {
	var out []SHCResult
	for i, c := range cards {
		add := opts
		add.Provenance = &cards[i].prov
		if add.Label == "" {
			add.Label = cardLabel(c.prov)
		}
		info, err := w.AddRecord(ctx, bytes.NewReader(c.bundle), add)
		if err != nil {
			return out, fmt.Errorf("storing card %d of %d: %w", i+1, len(cards), err)
		}
		out = append(out, SHCResult{Record: info, Provenance: c.prov})
	}
	return out, nil
}

// problemText is why a card is unverified, without the issuer URL (kept
// apart in the provenance).
func problemText(err error) string {
	var ve *smarthealth.VerifyError
	if errors.As(err, &ve) {
		s := ve.Reason.Error()
		if ve.Detail != "" {
			s += " (" + ve.Detail + ")"
		}
		return s
	}
	return err.Error()
}

// cardLabel is the default label of an imported card: who issued it.
func cardLabel(p vault.Provenance) string {
	who := p.IssuerName
	if who == "" {
		if u, err := url.Parse(p.Issuer); err == nil && u.Host != "" {
			who = u.Host
		} else {
			who = "an unknown issuer"
		}
	}
	if len(who) > 200 {
		who = who[:200]
	}
	if p.Status != vault.ProvenanceVerified {
		return "SMART Health Card from " + who + " (unverified)"
	}
	return "SMART Health Card from " + who
}
