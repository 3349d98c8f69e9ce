package wallet

// Trusted issuers of SMART Health Cards: the local trust directory
// (AddIssuer, Issuers, RemoveIssuer, issuerTrust).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	// Lists describes the card revocation lists of the keys that have
	// one (a crlVersion in the JWKS) or for which one is held.
	Lists []IssuerListInfo
}

// IssuerListInfo is the card revocation list of one issuer key.
type IssuerListInfo struct {
	Kid string
	// KeyVersion is the key's crlVersion: the ctr of the issuer's newest
	// list (0: the JWKS names none).
	KeyVersion int
	// Ctr is the ctr of the list held, 0 when none is; RIDs how many
	// revocation identifiers it names.
	Ctr, RIDs int
	Source    string
	Updated   time.Time
}

// Stale reports whether the list held is older than the key's crlVersion
// says, or missing.
func (l IssuerListInfo) Stale() bool { return l.Ctr < l.KeyVersion }

type issuerFile struct {
	Name   string          `json:"name"`
	ISS    string          `json:"iss"`
	Source string          `json:"source"`
	Added  time.Time       `json:"added"`
	Keys   json.RawMessage `json:"keys"`
	// CRLs are the card revocation lists held, by kid.
	CRLs map[string]crlFile `json:"crls,omitempty"`
}

