package shlserve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/libp2p/go-libp2p/core/host"
	"golang.org/x/time/rate"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/wire"
)

// Config configures the HTTPS side.
type Config struct {
	// Listen is the TCP address to listen on ("127.0.0.1:8443", ":443").
	Listen string
	// CertFile and KeyFile are the PEM certificate chain and key; TLS,
	// if set, is used instead (tests).
	CertFile, KeyFile string
	TLS               *tls.Config
	// PublicURL is the base URL links name ("https://shl.example.org");
	// empty: https:// and the listener's address.
	PublicURL string
	// Limits are DefaultLimits where zero.
	Limits *Limits
}

// Deps are what the service needs from the peer.
type Deps struct {
	Host    host.Host
	Ledger  *consent.Ledger
	Signer  consent.Signer // the peer's identity: it logs through its sub-feeds
	DataDir string
	// Allowed is the peer's storage policy (nil: everyone).
	Allowed func(consent.ID) bool
	// Ready reports whether the peer caught up with the ledger; before
	// that manifest requests get 503 (fail closed).
	Ready func() bool
	// Publish gossips an entry the service appended.
	Publish func(*consent.Entry)
	Logger  *slog.Logger
	Now     func() time.Time
}

// Service serves links: the upload protocol and the HTTPS endpoint.
type Service struct {
	deps  Deps
	lim   Limits
	log   *slog.Logger
	store *Store
	base  string
	srv   *http.Server
	ln    net.Listener
	slots *wire.Slots
	pool  *wire.Pool

	decideMu sync.Mutex
	feeds    map[consent.ID]*consent.SubFeed

	locMu sync.Mutex
	locs  map[string]location

	ipMu sync.Mutex
	ips  map[string]*rate.Limiter

	stop chan struct{}
	wg   sync.WaitGroup
}

type location struct {
	link  string
	entry consent.Hash
	index int
	until time.Time
}

// Start opens the store, listens and serves.
func Start(cfg Config, d Deps) (_ *Service, err error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Ready == nil {
		d.Ready = func() bool { return true }
	}
	s := &Service{deps: d, lim: DefaultLimits(), log: d.Logger, feeds: map[consent.ID]*consent.SubFeed{},
		locs: map[string]location{}, ips: map[string]*rate.Limiter{}, stop: make(chan struct{})}
	if cfg.Limits != nil {
		s.lim = *cfg.Limits
	}
	tc := cfg.TLS
	if tc == nil {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("shl: certificate: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.store, err = OpenStore(d.DataDir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.store.Close()
		}
	}()
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("shl: listen: %w", err)
	}
	s.base = strings.TrimSuffix(cfg.PublicURL, "/")
	if s.base == "" {
		s.base = "https://" + s.ln.Addr().String()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /shl/{id}", s.manifest)
	mux.HandleFunc("GET /shl/file/{token}", s.file)
	s.srv = &http.Server{
		Handler: mux, TLSConfig: tc,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 2 * time.Minute,
		IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(d.Logger.Handler(), slog.LevelDebug),
	}
	s.slots = wire.NewSlots(s.lim.Streams)
	s.pool = wire.NewPool(s.lim.Memory, maxFrame, 0)
	if d.Host != nil {
		d.Host.SetStreamHandler(ID, s.handle)
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(tls.NewListener(s.ln, tc)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("shl server stopped", "err", err)
		}
	}()
	go s.sweepLoop()
	s.log.Info("serving SMART Health Links", "url", s.base, "listen", s.ln.Addr().String())
	return s, nil
}

// URL is the public base URL: a link's manifest URL is URL()+"/shl/"+ID.
func (s *Service) URL() string { return s.base }

