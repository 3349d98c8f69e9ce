package wallet

// The access log: every decision peers logged on requests for this
// wallet's records (AccessLog).

import (
	"context"
	"sort"
	"time"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
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
}

// Emergency reports whether the access was made under an emergency
// (break-glass) declaration.
func (a AccessInfo) Emergency() bool { return !a.BreakGlass.IsZero() }

// AccessLog lists every logged decision on requests for this wallet's
// records, oldest first, from the local ledger (pull first to see the
// network's).
func (w *Wallet) AccessLog(ctx context.Context) ([]AccessInfo, error) {
	l, _, err := w.openLedger(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
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
				b, err := e.DecodedBody()
				if err != nil {
					continue
				}
				ab := b.(*consent.AccessBody)
				r, err := consent.DecodeRequest(ab.Request)
				if err != nil || r.Owner != w.ID() {
					continue
				}
				ai := AccessInfo{Entry: e.Hash(), Time: consent.TimeOf(e.Time), Decider: e.Author,
					Requester: r.Requester, RequesterName: w.NameOf(r.Requester), Record: r.Record, Scope: r.Scope,
					Purpose: r.Purpose, Allow: ab.Allow, Reason: ab.Reason, Grant: ab.Grant, BreakGlass: r.BreakGlass}
				if ab.Until != 0 {
					ai.Until = consent.TimeOf(ab.Until)
				}
				if !r.BreakGlass.IsZero() {
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