// crlFile is one revocation list held: where it came from, when, and the
// list as the issuer published it.
type crlFile struct {
	Source  string          `json:"source"`
	Updated time.Time       `json:"updated"`
	List    json.RawMessage `json:"list"`
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
	if online := strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://"); online &&
		slices.ContainsFunc(keys, func(k smarthealth.IssuerKey) bool { return k.JWK.CrlVersion > 0 }) {
		// Online, the revocation lists come with the keys; a list that
		// cannot be fetched is reported as missing (IssuerListInfo.Stale)
		// and `issuer crl` fetches it later.
		if info, err := w.UpdateIssuerCRL(ctx, opts.Name, "", opts.Client); err == nil {
			return info, nil
		}
	}
	info := IssuerInfo{Name: f.Name, ISS: iss, Source: src, Added: f.Added, Skipped: skipped}
	for _, k := range keys {
		info.Kids = append(info.Kids, k.Kid)
		if k.JWK.CrlVersion > 0 {
			info.Lists = append(info.Lists, IssuerListInfo{Kid: k.Kid, KeyVersion: k.JWK.CrlVersion})
		}
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
	return fetchBounded(ctx, client, url, "the issuer's keys", smarthealth.MaxJWKS)
}

// fetchBounded gets a JSON document over HTTPS, bounded in size (limit)
// and time; what names it in errors.
func fetchBounded(ctx context.Context, client *http.Client, url, what string, limit int64) ([]byte, error) {
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
		return nil, &NetworkError{Op: "fetching " + what, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &NetworkError{Op: "fetching " + what, Err: fmt.Errorf("%s answered %s", url, resp.Status)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &NetworkError{Op: "fetching " + what, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes: %w", url, what, limit, ErrInvalid)
	}
	return data, nil
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
		is := smarthealth.Issuer{Name: f.Name, ISS: f.ISS, Keys: keys}
		info := IssuerInfo{Name: f.Name, ISS: f.ISS, Source: f.Source, Added: f.Added, Skipped: skipped}
		for _, k := range keys {
			info.Kids = append(info.Kids, k.Kid)
			l := IssuerListInfo{Kid: k.Kid, KeyVersion: k.JWK.CrlVersion}
			if cf, ok := f.CRLs[k.Kid]; ok {
				c, err := smarthealth.ParseCRL(cf.List)
				if err != nil || c.Kid != k.Kid {
					return nil, nil, fmt.Errorf("trusted issuer file %s: the list of key %s: %w: %w", path, k.Kid, ErrInvalid, cmpErr(err, smarthealth.ErrBadCRL))
				}
				if is.CRLs == nil {
					is.CRLs = map[string]*smarthealth.CRL{}
				}
				is.CRLs[k.Kid] = c
				l.Ctr, l.RIDs, l.Source, l.Updated = c.Ctr, c.Len(), cf.Source, cf.Updated
			}
			if l.KeyVersion > 0 || l.Ctr > 0 {
				info.Lists = append(info.Lists, l)
			}
		}
		trust = append(trust, is)
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

func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// UpdateIssuerCRL brings the card revocation lists of a trusted issuer up
// to date. With no source, the list of every key with a crlVersion is
// fetched from ISS/.well-known/crl/KID.json (ISS: the URL the keys were
// fetched from, else the issuer's iss); a source is one list, a file
// or an https URL, whose kid must name a key of the issuer. A list older
// (lower ctr) than the one held is refused: an issuer's lists only grow,
// and an older one could un-revoke a card.
func (w *Wallet) UpdateIssuerCRL(ctx context.Context, name, source string, client *http.Client) (IssuerInfo, error) {
	path, f, err := w.readIssuerFile(name)
	if err != nil {
		return IssuerInfo{}, err
	}
	keys, _, err := smarthealth.ParseJWKS(f.Keys)
	if err != nil {
		return IssuerInfo{}, fmt.Errorf("trusted issuer file %s: %w: %w", path, ErrInvalid, err)
	}
	type fetched struct {
		src  string
		data []byte
	}
	var lists []fetched
	switch {
	case source == "":
		// Lists are fetched from where the keys were: the issuer's URL
		// the keys came from, else its iss.
		base := f.ISS
		if strings.HasPrefix(f.Source, "https://") || strings.HasPrefix(f.Source, "http://") {
			base = strings.TrimSuffix(f.Source, "/.well-known/jwks.json")
		}
		for _, k := range keys {
			if k.JWK.CrlVersion == 0 {
				continue
			}
			u := smarthealth.CRLURL(base, k.Kid)
			data, err := fetchBounded(ctx, client, u, "the issuer's revocation list", smarthealth.MaxCRL)
			if err != nil {
				return IssuerInfo{}, err
			}
			lists = append(lists, fetched{u, data})
		}
		if len(lists) == 0 {
			return IssuerInfo{}, fmt.Errorf("issuer %q: no key has a crlVersion, so it publishes no revocation list; name a list file or URL: %w", f.Name, ErrInvalid)
		}
	case strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://"):
		if err := smarthealth.CheckISS(source); err != nil {
			return IssuerInfo{}, fmt.Errorf("%q: %w: %w", source, ErrInvalid, err)
		}
		data, err := fetchBounded(ctx, client, source, "the issuer's revocation list", smarthealth.MaxCRL)
		if err != nil {
			return IssuerInfo{}, err
		}
		lists = append(lists, fetched{source, data})
	default:
		data, err := readBounded(source, smarthealth.MaxCRL)
		if err != nil {
			return IssuerInfo{}, err
		}
		lists = append(lists, fetched{source, data})
	}
	if f.CRLs == nil {
		f.CRLs = map[string]crlFile{}
	}
	now := w.Now().UTC().Truncate(time.Second)
	for _, l := range lists {
		c, err := smarthealth.ParseCRL(l.data)
		if err != nil {
			return IssuerInfo{}, fmt.Errorf("%q: %w: %w", l.src, ErrInvalid, err)
		}
		if !slices.ContainsFunc(keys, func(k smarthealth.IssuerKey) bool { return k.Kid == c.Kid }) {
			return IssuerInfo{}, fmt.Errorf("%q: the list is for key %s, which issuer %q does not have: %w", l.src, c.Kid, f.Name, ErrInvalid)
		}
		if old, ok := f.CRLs[c.Kid]; ok {
			if held, err := smarthealth.ParseCRL(old.List); err == nil && held.Ctr > c.Ctr {
				return IssuerInfo{}, fmt.Errorf("%q: list %d of key %s is older than list %d held: %w", l.src, c.Ctr, c.Kid, held.Ctr, ErrInvalid)
			}
		}
		f.CRLs[c.Kid] = crlFile{Source: l.src, Updated: now, List: json.RawMessage(bytes.TrimSpace(l.data))}
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return IssuerInfo{}, err
	}
	if err := fsutil.WriteFileAtomic(path, append(out, '\n'), 0o600); err != nil {
		return IssuerInfo{}, err
	}
	infos, err := w.loadIssuers()
	if err != nil {
		return IssuerInfo{}, err
	}
	for _, i := range infos {
		if i.Name == f.Name {
			return i, nil
		}
	}
	return IssuerInfo{}, &NotFoundError{Kind: KindIssuer, Ref: name}
}

// readIssuerFile reads the trust file of the issuer named name.
func (w *Wallet) readIssuerFile(name string) (string, *issuerFile, error) {
	if !issuerNameRE.MatchString(name) {
		return "", nil, &NotFoundError{Kind: KindIssuer, Ref: name}
	}
	path := filepath.Join(w.issuersPath(), strings.ToLower(name)+".json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, &NotFoundError{Kind: KindIssuer, Ref: name}
	}
	if err != nil {
		return "", nil, err
	}
	var f issuerFile
	if err := json.Unmarshal(data, &f); err != nil {
		return "", nil, fmt.Errorf("trusted issuer file %s: %w: %w", path, ErrInvalid, err)
	}
	return path, &f, nil
}

// readBounded reads a local file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%q: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%q is larger than %d bytes: %w", path, limit, ErrInvalid)
	}
	return data, nil
}
