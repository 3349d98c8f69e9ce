package wallet

// Minimum necessary: how a grant's scopes and sensitive categories pick
// the records it covers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/medwallet/medwallet/fhirscope"
)

// DerivedRecord is a minimum-necessary copy of a FHIR record, made for a
// grant whose scopes cover only part of it: it holds only the allowed
// resources, under its own key, and the grant names it instead of the source.
type DerivedRecord struct {
	Source, Derived string
	Kept, Dropped   map[string]int
	// Excluded are resources the scopes covered but their sensitive
	// categories kept out (types and categories, never contents).
	Excluded []fhirscope.Exclusion
}

// ExcludedRecord is a record left out of a grant: nothing in it falls
// under the scopes, or all of it is in sensitive categories the grant does
// not name.
type ExcludedRecord struct {
	Record     string
	Categories []string
	Reason     string
}

// minimumNecessary decides, record by record, what a grant with these
// scopes may carry. A FHIR record is filtered (fhirscope): if everything
// in it is allowed the record itself is granted; if part is, a derived
// record with only that part is made and granted instead; if nothing is,
// it is left out. Other formats carry no FHIR labels and are granted whole.
// It returns the records to grant and whether an "all records" grant can
// stay one (nothing was derived or left out).
func (w *Wallet) minimumNecessary(ctx context.Context, infos []RecordInfo, scopes, allow []string, grantee string) (
	out []RecordInfo, derived []DerivedRecord, excluded []ExcludedRecord, whole bool, err error) {
	sel, err := fhirscope.NewSelection(scopes, allow)
	if err != nil {
		return nil, nil, nil, false, &InputError{Field: FieldCategory, Problem: Malformed, Err: err}
	}
	whole = true
	for _, info := range infos {
		if info.Metadata.Format != "fhir-r4" {
			out = append(out, info)
			continue
		}
		if info.Metadata.Size > fhirscope.MaxInput {
			return nil, nil, nil, false, fmt.Errorf("record %s is too large to filter for a grant (%d bytes): %w", info.ID, info.Metadata.Size, ErrInvalid)
		}
		var plain, filtered bytes.Buffer
		if _, err := w.GetRecord(ctx, info.ID, &plain, RecordOptions{}); err != nil {
			return nil, nil, nil, false, err
		}
		rep, err := fhirscope.Filter(bytes.NewReader(plain.Bytes()), &filtered, sel)
		plain.Reset()
		if errors.Is(err, fhirscope.ErrNotFHIR) {
			out = append(out, info) // detected as FHIR but not filterable: granted whole, as before
			continue
		}
		if err != nil {
			return nil, nil, nil, false, fmt.Errorf("record %s: %w", info.ID, err)
		}
		if len(rep.Dropped) == 0 && len(rep.Excluded) == 0 {
			out = append(out, info)
			continue
		}
		whole = false
		if rep.KeptTotal() == 0 {
			excluded = append(excluded, ExcludedRecord{Record: info.ID, Categories: categories(rep.Excluded),
				Reason: "nothing in it falls under the scopes without a sensitive category the grant does not name"})
			continue
		}
		d, err := w.AddRecord(ctx, &filtered, AddRecordOptions{Label: "minimum necessary from " + info.ID[:8] + " for " + grantee,
			K: info.K, N: info.N})
		if err != nil {
			return nil, nil, nil, false, fmt.Errorf("storing the minimum-necessary copy of record %s: %w", info.ID, err)
		}
		derived = append(derived, DerivedRecord{Source: info.ID, Derived: d.ID, Kept: rep.Kept, Dropped: rep.Dropped, Excluded: rep.Excluded})
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, nil, excluded, false, &InputError{Field: FieldScope, Problem: Rejected,
			Reason: "nothing in these records falls under the grant's scopes"}
	}
	return out, derived, excluded, whole, nil
}

func categories(ex []fhirscope.Exclusion) []string {
	set := map[string]bool{}
	for _, e := range ex {
		for _, c := range e.Categories {
			set[c] = true
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
