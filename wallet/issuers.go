package wallet

// Trusted issuers of SMART Health Cards: the local trust directory
// (AddIssuer, Issuers, RemoveIssuer, issuerTrust).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/smarthealth"
)

// The trust directory holds one file per trusted issuer:
//
//	issuers/<name>.json   {"name", "iss", "source", "added", "keys": JWKS}
//
// A wallet may be offline when a card arrives, so the keys are kept here,
// added on purpose by the user (a JWKS file, or fetched once from the
// issuer's /.well-known/jwks.json), never fetched silently.
const issuersDir = "issuers"

// KindIssuer is what an issuer look-up is about (NotFoundError, ExistsError).
const KindIssuer Kind = "trusted issuer"

// IssuerInfo describes a trusted issuer.
type IssuerInfo struct {
	Name   string
	ISS    string
	Source string // the file or URL the keys came from
	Added  time.Time
	Kids   []string
	// Skipped counts keys of the JWKS that cannot sign cards (another
	// algorithm, or a kid that is not the key's thumbprint).
	Skipped int
}

type issuerFile struct {
	Name   string          `json:"name"`
	ISS    string          `json:"iss"`
	Source string          `json:"source"`
	Added  time.Time       `json:"added"`
	Keys   json.RawMessage `json:"keys"`
}

var issuerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// AddIssuerOptions describe a trusted issuer to add.
type AddIssuerOptions struct {
	// Source is a JWKS file, or an https URL: the issuer's base URL (its
	// iss; the keys are fetched from ISS/.well-known/jwks.json) or the
	// JWKS URL itself.
	Source string
	// Name is the local name (letters, digits, '.', '_', '-'; up to 64).
	Name string
	// ISS is the issuer URL cards name in iss; required with a file,
	// derived from a URL source when empty.
	ISS string
	// Client fetches a URL source; nil means a client with a 30 s timeout.
	Client *http.Client
}

func (w *Wallet) issuersPath() string { return filepath.Join(w.cfg.Home, issuersDir) }

// AddIssuer adds a trusted issuer's keys to the trust directory. It
// refuses a name already in use and an iss already trusted under another
// name.
func (w *Wallet) AddIssuer(ctx context.Context, opts AddIssuerOptions) (IssuerInfo, error) {
	if !issuerNameRE.MatchString(opts.Name) {
		return IssuerInfo{}, fmt.Errorf("issuer name %q: use 1 to 64 letters, digits, '.', '_' or '-': %w", opts.Name, ErrInvalid)
	}
	iss := opts.ISS
	var data []byte
	src := opts.Source
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		jwksURL := src
		if base, ok := strings.CutSuffix(src, "/.well-known/jwks.json"); ok {
			iss = cmpOr(iss, base)
		} else {
			iss = cmpOr(iss, src)
			jwksURL = smarthealth.JWKSURL(src)
		}
		// The place the keys come from must itself be https.
		if err := smarthealth.CheckISS(strings.TrimSuffix(jwksURL, "/.well-known/jwks.json")); err != nil {
			return IssuerInfo{}, fmt.Errorf("%q: %w: %w", src, ErrInvalid, err)
		}
		var err error
		if data, err = fetchJWKS(ctx, opts.Client, jwksURL); err != nil {
			return IssuerInfo{}, err
		}
	} else {
		if iss == "" {
			return IssuerInfo{}, fmt.Errorf("a JWKS file does not say which issuer it belongs to: name its iss URL: %w", ErrInvalid)
		}
		f, err := os.Open(src)
		if errors.Is(err, os.ErrNotExist) {
			return IssuerInfo{}, fmt.Errorf("%q: %w", src, ErrNotFound)
		}
		if err != nil {
			return IssuerInfo{}, err
		}
		data, err = io.ReadAll(io.LimitReader(f, smarthealth.MaxJWKS+1))
		f.Close()
		if err != nil {
			return IssuerInfo{}, err
		}
	}
	iss = smarthealth.NormalizeISS(iss)
	if err := smarthealth.CheckISS(iss); err != nil {
		return IssuerInfo{}, fmt.Errorf("issuer %q: %w: %w", iss, ErrInvalid, err)
	}
	keys, skipped, err := smarthealth.ParseJWKS(data)
	if err != nil {
		return IssuerInfo{}, fmt.Errorf("%q: %w: %w", src, ErrInvalid, err)
	}
	existing, err := w.loadIssuers()
	if err != nil {
		return IssuerInfo{}, err
	}
	for _, e := range existing {
		if strings.EqualFold(e.Name, opts.Name) {
			return IssuerInfo{}, &ExistsError{Kind: KindIssuer, Ref: opts.Name}
		}
		if e.ISS == iss {
			return IssuerInfo{}, fmt.Errorf("issuer %q is already trusted as %q: %w", iss, e.Name, ErrExists)
		}
	}
	jwks := struct {
		Keys []smarthealth.JWK `json:"keys"`
	}{}
	for _, k := range keys {
		jwks.Keys = append(jwks.Keys, k.JWK)
	}
	kb, _ := json.Marshal(jwks)
	f := issuerFile{Name: opts.Name, ISS: iss, Source: src, Added: w.Now().UTC().Truncate(time.Second), Keys: kb}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return IssuerInfo{}, err
	}
	if err := os.MkdirAll(w.issuersPath(), 0o700); err != nil {
		return IssuerInfo{}, err
	}
	if err := fsutil.WriteFileNew(filepath.Join(w.issuersPath(), strings.ToLower(opts.Name)+".json"), append(out, '\n'), 0o600); err != nil {
		if errors.Is(err, os.ErrExist) {
			return IssuerInfo{}, &ExistsError{Kind: KindIssuer, Ref: opts.Name}
		}
		return IssuerInfo{}, err
	}
	info := IssuerInfo{Name: f.Name, ISS: iss, Source: src, Added: f.Added, Skipped: skipped}
	for _, k := range keys {
		info.Kids = append(info.Kids, k.Kid)
	}
	return info, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fetchJWKS gets an issuer's JWKS over HTTPS, bounded in size and time.
