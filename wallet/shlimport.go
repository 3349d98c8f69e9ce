package wallet

// Import of SMART Health Links (ImportSHL): fetch the manifest a link
// names, decrypt its files with the link's key, and store the FHIR and
// SMART Health Card files as records. Sharing as a link is share*.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/medwallet/medwallet/smarthealth"
	"github.com/medwallet/medwallet/vault"
)

// Limits of a link import: the manifest's size and file count, and the
// recipient string sent to the server.
const (
	MaxSHLManifest  = 1 << 20
	MaxSHLFiles     = 64
	MaxSHLRecipient = 128
)

// FieldPasscode (share.go) also marks a link that needs a passcode none
// was given for.

// LinkRefusedError reports a link server's refusal: a wrong passcode
// (Remaining attempts left, -1 when the server did not say) or a link it
// no longer serves. A wrong passcode is ErrDenied; a link gone is
// ErrNotFound.
type LinkRefusedError struct {
	Status    int
	Remaining int
}

func (e *LinkRefusedError) Error() string {
	if e.Status == http.StatusUnauthorized {
		if e.Remaining >= 0 {
			return fmt.Sprintf("the link's server refused the passcode (%d attempts left): %v", e.Remaining, ErrDenied)
		}
		return fmt.Sprintf("the link's server refused the passcode: %v", ErrDenied)
	}
	return fmt.Sprintf("the link's server no longer serves it (revoked, expired or unknown; HTTP %d): %v", e.Status, ErrNotFound)
}

func (e *LinkRefusedError) Unwrap() error {
	if e.Status == http.StatusUnauthorized {
		return ErrDenied
	}
	return ErrNotFound
}

// SHLImportOptions configure ImportSHL.
type SHLImportOptions struct {
	AddRecordOptions
	// Link is the shlink:/ text, or a viewer URL ending in #shlink:/...
	Link string
	// Passcode is sent for a link with flag P.
	Passcode string
	// Recipient describes who opens the link, for the server's log (the
	// specification requires one); "" means the wallet's name.
	Recipient string
	// Unverified stores SMART Health Cards that fail verification, marked.
	Unverified bool
	// Client makes the HTTPS requests; nil means one with a 60 s timeout.
	Client *http.Client
}

// SHLFile is one file of a link and what became of it.
type SHLFile struct {
	ContentType string
	// Records are what the file was stored as (one per card of an SHC file).
	Records []SHCResult
	// Skipped says why a file was not stored (a content type the wallet
	// does not import), "" when it was.
	Skipped string
}

// SHLResult describes an imported link.
type SHLResult struct {
	Label   string
	Expires time.Time
	Flag    string
	Files   []SHLFile
}

