package shares

// Outcomes of a get, as WithGetObserver reports them.
const (
	GetAllowed = "allow"   // consent allowed it: the share was sent (reason: the consent reason)
	GetDenied  = "deny"    // consent denied it, logged (reason: the consent reason)
	GetRefused = "refused" // refused before any decision (reason: the response code, e.g. rate-limited, busy, not-found, bad-request)
)

// WithGetObserver calls fn with the outcome and reason of every get this
// service answers (a peer's metrics count them). The reason is a consent
// reason or a response code, never a record, share or party ID. fn runs
// on the stream's goroutine and must not block.
func WithGetObserver(fn func(outcome, reason string)) Option {
	return func(s *Service) { s.onGet = fn }
}

// observeGet reports the answer r to a get to the observer, if any.
func (s *Service) observeGet(r response) {
	if s.onGet == nil {
		return
	}
	switch {
	case r.OK:
		s.onGet(GetAllowed, string(r.Reason))
	case r.Code == "denied":
		s.onGet(GetDenied, string(r.Reason))
	default:
		s.onGet(GetRefused, r.Code)
	}
}
