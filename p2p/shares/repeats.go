package shares

// Repeated denials. A requester denied again for the same owner, record
// and reason (and break-glass entry) within consent.RepeatWindow of the
// access entry that logged the first such denial gets that entry's hash in
// its reply, and the peer appends nothing for it: it counts the denial.
// When the window closes, when the bound on runs tracked forces it out, or
// when the service closes, the peer appends one summary entry for the run
// (consent.Repeats): the last counted denial's body with the count and the
// times of the first and last. Allowed accesses are never counted: each is
// its own entry, as an accounting of disclosures needs.

import (
	"container/list"
	"fmt"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// maxRepeatRuns bounds the runs of denials tracked at once; the oldest is
// summarised early to make room.
const maxRepeatRuns = 4096

// repeatKey is what makes a denial a repeat of an earlier one.
type repeatKey struct {
	requester, owner consent.ID
	record           string
	reason           consent.Reason
	breakGlass       consent.Hash // emergency accesses are accounted per break-glass entry
}

func keyOf(ar *consent.Request, r consent.Reason) repeatKey {
	return repeatKey{requester: ar.Requester, owner: ar.Owner, record: ar.Record, reason: r, breakGlass: ar.BreakGlass}
}

// repeatRun is one logged denial and the repeats counted since.
type repeatRun struct {
	key    repeatKey
	of     consent.Hash // the entry that logged the denial
	logged int64        // its time
	count  uint32       // denials counted since, not logged yet
	first  int64
	last   int64
	body   consent.AccessBody // the last counted denial's body
}

// repeats is the state of the runs; decideMu guards it.
type repeats struct {
	runs   map[repeatKey]*list.Element // of *repeatRun
	order  list.List                   // by logged time, oldest in front
	timer  *time.Timer
	closed bool
	max    int // maxRepeatRuns unless a test sets it
}

func (r *repeatRun) due(now int64) bool {
	return now >= r.logged+int64(consent.RepeatWindow/time.Second)
}

// countRepeat counts a denial with body, decided at now, if it repeats one
// logged within the window, and returns the hash of the entry that logged
// that one. decideMu must be held.
func (s *Service) countRepeat(k repeatKey, now time.Time, body *consent.AccessBody) (consent.Hash, bool) {
	el, ok := s.reps.runs[k]
	if !ok || s.reps.closed {
		return consent.Hash{}, false
	}
	r := el.Value.(*repeatRun)
	t := now.Unix()
	if r.due(t) || r.count >= 1<<31 {
		return consent.Hash{}, false
	}
	if r.count == 0 {
		r.first = t
	}
	r.count++
	r.last = t
	r.body = *body
	return r.of, true
}

// startRun tracks the denial logged as entry e at now, replacing any run
// of its key, and arms the timer that summarises runs when their window
// closes. It returns the summary entries it had to append to make room.
// decideMu must be held.
func (s *Service) startRun(k repeatKey, of consent.Hash, now time.Time) ([]*consent.Entry, error) {
	if s.reps.closed {
		return nil, nil
	}
	if s.reps.runs == nil {
		s.reps.runs = make(map[repeatKey]*list.Element)
	}
	var out []*consent.Entry
	if el, ok := s.reps.runs[k]; ok {
		e, err := s.summarise(el.Value.(*repeatRun), now)
		if err != nil {
			return nil, err
		}
		out = appendEntry(out, e)
		s.dropRun(el)
	}
	max := s.reps.max
	if max <= 0 {
		max = maxRepeatRuns
	}
	for len(s.reps.runs) >= max {
		el := s.reps.order.Front()
		e, err := s.summarise(el.Value.(*repeatRun), now)
		if err != nil {
			return out, err
		}
		out = appendEntry(out, e)
		s.dropRun(el)
	}
	s.reps.runs[k] = s.reps.order.PushBack(&repeatRun{key: k, of: of, logged: now.Unix()})
	if s.reps.timer == nil {
		s.reps.timer = time.AfterFunc(consent.RepeatWindow+time.Second, s.repeatTick)
	}
	return out, nil
}

func appendEntry(es []*consent.Entry, e *consent.Entry) []*consent.Entry {
	if e != nil {
		es = append(es, e)
	}
	return es
}

func (s *Service) dropRun(el *list.Element) {
	s.reps.order.Remove(el)
	delete(s.reps.runs, el.Value.(*repeatRun).key)
}

// flushRepeats summarises the runs whose window has closed at now, or all
// of them, and returns the entries appended. decideMu must be held.
func (s *Service) flushRepeats(now time.Time, all bool) ([]*consent.Entry, error) {
	var out []*consent.Entry
	for el := s.reps.order.Front(); el != nil; el = s.reps.order.Front() {
		r := el.Value.(*repeatRun)
		if !all && !r.due(now.Unix()) {
			break
		}
		e, err := s.summarise(r, now)
		if err != nil {
			return out, err
		}
		out = appendEntry(out, e)
		s.dropRun(el)
	}
	return out, nil
}

// summarise appends the summary entry of run r, if it counted any
// denial, at now, or at the time of this peer's last entry or of the
// run's last denial if later (a clock that stepped back).
func (s *Service) summarise(r *repeatRun, now time.Time) (*consent.Entry, error) {
	if r.count == 0 {
		return nil, nil
	}
	if now.Unix() < r.last {
		now = time.Unix(r.last, 0)
	}
	// The run's first denial opened (or found) the sub-feed: no link here.
	feed, _, err := s.subFeed(r.key.owner, now)
	if err != nil {
		return nil, fmt.Errorf("logging %d repeated denials: %w", r.count, err)
	}
	s.ledger.View(func(v *consent.View) {
		if h := v.Head(feed.ID()); now.Unix() < h.Time {
			now = time.Unix(h.Time, 0)
		}
	})
	body := r.body
	body.Repeats = &consent.Repeats{Count: r.count, First: r.first, Last: r.last, Of: r.of}
	e, err := s.ledger.Append(feed, now, consent.KindAccess, &body)
	if err != nil {
		return nil, fmt.Errorf("logging %d repeated denials: %w", r.count, err)
	}
	r.count = 0
	s.log.Info("repeated denials logged", "requester", r.key.requester.Short(), "owner", r.key.owner.Short(),
		"reason", string(r.key.reason), "count", body.Repeats.Count, "entry", e.Hash().String()[:12])
	return e, nil
}

// repeatTick summarises the runs whose window has closed and re-arms the
// timer while runs remain.
func (s *Service) repeatTick() {
	s.decideMu.Lock()
	var logged []*consent.Entry
	if !s.reps.closed {
		now := s.now()
		var err error
		if logged, err = s.flushRepeats(now, false); err != nil {
			s.log.Warn("logging repeated denials failed", "err", err)
		}
		s.reps.timer = nil
		if el := s.reps.order.Front(); el != nil {
			wait := time.Duration(el.Value.(*repeatRun).logged-now.Unix())*time.Second + consent.RepeatWindow
			s.reps.timer = time.AfterFunc(max(wait, time.Second), s.repeatTick)
		}
	}
	s.decideMu.Unlock()
	for _, e := range logged {
		s.publish(e)
	}
}

// closeRepeats summarises every run (at shutdown) and stops counting.
func (s *Service) closeRepeats() {
	s.decideMu.Lock()
	if s.reps.timer != nil {
		s.reps.timer.Stop()
		s.reps.timer = nil
	}
	logged, err := s.flushRepeats(s.now(), true)
	if err != nil {
		s.log.Warn("logging repeated denials failed", "err", err)
	}
	s.reps.closed = true
	s.decideMu.Unlock()
	for _, e := range logged {
		s.publish(e)
	}
}