// ImportSHL opens a SMART Health Link: it refuses an expired link and a P
// link without a passcode, fetches the manifest (POST with recipient and
// passcode) or, for a U link, the one file (GET), decrypts every file
// with the link's key, verifies the cards in it, and only then stores the
// FHIR resources and the cards' Bundles as records. The link's key never
// leaves this machine; errors never hold it.
func (w *Wallet) ImportSHL(ctx context.Context, opts SHLImportOptions) (SHLResult, error) {
	link, err := smarthealth.ParseLink(opts.Link)
	if err != nil {
		return SHLResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	res := SHLResult{Label: link.Label, Expires: link.Exp, Flag: link.Flag}
	now := w.Now()
	if !link.Exp.IsZero() && !now.Before(link.Exp) {
		return res, fmt.Errorf("the SMART Health Link expired at %s: %w", link.Exp.Format(time.RFC3339), ErrInvalid)
	}
	if link.Has(smarthealth.FlagPasscode) && opts.Passcode == "" {
		return res, &InputError{Field: FieldPasscode, Problem: Missing, Reason: "the SMART Health Link is protected by a passcode"}
	}
	if !link.Has(smarthealth.FlagPasscode) && opts.Passcode != "" {
		return res, &InputError{Field: FieldPasscode, Problem: Conflict, Reason: "the SMART Health Link takes no passcode"}
	}
	recipient := cleanRecipient(opts.Recipient)
	if recipient == "" {
		recipient = cleanRecipient(w.Card().Name)
	}
	if recipient == "" {
		recipient = "medwallet"
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	origin := linkOrigin(link.URL)

	// Fetch and decrypt everything first.
	type fetched struct {
		contentType string
		plain       []byte
	}
	var files []fetched
	if link.Has(smarthealth.FlagDirect) {
		u, err := url.Parse(link.URL)
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		q := u.Query()
		q.Set("recipient", recipient)
		u.RawQuery = q.Encode()
		jwe, err := getText(ctx, client, u.String(), smarthealth.MaxJWE)
		if err != nil {
			return res, err
		}
		d, err := smarthealth.Decrypt(link.Key, strings.TrimSpace(string(jwe)))
		if err != nil {
			return res, fmt.Errorf("the link's file: %w: %w", ErrVerify, err)
		}
		files = append(files, fetched{contentType: d.ContentType, plain: d.Content})
	} else {
		m, err := postManifest(ctx, client, link.URL, recipient, opts.Passcode)
		if err != nil {
			return res, err
		}
		for i, f := range m.Files {
			jwe := f.Embedded
			if jwe == "" {
				if err := checkLocation(f.Location); err != nil {
					return res, fmt.Errorf("file %d of the manifest: %w", i+1, err)
				}
				b, err := getText(ctx, client, f.Location, smarthealth.MaxJWE)
				if err != nil {
					return res, fmt.Errorf("file %d of the manifest: %w", i+1, err)
				}
				jwe = string(b)
			}
			d, err := smarthealth.Decrypt(link.Key, strings.TrimSpace(jwe))
			if err != nil {
				return res, fmt.Errorf("file %d of the manifest: %w: %w", i+1, ErrVerify, err)
			}
			files = append(files, fetched{contentType: f.ContentType, plain: d.Content})
		}
	}

	// Check every card before anything is stored.
	trust, _, err := w.readTrust()
	if err != nil {
		return res, err
	}
	type planned struct {
		file   SHLFile
		cards  []preparedCard
		fhir   []byte
		isFHIR bool
	}
	plan := make([]planned, len(files))
	for i, f := range files {
		ct := contentTypeOf(f.contentType, f.plain)
		plan[i].file.ContentType = ct
		switch ct {
		case smarthealth.ContentFHIR:
			if !vaultIsFHIR(f.plain) {
				return res, fmt.Errorf("file %d of the link says it is FHIR and is not: %w", i+1, ErrInvalid)
			}
			plan[i].fhir, plan[i].isFHIR = f.plain, true
		case smarthealth.ContentCard:
			cards, err := prepareCards(f.plain, trust, now, SHCImportOptions{Unverified: opts.Unverified, Via: "smart-health-link"})
			if err != nil {
				return res, fmt.Errorf("file %d of the link: %w", i+1, err)
			}
			plan[i].cards = cards
		default:
			plan[i].file.Skipped = "the wallet does not import " + ct + " files"
		}
	}
	for i := range plan {
		p := &plan[i]
		switch {
		case p.isFHIR:
			add := opts.AddRecordOptions
			prov := vault.Provenance{Source: "smart-health-link", Via: "smart-health-link", Issuer: origin, Status: vault.ProvenanceUnsigned}
			add.Provenance = &prov
			if add.Label == "" {
				add.Label = linkLabel(link.Label, origin)
			}
			info, err := w.AddRecord(ctx, bytes.NewReader(p.fhir), add)
			if err != nil {
				res.Files = append(res.Files, p.file)
				return res, fmt.Errorf("storing file %d of the link: %w", i+1, err)
			}
			p.file.Records = []SHCResult{{Record: info, Provenance: prov}}
		case p.cards != nil:
			recs, err := w.storeCards(ctx, p.cards, opts.AddRecordOptions)
			p.file.Records = recs
			if err != nil {
				res.Files = append(res.Files, p.file)
				return res, fmt.Errorf("storing file %d of the link: %w", i+1, err)
			}
		}
		res.Files = append(res.Files, p.file)
	}
	return res, nil
}

// manifest is the SHL manifest response.
type manifest struct {
	Files []struct {
		ContentType string `json:"contentType"`
		Embedded    string `json:"embedded"`
		Location    string `json:"location"`
	} `json:"files"`
}

// postManifest asks for the manifest as the specification says: POST a
// JSON object with the recipient and, for a P link, the passcode.
func postManifest(ctx context.Context, client *http.Client, manifestURL, recipient, passcode string) (manifest, error) {
	body := map[string]any{"recipient": recipient}
	if passcode != "" {
		body["passcode"] = passcode
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, manifestURL, bytes.NewReader(b))
	if err != nil {
		return manifest{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return manifest{}, &NetworkError{Op: "fetching the link's manifest", Err: stripURL(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSHLManifest+1))
	if err != nil {
		return manifest{}, &NetworkError{Op: "fetching the link's manifest", Err: stripURL(err)}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		var r struct {
			Remaining *int `json:"remainingAttempts"`
		}
		e := &LinkRefusedError{Status: resp.StatusCode, Remaining: -1}
		if json.Unmarshal(data, &r) == nil && r.Remaining != nil {
			e.Remaining = *r.Remaining
		}
		return manifest{}, e
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusForbidden:
		return manifest{}, &LinkRefusedError{Status: resp.StatusCode}
	case resp.StatusCode != http.StatusOK:
		return manifest{}, &NetworkError{Op: "fetching the link's manifest", Err: fmt.Errorf("the server answered %s", resp.Status)}
	}
	return parseManifest(data)
}

// parseManifest reads a manifest response: at most MaxSHLManifest bytes
// and MaxSHLFiles files, each with exactly one of embedded and location.
func parseManifest(data []byte) (manifest, error) {
	if len(data) > MaxSHLManifest {
		return manifest{}, fmt.Errorf("the link's manifest is larger than %d bytes: %w", MaxSHLManifest, ErrInvalid)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return manifest{}, fmt.Errorf("the link's manifest is not JSON: %w", ErrInvalid)
	}
	if len(m.Files) > MaxSHLFiles {
		return manifest{}, fmt.Errorf("the link's manifest lists %d files, more than %d: %w", len(m.Files), MaxSHLFiles, ErrInvalid)
	}
	for i, f := range m.Files {
		if (f.Embedded == "") == (f.Location == "") {
			return manifest{}, fmt.Errorf("file %d of the link's manifest has neither or both of embedded and location: %w", i+1, ErrInvalid)
		}
	}
	return m, nil
}

// getText GETs a file of a link, at most limit bytes.
func getText(ctx context.Context, client *http.Client, u string, limit int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &NetworkError{Op: "fetching a file of the link", Err: stripURL(err)}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusForbidden:
		return nil, &LinkRefusedError{Status: resp.StatusCode}
	case resp.StatusCode != http.StatusOK:
		return nil, &NetworkError{Op: "fetching a file of the link", Err: fmt.Errorf("the server answered %s", resp.Status)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, &NetworkError{Op: "fetching a file of the link", Err: stripURL(err)}
	}
	if len(b) > limit {
		return nil, fmt.Errorf("a file of the link is larger than %d bytes: %w", limit, ErrInvalid)
	}
	return b, nil
}

// stripURL keeps an HTTP client error's cause without the URL, which for
// a link's file location may be a capability.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// checkLocation accepts only https file locations.
func checkLocation(loc string) error {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("a file location is not an https URL: %w", ErrInvalid)
	}
	return nil
}

// contentTypeOf is a file's content type without parameters; for a U link
// whose JWE names none, it is guessed from the content.
func contentTypeOf(ct string, plain []byte) string {
	if ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			return mt
		}
		return ct
	}
	if vault.IsSmartHealthCard(plain[:min(len(plain), vault.SniffSize)]) {
		return smarthealth.ContentCard
	}
	return smarthealth.ContentFHIR
}

// vaultIsFHIR reports whether content is FHIR JSON, as record add would
// detect it.
func vaultIsFHIR(content []byte) bool {
	md, err := vault.Detect(bytes.NewReader(content))
	return err == nil && md.Format == vault.FormatFHIR
}

// cleanRecipient bounds the recipient string and drops control characters.
func cleanRecipient(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > MaxSHLRecipient {
		s = strings.ToValidUTF8(s[:MaxSHLRecipient], "")
	}
	return s
}

// linkOrigin is the scheme and host of the link's URL: where the record
// came from, without the path (which is a capability).
func linkOrigin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

func linkLabel(label, origin string) string {
	if label != "" {
		return "SMART Health Link: " + label
	}
	return "SMART Health Link from " + origin
}