func fetchJWKS(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%q: %w: %w", url, ErrInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &NetworkError{Op: "fetching the issuer's keys", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &NetworkError{Op: "fetching the issuer's keys", Err: fmt.Errorf("%s answered %s", url, resp.Status)}
	}
	return io.ReadAll(io.LimitReader(resp.Body, smarthealth.MaxJWKS+1))
}

// loadIssuers reads the trust directory. A file that does not parse is
// an error: the wallet does not silently drop an issuer the user trusts.
func (w *Wallet) loadIssuers() ([]IssuerInfo, error) {
	_, infos, err := w.readTrust()
	return infos, err
}

func (w *Wallet) readTrust() (smarthealth.Trust, []IssuerInfo, error) {
	ents, err := os.ReadDir(w.issuersPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var trust smarthealth.Trust
	var infos []IssuerInfo
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(w.issuersPath(), e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		var f issuerFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, nil, fmt.Errorf("trusted issuer file %s: %w: %w", path, ErrInvalid, err)
		}
		keys, skipped, err := smarthealth.ParseJWKS(f.Keys)
		if err != nil {
			return nil, nil, fmt.Errorf("trusted issuer file %s: %w: %w", path, ErrInvalid, err)
		}
		trust = append(trust, smarthealth.Issuer{Name: f.Name, ISS: f.ISS, Keys: keys})
		info := IssuerInfo{Name: f.Name, ISS: f.ISS, Source: f.Source, Added: f.Added, Skipped: skipped}
		for _, k := range keys {
			info.Kids = append(info.Kids, k.Kid)
		}
		infos = append(infos, info)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return trust, infos, nil
}

// Issuers lists the trusted issuers, by name.
func (w *Wallet) Issuers(ctx context.Context) ([]IssuerInfo, error) { return w.loadIssuers() }

// RemoveIssuer removes a trusted issuer. Cards already imported keep the
// provenance they were verified with.
func (w *Wallet) RemoveIssuer(ctx context.Context, name string) (IssuerInfo, error) {
	infos, err := w.loadIssuers()
	if err != nil {
		return IssuerInfo{}, err
	}
	for _, i := range infos {
		if strings.EqualFold(i.Name, name) {
			if err := os.Remove(filepath.Join(w.issuersPath(), strings.ToLower(i.Name)+".json")); err != nil {
				return IssuerInfo{}, err
			}
			fsutil.SyncDir(w.issuersPath())
			return i, nil
		}
	}
	return IssuerInfo{}, &NotFoundError{Kind: KindIssuer, Ref: name}
}
