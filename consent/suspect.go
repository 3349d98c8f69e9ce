package consent

import (
	"errors"
	"fmt"
	"time"
)

// Suspicion is why an access entry is not taken as a real access to the
// owner's records. Anyone can write an access entry on its own feed; the
// entry is evidence against its author, not a disclosure, unless it passes
// CheckAccess.
type Suspicion string

// Suspicion reasons.
const (
	// SuspectRequest: the embedded request does not decode or does not
	// verify under the requester's key.
	SuspectRequest Suspicion = "bad-request"
	// SuspectTime: the entry's time, the end of its time box, or the
	// first time of its repeats lies outside the years 0 to 9999 (what a
	// time can be printed as), or its repeats end after the entry.
	SuspectTime Suspicion = "time-out-of-range"
	// SuspectFuture: the entry is dated after the reading time plus
	// AccessClockSkew.
	SuspectFuture Suspicion = "future-time"
	// SuspectDecider: the decider is neither the owner nor a peer that
	// could hold the record's shares.
	SuspectDecider Suspicion = "unknown-decider"
)

// AccessClockSkew is how far ahead of the reading time an access entry
// may be dated before it counts as suspicious.
const AccessClockSkew = 5 * time.Minute

// Unix seconds of the first and last second a time can be printed as
// (RFC 3339, JSON): 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const (
	minPrintableTime = -62167219200
	maxPrintableTime = 253402300799
)

// ErrSuspiciousAccess reports an access entry that fails CheckAccess.
var ErrSuspiciousAccess = errors.New("suspicious access entry")

// SuspiciousAccessError is returned by CheckAccess: which entry, the
// typed reason, and the underlying error if any (never record contents).
type SuspiciousAccessError struct {
	Author ID
	Seq    uint64
	Reason Suspicion
	Err    error
}

func (e *SuspiciousAccessError) Error() string {
	s := fmt.Sprintf("access entry %s#%d: %v: %s", e.Author.Short(), e.Seq, ErrSuspiciousAccess, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrSuspiciousAccess and the underlying error.
func (e *SuspiciousAccessError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrSuspiciousAccess}
	}
	return []error{ErrSuspiciousAccess, e.Err}
}

// AccessCheck is what a reader knows beyond the ledger when it checks an
// access entry. The zero value checks what the ledger alone can tell.
type AccessCheck struct {
	// Now is the reading time; zero skips the future-time check.
	Now time.Time
	// Decider reports whether an ID is a peer that could hold the
	// record's shares (the holders, the owner's network). The owner is
	// always accepted as a decider. Nil skips the decider check.
	Decider func(ID) bool
}

// CheckAccess checks access entry e in this order: its request decodes
// (SuspectRequest), its time and time box are printable (SuspectTime), its
// request verifies under the requester's key (SuspectRequest), it is not dated after c.Now plus
// AccessClockSkew (SuspectFuture), and its author is the request's owner
// or a decider c.Decider accepts (SuspectDecider). It returns the decoded
// body and request, and a *SuspiciousAccessError when a check fails (the
// body and, when it decoded, the request are returned with it). It is
// pure: the same inputs give the same answer.
func CheckAccess(e *Entry, c AccessCheck) (*AccessBody, *Request, error) {
	return checkAccess(e, c, nil)
}

// accessPre is what checkAccess needs of an access entry, worked out
// beforehand (the audit does it on every core, and verifies the requests'
// signatures in batches): its body, its request as DecodeRequest gives it,
// and VerifyRequest's verdict on that request.
type accessPre struct {
	ab     *AccessBody
	req    *Request
	reqErr error // DecodeRequest's
	sigErr error // VerifyRequest's; unset unless req decoded and timesOK
}

// timesOK reports whether the times of access entry e (body ab) can be
// printed: CheckAccess's SuspectTime check.
func timesOK(e *Entry, ab *AccessBody) bool {
	return printable(e.Time) && (ab.Until == 0 || printable(ab.Until)) &&
		(ab.Repeats == nil || printable(ab.Repeats.First) && ab.Repeats.Last <= e.Time)
}

// checkAccess is CheckAccess; with pre, it decodes and verifies nothing
// again.
func checkAccess(e *Entry, c AccessCheck, pre *accessPre) (*AccessBody, *Request, error) {
	suspect := func(r Suspicion, err error) error {
		return &SuspiciousAccessError{Author: e.Author, Seq: e.Seq, Reason: r, Err: err}
	}
	if pre == nil {
		body, err := e.DecodedBody()
		if err != nil {
			return nil, nil, err
		}
		ab, ok := body.(*AccessBody)
		if !ok {
			return nil, nil, malformed("not an access entry")
		}
		pre = &accessPre{ab: ab}
		if pre.req, pre.reqErr = DecodeRequest(ab.Request); pre.reqErr == nil && timesOK(e, ab) {
			pre.sigErr = VerifyRequest(pre.req)
		}
	}
	ab, r := pre.ab, pre.req
	if pre.reqErr != nil {
		return ab, nil, suspect(SuspectRequest, pre.reqErr)
	}
	if !timesOK(e, ab) {
		return ab, r, suspect(SuspectTime, nil)
	}
	if pre.sigErr != nil {
		return ab, r, suspect(SuspectRequest, pre.sigErr)
	}
	if !c.Now.IsZero() && e.Time > c.Now.Add(AccessClockSkew).Unix() {
		return ab, r, suspect(SuspectFuture, nil)
	}
	if c.Decider != nil && e.Author != r.Owner && !c.Decider(e.Author) {
		return ab, r, suspect(SuspectDecider, nil)
	}
	return ab, r, nil
}

func printable(sec int64) bool { return sec >= minPrintableTime && sec <= maxPrintableTime }

// PrintableTime is TimeOf(sec) clamped to the times that can be printed
// (years 0 to 9999), for showing a suspicious entry's time.
func PrintableTime(sec int64) time.Time {
	return TimeOf(max(minPrintableTime, min(sec, maxPrintableTime)))
}
