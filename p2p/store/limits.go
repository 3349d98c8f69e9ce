package store

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// Limits are a peer's storage admission rules: who may store here, how
// much each owner may keep and how fast it may put, and how much of the
// disk puts may use. Every limit counts per owner (the authenticated
// remote of a put), so a stranger filling its own quota takes nothing from
// anyone else's; the free-space watermark bounds what all owners together,
// throwaway identities included, can take from the disk. A zero field is
// no limit; DefaultLimits are what `medwallet peer` runs with.
type Limits struct {
	// OwnerBytes bounds the bytes of shares and manifest copies one owner
	// keeps here.
	OwnerBytes int64
	// OwnerObjects bounds the number of shares and manifest copies one
	// owner keeps here.
	OwnerObjects int
	// PutRate is the puts (shares and manifests) per second one owner may
	// make over time, and PutBurst how many it may make at once (a token
	// bucket per owner).
	PutRate  float64
	PutBurst int
	// MinFree is the free space, in bytes, below which the data
	// directory's filesystem takes no new share or manifest: the space
	// left is kept for the peer's ledger, so that logging accesses, and so
	// serving, never stops for a full disk.
	MinFree int64
	// Allowlist, if not nil, is the policy "allowlist": only the owners in
	// it may store here. Nil is the policy "open" (anyone, within the
	// quotas).
	Allowlist map[consent.ID]bool
	// FreeSpace returns the free bytes of the data directory's filesystem;
	// nil asks the filesystem (statfs). Tests inject their own.
	FreeSpace func() (int64, error)
}

// The defaults of `medwallet peer`.
const (
	DefaultOwnerBytes   = 1 << 30 // 1 GiB: at k=3, about 3 GiB of one owner's records
	DefaultOwnerObjects = 20000
	DefaultPutRate      = 20 // per second
	DefaultPutBurst     = 200
	DefaultMinFree      = 256 << 20
)

// DefaultLimits are the limits of a peer whose operator set none: open to
// anyone, with the default quotas, put rate and watermark.
func DefaultLimits() Limits {
	return Limits{OwnerBytes: DefaultOwnerBytes, OwnerObjects: DefaultOwnerObjects,
		PutRate: DefaultPutRate, PutBurst: DefaultPutBurst, MinFree: DefaultMinFree}
}

// Policy names the admission policy: "open" or "allowlist".
func (l Limits) Policy() string {
	if l.Allowlist != nil {
		return "allowlist"
	}
	return "open"
}

// Allowed reports whether the policy admits owner.
func (l Limits) Allowed(owner consent.ID) bool {
	return l.Allowlist == nil || l.Allowlist[owner]
}

// ParseAllowlist reads an allowlist: one owner ID per line; blank lines
// and everything after a '#' are ignored. A line that is not an ID is an
// error naming its line number.
func ParseAllowlist(r io.Reader) (map[consent.ID]bool, error) {
	out := map[consent.ID]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, err := consent.ParseID(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out[id] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadAllowlist reads the allowlist file at path (see ParseAllowlist).
func ReadAllowlist(path string) (map[consent.ID]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("storage allowlist: %w", err)
	}
	defer f.Close()
	m, err := ParseAllowlist(f)
	if err != nil {
		return nil, fmt.Errorf("storage allowlist %s: %w", path, err)
	}
	return m, nil
}

// RateLimiter is a token bucket per owner. Buckets that have refilled are
// forgotten once there are many, so that throwaway identities cost it no
// lasting memory.
type RateLimiter struct {
	rate, burst float64
	now         func() time.Time

	mu sync.Mutex
	m  map[consent.ID]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxIdleBuckets is how many buckets the limiter keeps before it drops
// the full ones.
const maxIdleBuckets = 4096

// NewRateLimiter allows each owner rate takes per second and burst at
// once; now is the clock (time.Now if nil). A rate of 0 allows everything.
func NewRateLimiter(rate float64, burst int, now func() time.Time) *RateLimiter {
	if now == nil {
		now = time.Now
	}
	if burst < 1 {
		burst = 1
	}
	return &RateLimiter{rate: rate, burst: float64(burst), now: now, m: map[consent.ID]*bucket{}}
}

// Take takes one token from owner's bucket and reports whether there was one.
func (r *RateLimiter) Take(owner consent.ID) bool {
	if r == nil || r.rate <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b := r.m[owner]
	if b == nil {
		if len(r.m) >= maxIdleBuckets {
			r.prune(now)
		}
		b = &bucket{tokens: r.burst, last: now}
		r.m[owner] = b
	}
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(r.burst, b.tokens+d*r.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (r *RateLimiter) prune(now time.Time) {
	for id, b := range r.m {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.m, id)
		}
	}
}

// OwnerUsage is what one owner keeps on a peer.
type OwnerUsage struct {
	Owner         consent.ID `json:"owner,omitempty"`
	Shares        int        `json:"shares"`
	ShareBytes    int64      `json:"share_bytes"`
	Manifests     int        `json:"manifests"`
	ManifestBytes int64      `json:"manifest_bytes"`
}

// Bytes is the owner's bytes of shares and manifests.
func (u OwnerUsage) Bytes() int64 { return u.ShareBytes + u.ManifestBytes }

// Objects is the owner's number of shares and manifest copies.
func (u OwnerUsage) Objects() int { return u.Shares + u.Manifests }

// Usage is a peer's storage: per owner ID (never a record ID), the
// totals, the limits it runs with and the free disk. It is what
// `medwallet peer usage` shows and what a running peer writes to its
// usage snapshot.
type Usage struct {
	// Time is when the figures were taken.
	Time time.Time `json:"time"`
	// Source is "database" (read from a stopped peer's shares.db) or
	// "snapshot" (the file a running peer rewrites every few seconds).
	Source       string       `json:"source"`
	Owners       []OwnerUsage `json:"owners"`
	Total        OwnerUsage   `json:"total"`
	Policy       string       `json:"policy,omitempty"`
	QuotaBytes   int64        `json:"quota_bytes"`
	QuotaObjects int          `json:"quota_objects"`
	PutRate      float64      `json:"put_rate"`
	MinFree      int64        `json:"min_free_bytes"`
	// Free is the free space of the data directory's filesystem, -1 when
	// unknown.
	Free int64 `json:"free_bytes"`
}

// NewUsage builds a Usage from per-owner figures, sorted by bytes (most
// first), with the totals and the limits.
func NewUsage(owners []OwnerUsage, l Limits) Usage {
	u := Usage{Owners: owners, Policy: l.Policy(), QuotaBytes: l.OwnerBytes, QuotaObjects: l.OwnerObjects,
		PutRate: l.PutRate, MinFree: l.MinFree, Free: -1}
	if u.Owners == nil {
		u.Owners = []OwnerUsage{}
	}
	sort.Slice(u.Owners, func(i, j int) bool {
		a, b := u.Owners[i], u.Owners[j]
		if a.Bytes() != b.Bytes() {
			return a.Bytes() > b.Bytes()
		}
		return a.Owner < b.Owner
	})
	for _, o := range u.Owners {
		u.Total.Shares += o.Shares
		u.Total.ShareBytes += o.ShareBytes
		u.Total.Manifests += o.Manifests
		u.Total.ManifestBytes += o.ManifestBytes
	}
	return u
}
