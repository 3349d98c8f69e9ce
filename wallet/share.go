package wallet

// Sharing records as a SMART Health Link (Share): the records are
// encrypted here as JWE files under a fresh link key, the patient's feed
// gets a shl entry, and the files go to the network's peers that serve
// links over HTTPS (p2p/shlserve); the link names one of them. The key
// is in the link only: no peer ever holds it. Revoking the shl entry
// (RevokeLink) closes the link on every peer that has the revocation.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/client"
	"github.com/medwallet/medwallet/p2p/shlserve"
	"github.com/medwallet/medwallet/smarthealth"
	"github.com/medwallet/medwallet/vault"
)

// Fields of a share's inputs.
const (
	FieldPasscode Field = "passcode" // a link's passcode
	FieldLabel    Field = "label"    // a link's label
	FieldAttempts Field = "attempts" // wrong passcodes a link takes
	FieldShare    Field = "share"    // what a link holds: its records and their size
)

// DefaultShareAttempts is how many wrong passcodes a link takes by default.
const DefaultShareAttempts = 10

// ShareOptions are the inputs of Share.
type ShareOptions struct {
	Records  []string  // record IDs or prefixes: one file each
	Passcode string    // "": none (flag P otherwise)
	Attempts int       // wrong passcodes before the link is dead (0: DefaultShareAttempts); only with a passcode
	Expires  time.Time // zero: none
	Label    string    // shown by SHL viewers; in the link only, never on the ledger
}

// SharedLink is a link Share made.
type SharedLink struct {
	Link    string       // the shlink:/ text: holds the key
	URL     string       // the manifest URL
	ID      string       // the link ID (the URL's last segment)
	Entry   consent.Hash // the shl entry: what revoke names
	Flags   string
	Expires time.Time
	Records []string
	Files   []SharedFile
	Peers   []consent.ID // the peers that hold the files
}

// SharedFile is one encrypted file of a link.
type SharedFile struct {
	Record      string
	ContentType string // what the file is inside the JWE's cty
	Wrapped     bool   // a non-FHIR record wrapped in a FHIR DocumentReference
	Size        int    // bytes of the JWE text
}

// ParseShareExpiry reads a link's --expires: what ParseExpiry reads, or a
// duration in seconds or minutes ("90s", "10m") for short-lived links.
func ParseShareExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil && (strings.HasSuffix(s, "s") || strings.HasSuffix(s, "m")) {
		if d <= 0 {
			return time.Time{}, &InputError{Field: FieldExpiry, Problem: Rejected, Value: s, Reason: fmt.Sprintf("expiry %q is in the past", s)}
		}
		return now.Add(d).UTC().Truncate(time.Second).Add(time.Second), nil
	}
	return ParseExpiry(s, now)
}

// Share shares records as a SMART Health Link served by the network's
// peers. It needs a network and at least one of its peers serving links
// (medwallet peer --shl-listen).
func (w *Wallet) Share(ctx context.Context, opts ShareOptions) (SharedLink, error) {
	defer w.holdLedger()()
	if _, _, err := w.checkShare(opts); err != nil {
		return SharedLink{}, err
	}
	if !w.HasNetwork() {
		return SharedLink{}, fmt.Errorf("a SMART Health Link is served by your network's peers: %w", ErrNoNetwork)
	}
	body, link, files, err := w.prepareShare(ctx, opts)
	if err != nil {
		return SharedLink{}, err
	}
	c, err := w.Dial(ctx)
	if err != nil {
		return SharedLink{}, err
	}
	defer c.Close()
	hosts := shlPeers(ctx, c)
	if len(hosts) == 0 {
		return SharedLink{}, &NetworkError{Op: OpShare, Err: fmt.Errorf("%w: none of the %d reachable peers serves SMART Health Links (medwallet peer --shl-listen)",
			ErrNoSHLPeer, len(c.Reachable()))}
	}
	var verifier *shlserve.Verifier
	if body.Passcode() {
		if verifier, err = shlserve.NewVerifier(opts.Passcode); err != nil {
			return SharedLink{}, err
		}
	}
	// The shl entry first: a peer takes a link's files only once its
	// ledger holds the entry.
	var entry consent.Hash
	signed, err := w.signAndPublish(ctx, func() error {
		l, s, err := w.openLedger(true)
		if err != nil {
			return err
		}
		defer l.Close()
		e, err := l.Append(s, w.Now(), consent.KindShl, body)
		if err != nil {
			return fmt.Errorf("writing the link's entry: %w", err)
		}
		entry = e.Hash()
		return nil
	})
	if err != nil {
		if signed {
			return SharedLink{}, fmt.Errorf("the link's entry is signed but not yet on the network: %w", err)
		}
		return SharedLink{}, err
	}
	out := SharedLink{ID: body.Link, Entry: entry, Flags: body.Flags, Records: body.Records,
		Expires: opts.Expires, Files: files.info}
	var base string
	var errs []error
	for _, h := range hosts {
		u, err := w.uploadLink(ctx, c, h.id, entry, files, verifier)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if base == "" {
			base = u
		}
		out.Peers = append(out.Peers, consent.ID(h.id.String()))
	}
	if base == "" {
		return SharedLink{}, &NetworkError{Op: OpShare, Err: fmt.Errorf("no peer took the link's files: %w", errors.Join(errs...))}
	}
	w.markLinks()
	link.URL = base + "/shl/" + body.Link
	if out.Link, err = link.Encode(); err != nil {
		return SharedLink{}, &InputError{Field: FieldLabel, Problem: Rejected, Err: err,
			Reason: fmt.Sprintf("the link cannot be encoded: %v", err)}
	}
	out.URL = link.URL
	return out, nil
}

