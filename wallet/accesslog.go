package wallet

// The access log: every decision peers logged on requests for this
// wallet's records (AccessLog), and the access entries set apart as
// suspicious (SuspiciousAccesses).

import (
	"context"
	"errors"
	"sort"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/p2p/netfile"
)

// AccessInfo is one logged decision on a request for one of my records.
type AccessInfo struct {
	Entry         consent.Hash
	Time          time.Time
	Decider       consent.ID
	Requester     consent.ID
	RequesterName string
	Record        string
	Scope         string
	Purpose       string
	Allow         bool
	Reason        consent.Reason
	Grant         consent.Hash
	// Emergency accesses: the break-glass entry the request named, its
	// stated reason (decrypted) and, for an allow, the end of the time box.
	BreakGlass      consent.Hash
	EmergencyReason string
	Until           time.Time
	// Suspicion is set on an entry that failed consent.CheckAccess (see
	// SuspiciousAccesses), with the error that says why; its times are
	// clamped to what can be printed.
	Suspicion       consent.Suspicion
	SuspicionDetail string
	// Repeats is the number of decisions the entry records: 1, or for a
	// peer's summary of a denial repeated within a minute (consent.Repeats)
	// the count, the first and last of them decided at First and Last.
	// Allows are never summarised.
	Repeats     int
	First, Last time.Time
}

// Emergency reports whether the access was made under an emergency
// (break-glass) declaration.
func (a AccessInfo) Emergency() bool { return !a.BreakGlass.IsZero() }

// AccessLog lists every logged decision on requests for this wallet's
// records, oldest first, from the local ledger (pull first to see the
// network's). Access entries that fail consent.CheckAccess (see
// accessCheck) are left out: SuspiciousAccesses lists them.
func (w *Wallet) AccessLog(ctx context.Context) ([]AccessInfo, error) {
	return w.accessLog(false)
}

// SuspiciousAccesses lists the access entries naming this wallet's
// records that fail consent.CheckAccess, oldest first, each with its
// Suspicion. They are evidence against their authors, not accesses.
func (w *Wallet) SuspiciousAccesses(ctx context.Context) ([]AccessInfo, error) {
	return w.accessLog(true)
}

// accessCheck is what the wallet knows beyond the ledger when it reads
// access entries: its clock and, when its network file can be read, the
// peers there as the only deciders besides itself (shares are placed on
// those peers). Without a network file the decider is not checked.
func (w *Wallet) accessCheck() consent.AccessCheck {
	c := consent.AccessCheck{Now: w.Now()}
	n, err := netfile.Read(w.NetworkPath())
	if err != nil {
		return c
	}
	ais, err := netfile.ParseAddrs(n.Peers)
	if err != nil {
		return c
	}
	peers := make(map[consent.ID]bool, len(ais))
	for _, ai := range ais {
		peers[consent.ID(ai.ID.String())] = true
	}
	c.Decider = func(id consent.ID) bool { return peers[id] }
	return c
}

// accessLog lists the accepted access entries, or the suspicious ones.
func (w *Wallet) accessLog(suspicious bool) ([]AccessInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	check := w.accessCheck()
	var me age.Identity
	if id, err := w.Identity(); err == nil {
		me = id.Age
	}
	opened := map[consent.Hash]string{}
	// reasons decrypts a break-glass reason once per entry.
	reasons := func(v *consent.View, h consent.Hash) string {
		if s, ok := opened[h]; ok {
			return s
		}
		s := ""
		if b, ok := v.BreakGlass(h); ok && me != nil {
			if p, err := decryptWith(b.Reason, me, consent.MaxReasonSize); err == nil {
				s = string(p)
			}
		}
		opened[h] = s
		return s
	}
	var out []AccessInfo
	l.View(func(v *consent.View) {
		for _, a := range v.Authors() {
			for _, e := range v.Feed(a) {
				if e.Kind != consent.KindAccess {
					continue
				}
				ab, r, err := consent.CheckAccessIn(v, e, check)
				var se *consent.SuspiciousAccessError
				if errors.As(err, &se) != suspicious || (err != nil && se == nil) || r == nil || r.Owner != w.ID() {
					continue
				}
				ai := AccessInfo{Entry: e.Hash(), Time: consent.PrintableTime(e.Time), Decider: v.Decider(e.Author),
					Requester: r.Requester, RequesterName: w.NameOf(r.Requester), Record: r.Record, Scope: r.Scope,
					Purpose: r.Purpose, Allow: ab.Allow, Reason: ab.Reason, Grant: ab.Grant, BreakGlass: r.BreakGlass}
				if se != nil {
					ai.Suspicion, ai.SuspicionDetail = se.Reason, se.Error()
				}
				if ab.Until != 0 {
					ai.Until = consent.PrintableTime(ab.Until)
				}
				ai.Repeats = ab.Decisions()
				if r := ab.Repeats; r != nil {
					ai.First, ai.Last = consent.PrintableTime(r.First), consent.PrintableTime(r.Last)
				}
				if !r.BreakGlass.IsZero() && se == nil {
					ai.EmergencyReason = reasons(v, r.BreakGlass)
				}
				out = append(out, ai)
			}
		}
	})
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Entry.String() < out[j].Entry.String()
	})
	return out, nil
}