// Close stops serving and closes the store.
func (s *Service) Close() error {
	if s.deps.Host != nil {
		s.deps.Host.RemoveStreamHandler(ID)
	}
	close(s.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return errors.Join(err, s.store.Close())
}

func (s *Service) now() time.Time { return s.deps.Now() }

// manifestRequest is the SHL manifest request body.
type manifestRequest struct {
	Recipient         *string `json:"recipient"`
	Passcode          *string `json:"passcode"`
	EmbeddedLengthMax *int64  `json:"embeddedLengthMax"`
}

type manifestFile struct {
	ContentType string `json:"contentType"`
	Location    string `json:"location,omitempty"`
	Embedded    string `json:"embedded,omitempty"`
}

// maxRecipient bounds the recipient string kept (bytes, after cleaning).
const maxRecipient = 200

// CleanRecipient is the recipient string as it is logged: invalid UTF-8
// and control characters removed, spaces trimmed, at most 200 bytes (cut
// at a character boundary).
func CleanRecipient(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "") {
		if unicode.IsControl(r) || r == utf8.RuneError {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxRecipient {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// allowIP applies the per-address rate.
func (s *Service) allowIP(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	s.ipMu.Lock()
	defer s.ipMu.Unlock()
	l, ok := s.ips[host]
	if !ok {
		if len(s.ips) >= 1<<16 {
			s.ips = map[string]*rate.Limiter{} // forget everyone rather than grow
		}
		l = rate.NewLimiter(rate.Limit(s.lim.PerIP), s.lim.Burst)
		s.ips[host] = l
	}
	return l.Allow()
}

func (s *Service) manifest(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !s.allowIP(r) {
		w.Header().Set("Retry-After", "1")
		refuse(w, http.StatusTooManyRequests, "too many requests")
		return
	}
	var req manifestRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.lim.Body))
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			refuse(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		refuse(w, http.StatusBadRequest, "the body is not a JSON manifest request")
		return
	}
	recipient := ""
	if req.Recipient != nil {
		recipient = CleanRecipient(*req.Recipient)
	}
	if recipient == "" {
		refuse(w, http.StatusBadRequest, "recipient is required")
		return
	}
	id := r.PathValue("id")
	if consent.ValidateShlLinkID(id) != nil {
		refuse(w, http.StatusNotFound, "no such link")
		return
	}
	lk, ok, err := s.store.get(id)
	if err != nil || !ok || lk.Dead == 0 && !lk.complete() {
		// (A link whose files are still arriving is not served yet.)
		refuse(w, http.StatusNotFound, "no such link")
		return
	}
	if !s.deps.Ready() {
		w.Header().Set("Retry-After", "5")
		refuse(w, http.StatusServiceUnavailable, "the peer is catching up with the ledger")
		return
	}
	passOK := false
	if lk.Verifier != nil && req.Passcode != nil {
		passOK = lk.Verifier.Check(*req.Passcode) // slow: outside the lock
	}
	d, err := s.decide(id, lk.Owner, lk.Entry, recipient, passOK)
	if err != nil {
		s.log.Warn("shl decision not logged; nothing served", "err", err)
		w.Header().Set("Retry-After", "5")
		refuse(w, http.StatusServiceUnavailable, "the peer cannot log the access now")
		return
	}
	switch {
	case d.Reason == consent.ReasonWrongPasscode:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "wrong passcode", "remainingAttempts": d.Left})
		return
	case !d.Allow:
		refuse(w, http.StatusNotFound, "the link is not active")
		return
	}
	if lk.Dead != 0 {
		refuse(w, http.StatusNotFound, "the link is not active")
		return
	}
	files := make([]manifestFile, len(lk.Types))
	for i, ct := range lk.Types {
		files[i].ContentType = ct
		if req.EmbeddedLengthMax != nil {
			f, err := s.store.file(id, i)
			if err != nil {
				refuse(w, http.StatusNotFound, "the link's files are not all here")
				return
			}
			if int64(len(f)) <= *req.EmbeddedLengthMax {
				files[i].Embedded = string(f)
				continue
			}
		}
		tok, err := s.newLocation(location{link: id, entry: lk.Entry, index: i, until: s.now().Add(LocationLife)})
		if err != nil {
			w.Header().Set("Retry-After", "5")
			refuse(w, http.StatusServiceUnavailable, "too many file locations outstanding")
			return
		}
		files[i].Location = s.base + "/shl/file/" + tok
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": files})
}

// decide decides a manifest request and logs it in this peer's sub-feed
// about owner before anything is answered.
func (s *Service) decide(id string, owner consent.ID, entry consent.Hash, recipient string, passOK bool) (consent.ShlDecision, error) {
	s.decideMu.Lock()
	defer s.decideMu.Unlock()
	lk, ok, err := s.store.get(id) // the count of wrong passcodes, as of now
	if err != nil || !ok {
		return consent.ShlDecision{}, fmt.Errorf("link vanished: %w", err)
	}
	now := s.now()
	feed, ok := s.feeds[owner]
	if !ok {
		if feed, err = consent.NewSubFeed(s.deps.Signer, owner); err != nil {
			return consent.ShlDecision{}, err
		}
		if len(s.feeds) >= 4096 {
			s.feeds = map[consent.ID]*consent.SubFeed{}
		}
		s.feeds[owner] = feed
	}
	link, err := feed.EnsureLinked(s.deps.Ledger, now)
	if err != nil {
		return consent.ShlDecision{}, err
	}
	var d consent.ShlDecision
	var e *consent.Entry
	// Decided and appended at a time no earlier than the sub-feed's head:
	// the shares service appends to the same sub-feed, so an append that
	// lost that race (its time now behind the head) is decided again.
	for attempt := 0; ; attempt++ {
		var body consent.ShlAccessBody
		var ageRecipient string
		s.deps.Ledger.View(func(v *consent.View) {
			if h := v.Head(feed.ID()); now.Unix() < h.Time {
				now = time.Unix(h.Time, 0)
			}
			d = consent.DecideShl(v, entry, owner, now, passOK, lk.Failures)
			body = consent.ShlAccessBody{Owner: owner, Link: entry, Allow: d.Allow, Reason: d.Reason, OwnerHead: v.Head(owner), Failures: d.Failures}
			ageRecipient = v.AgeRecipient(owner) // the newest age-key entry's, else the identity entry's
		})
		if body.Recipient, err = encryptTo(recipient, ageRecipient); err != nil {
			return consent.ShlDecision{}, err
		}
		if e, err = s.deps.Ledger.Append(feed, now, consent.KindShlAccess, &body); err == nil {
			break
		}
		if attempt == 1 {
			return consent.ShlDecision{}, fmt.Errorf("logging the access: %w", err)
		}
		now = s.now()
	}
	if d.Failures != lk.Failures {
		if err := s.store.setFailures(id, d.Failures); err != nil {
			s.log.Warn("counting a wrong passcode failed", "err", err)
		}
	}
	if s.deps.Publish != nil {
		if link != nil {
			s.deps.Publish(link)
		}
		s.deps.Publish(e)
	}
	s.log.Info("shl manifest request", "owner", owner.Short(), "allow", d.Allow, "reason", d.Reason)
	return d, nil
}

// encryptTo encrypts the recipient string to the owner's age recipient.
func encryptTo(text, recipient string) ([]byte, error) {
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		return nil, fmt.Errorf("the owner's identity entry is missing or has no age recipient: %w", err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *Service) newLocation(l location) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	s.locMu.Lock()
	defer s.locMu.Unlock()
	if len(s.locs) >= s.lim.Locations {
		now := s.now()
		for k, v := range s.locs {
			if now.After(v.until) {
				delete(s.locs, k)
			}
		}
		if len(s.locs) >= s.lim.Locations {
			return "", errors.New("too many locations")
		}
	}
	s.locs[tok] = l
	return tok, nil
}

func (s *Service) file(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !s.allowIP(r) {
		w.Header().Set("Retry-After", "1")
		refuse(w, http.StatusTooManyRequests, "too many requests")
		return
	}
	tok := r.PathValue("token")
	s.locMu.Lock()
	l, ok := s.locs[tok]
	if ok && s.now().After(l.until) {
		delete(s.locs, tok)
		ok = false
	}
	s.locMu.Unlock()
	if !ok || !s.alive(l.link, l.entry) {
		refuse(w, http.StatusNotFound, "no such file")
		return
	}
	f, err := s.store.file(l.link, l.index)
	if err != nil {
		refuse(w, http.StatusNotFound, "no such file")
		return
	}
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("Content-Length", strconv.Itoa(len(f)))
	_, _ = w.Write(f)
}

// alive reports whether the link of shl entry entry may still be served:
// held, not revoked, not expired, not locked.
func (s *Service) alive(id string, entry consent.Hash) bool {
	lk, ok, err := s.store.get(id)
	if err != nil || !ok || lk.Dead != 0 || lk.Entry != entry {
		return false
	}
	var d consent.ShlDecision
	s.deps.Ledger.View(func(v *consent.View) { d = consent.DecideShl(v, entry, lk.Owner, s.now(), true, lk.Failures) })
	return d.Allow
}

// tombstoneLife is how long a dead link's descriptor stays, so that
// requests on it are still decided and logged.
const tombstoneLife = 7 * 24 * time.Hour

// sweepLoop drops the files of dead links every minute, and the
// descriptors of links dead for tombstoneLife.
func (s *Service) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		s.Sweep()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Sweep drops the files of the links that are revoked, expired or locked,
// and the descriptors of those dead for a week.
func (s *Service) Sweep() {
	now := s.now()
	type item struct {
		id string
		l  link
	}
	var all []item
	_ = s.store.each(func(id string, l link) { all = append(all, item{id, l}) })
	for _, it := range all {
		if it.l.Dead != 0 {
			if now.Sub(time.Unix(it.l.Dead, 0)) > tombstoneLife {
				_ = s.store.drop(it.id)
			}
			continue
		}
		var d consent.ShlDecision
		known := true
		s.deps.Ledger.View(func(v *consent.View) {
			_, known = v.ShlLink(it.l.Entry)
			d = consent.DecideShl(v, it.l.Entry, it.l.Owner, now, true, it.l.Failures)
		})
		if known && !d.Allow {
			if err := s.store.kill(it.id, now.Unix()); err != nil {
				s.log.Warn("dropping a dead link's files failed", "err", err)
			}
		}
	}
}