// OpShare is the network operation of Share.
const OpShare = "sharing a SMART Health Link"

// ErrNoSHLPeer reports a network none of whose reachable peers serves
// SMART Health Links.
var ErrNoSHLPeer = errors.New("no peer serves SMART Health Links")

type shlHost struct {
	id   peer.ID
	base string
}

// shlPeers asks every reachable peer whether it serves links.
func shlPeers(ctx context.Context, c *client.Client) []shlHost {
	var out []shlHost
	for _, p := range c.Reachable() {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		u, err := shlserve.Info(ictx, c.Host(), p)
		cancel()
		if err == nil && u != "" {
			out = append(out, shlHost{p, u})
		}
	}
	return out
}

// shareFiles are the encrypted files of a link, in its records' order.
type shareFiles struct {
	jwe  [][]byte
	info []SharedFile
}

// prepareShare checks the options, reads and encrypts every record and
// returns the shl entry's body, the link (without its URL) and the files.
// checkShare checks a share's options before anything is read or
// dialled, and returns the records' full IDs (sorted, unique) and the
// wrong passcodes the link takes.
func (w *Wallet) checkShare(opts ShareOptions) ([]string, int, error) {
	if len(opts.Records) == 0 {
		return nil, 0, &InputError{Field: FieldShare, Problem: Missing, Reason: "name at least one record to share"}
	}
	var ids []string
	for _, ref := range opts.Records {
		id, err := w.resolveRecord(ref)
		if err != nil {
			return nil, 0, err
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > consent.MaxShlFiles {
		return nil, 0, &InputError{Field: FieldShare, Problem: Rejected,
			Reason: fmt.Sprintf("a link holds at most %d records", consent.MaxShlFiles)}
	}
	if opts.Passcode == "" && opts.Attempts != 0 {
		return nil, 0, &InputError{Field: FieldAttempts, Problem: Conflict, With: FieldPasscode,
			Reason: "a limit of wrong passcodes needs a passcode"}
	}
	if opts.Passcode != "" && (len(opts.Passcode) < 4 || len(opts.Passcode) > 128) {
		return nil, 0, &InputError{Field: FieldPasscode, Problem: Rejected,
			Reason: "a passcode has 4 to 128 characters"}
	}
	attempts := opts.Attempts
	if opts.Passcode != "" && attempts == 0 {
		attempts = DefaultShareAttempts
	}
	if attempts < 0 || attempts > consent.MaxShlAttempts {
		return nil, 0, &InputError{Field: FieldAttempts, Problem: Rejected, Value: fmt.Sprint(opts.Attempts),
			Reason: fmt.Sprintf("allow 1 to %d wrong passcodes", consent.MaxShlAttempts)}
	}
	if err := (smarthealth.Link{URL: "https://placeholder.invalid/x", Label: opts.Label}).Validate(); err != nil {
		return nil, 0, &InputError{Field: FieldLabel, Problem: Rejected, Value: opts.Label,
			Reason: strings.TrimPrefix(err.Error(), "invalid SMART Health Link: ")}
	}
	return ids, attempts, nil
}

func (w *Wallet) prepareShare(ctx context.Context, opts ShareOptions) (*consent.ShlBody, smarthealth.Link, shareFiles, error) {
	var files shareFiles
	ids, attempts, err := w.checkShare(opts)
	if err != nil {
		return nil, smarthealth.Link{}, files, err
	}
	key, err := smarthealth.NewKey()
	if err != nil {
		return nil, smarthealth.Link{}, files, err
	}
	idBytes := make([]byte, 32)
	if _, err := rand.Read(idBytes); err != nil {
		return nil, smarthealth.Link{}, files, err
	}
	body := &consent.ShlBody{Link: base64.RawURLEncoding.EncodeToString(idBytes), Records: ids}
	link := smarthealth.Link{URL: "https://placeholder.invalid/x", Key: key, Label: opts.Label, V: 1}
	if opts.Passcode != "" {
		body.Flags, body.Attempts, link.Flag = consent.ShlFlagPasscode, uint32(attempts), "P"
	}
	if !opts.Expires.IsZero() {
		body.Expires, link.Exp = opts.Expires.Unix(), opts.Expires.UTC().Truncate(time.Second)
	}
	if err := link.Validate(); err != nil {
		return nil, smarthealth.Link{}, files, fmt.Errorf("the link: %w", err)
	}
	for _, id := range ids {
		var plain bytes.Buffer
		info, err := w.GetRecord(ctx, id, &plain, RecordOptions{})
		if err != nil {
			return nil, smarthealth.Link{}, files, err
		}
		content, wrapped, err := shlContent(info.Metadata, plain.Bytes())
		if err != nil {
			return nil, smarthealth.Link{}, files, err
		}
		jwe, err := smarthealth.Encrypt(key, content, smarthealth.EncryptOptions{ContentType: smarthealth.ContentFHIR, Compress: true})
		if err != nil {
			return nil, smarthealth.Link{}, files, err
		}
		if len(jwe) > consent.MaxShlFileSize {
			return nil, smarthealth.Link{}, files, &InputError{Field: FieldShare, Problem: Rejected, Value: id,
				Reason: fmt.Sprintf("record %s is %d bytes once encrypted; a link's file holds at most %d MiB", id, len(jwe), consent.MaxShlFileSize>>20)}
		}
		files.jwe = append(files.jwe, []byte(jwe))
		files.info = append(files.info, SharedFile{Record: id, ContentType: smarthealth.ContentFHIR, Wrapped: wrapped, Size: len(jwe)})
		body.Files = append(body.Files, uint64(len(jwe)))
	}
	if err := body.Validate(); err != nil {
		return nil, smarthealth.Link{}, files, err
	}
	return body, link, files, nil
}

// shlContent is what a record is inside its JWE. The SHL specification
// allows FHIR JSON, SMART Health Cards and SMART API access behind a link,
// so a FHIR record goes as it is (application/fhir+json) and any other
// (C-CDA, PDF, DICOM, other files) as a FHIR R4 DocumentReference whose
// one attachment holds the file's bytes (base64) and media type.
func shlContent(md vault.Metadata, plain []byte) ([]byte, bool, error) {
	if md.Format == vault.FormatFHIR {
		return plain, false, nil
	}
	mt := md.MediaType
	if mt == "" {
		mt = "application/octet-stream"
	}
	att := map[string]any{"contentType": mt, "data": base64.StdEncoding.EncodeToString(plain), "size": len(plain)}
	if md.Label != "" {
		att["title"] = md.Label
	}
	doc := map[string]any{
		"resourceType": "DocumentReference",
		"status":       "current",
		"content":      []any{map[string]any{"attachment": att}},
	}
	b, err := json.Marshal(doc)
	return b, true, err
}

// uploadLink sends a link's files to p, pushing the wallet's feed to p
// first if p does not hold the shl entry yet. It returns p's base URL.
func (w *Wallet) uploadLink(ctx context.Context, c *client.Client, p peer.ID, entry consent.Hash, files shareFiles, v *shlserve.Verifier) (string, error) {
	var base string
	for i, f := range files.jwe {
		u, err := shlserve.Put(ctx, c.Host(), p, entry, i, files.info[i].ContentType, f, v)
		if errors.Is(err, shlserve.ErrNotFound) {
			if perr := w.pushFeedTo(ctx, c, p); perr != nil {
				return "", perr
			}
			u, err = shlserve.Put(ctx, c.Host(), p, entry, i, files.info[i].ContentType, f, v)
		}
		if err != nil {
			return "", err
		}
		base = u
	}
	return base, nil
}

// pushFeedTo pushes the wallet's whole feed to p.
func (w *Wallet) pushFeedTo(ctx context.Context, c *client.Client, p peer.ID) error {
	l, _, err := w.openLedger(false)
	if err != nil {
		return err
	}
	defer l.Close()
	return pushTo(ctx, c.Host(), p, l.Ledger, w.ID(), nil)
}
