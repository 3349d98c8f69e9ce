package wallet

// Trend: a result's values over time across the patient's records
// (Trend).

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

// TrendOptions select the records a trend reads.
type TrendOptions struct {
	RecordOptions
	// Records are record IDs or prefixes; empty means every FHIR record.
	Records []string
}

// Trend finds a result by its code (a LOINC code such as 2339-0, or
// system|code) or its name (the display text, case-insensitive; a part of
// it when that names one result only) in the laboratory results and vital
// signs of the wallet's FHIR records, each decrypted in memory as
// ShowRecord does, and returns its numeric values oldest first. The same
// value on the same date in two records counts once.
func (w *Wallet) Trend(ctx context.Context, query string, o TrendOptions) (*recordview.Trend, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return nil, &InputError{Field: FieldResult, Problem: Missing, Reason: "name a result or its LOINC code"}
	}
	var infos []RecordInfo
	if len(o.Records) == 0 {
		all, err := w.ListRecords(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range all {
			if r.Metadata.Format == vault.FormatFHIR {
				infos = append(infos, r)
			}
		}
	} else {
		for _, ref := range o.Records {
			r, err := w.Record(ctx, ref)
			if err != nil {
				return nil, err
			}
			infos = append(infos, r)
		}
	}
	type candidate struct {
		item   recordview.Item
		record string
	}
	var items []candidate
	for _, r := range infos {
		if r.Metadata.Format != vault.FormatFHIR {
			continue
		}
		_, s, err := w.ShowRecord(ctx, r.ID, o.RecordOptions)
		if err != nil {
			return nil, err
		}
		for _, key := range []string{recordview.KeyResults, recordview.KeyVitalSigns} {
			for _, it := range s.Section(key).Items {
				if it.Value != nil {
					items = append(items, candidate{it, r.ID})
				}
			}
		}
	}
	t := &recordview.Trend{Records: len(infos)}
	match := func(it recordview.Item) bool { return codeMatches(it.Code, query) }
	if !anyMatch(items, func(c candidate) bool { return match(c.item) }) {
		match = func(it recordview.Item) bool { return strings.EqualFold(it.Title, query) }
	}
	if !anyMatch(items, func(c candidate) bool { return match(c.item) }) {
		names := map[string]bool{}
		for _, c := range items {
			if strings.Contains(strings.ToLower(c.item.Title), strings.ToLower(query)) {
				names[c.item.Title] = true
			}
		}
		if len(names) > 1 {
			list := make([]string, 0, len(names))
			for n := range names {
				list = append(list, fmt.Sprintf("%q", n))
			}
			sort.Strings(list)
			return nil, &InputError{Field: FieldResult, Problem: Rejected, Value: query,
				Reason: "several results match: " + strings.Join(list, ", ")}
		}
		match = func(it recordview.Item) bool { return names[it.Title] }
	}
	units := map[string]int{}
	var found []candidate
	for _, c := range items {
		if match(c.item) {
			found = append(found, c)
			units[c.item.Value.Unit]++
		}
	}
	if len(found) == 0 {
		return nil, &NotFoundError{Kind: KindResult, Ref: query}
	}
	for u, n := range units {
		if n > units[t.Unit] || n == units[t.Unit] && u < t.Unit {
			t.Unit = u
		}
	}
	seen := map[string]bool{}
	for _, c := range found {
		if c.item.Value.Unit != t.Unit {
			t.OtherUnits++
			continue
		}
		date, ok := recordview.ParseDate(c.item.Date)
		if !ok {
			continue
		}
		key := fmt.Sprintf("%d|%g", date.UnixNano(), c.item.Value.Value)
		if seen[key] {
			continue
		}
		seen[key] = true
		t.Name, t.Code = c.item.Title, c.item.Code
		t.Points = append(t.Points, recordview.TrendPoint{Date: date, Value: c.item.Value.Value, Unit: t.Unit,
			Low: c.item.Value.Low, High: c.item.Value.High, Record: c.record})
	}
	sort.SliceStable(t.Points, func(i, j int) bool { return t.Points[i].Date.Before(t.Points[j].Date) })
	for _, p := range t.Points {
		if p.Low != nil || p.High != nil {
			t.Low, t.High = p.Low, p.High
		}
	}
	if n := len(t.Points); n > 0 {
		// The name as the newest point gives it.
		for _, c := range found {
			if c.item.Value.Unit == t.Unit {
				t.Name, t.Code = c.item.Title, c.item.Code
			}
		}
	}
	return t, nil
}

func anyMatch[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if f(x) {
			return true
		}
	}
	return false
}

// codeMatches says whether an item's "system|code" is the query: the
// whole of it, or its code part.
func codeMatches(code, query string) bool {
	if code == "" {
		return false
	}
	if strings.EqualFold(code, query) {
		return true
	}
	_, c, ok := strings.Cut(code, "|")
	return ok && c == query
}
