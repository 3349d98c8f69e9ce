package wallet

// Minimum necessary: how a grant's scopes and sensitive categories pick
// the records it covers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/fhirscope"
	"github.com/medwallet/medwallet/internal/units"
	"github.com/medwallet/medwallet/vault"
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

// WholeRecord is a record a grant releases whole although the wallet
// cannot filter it: a C-CDA, PDF, DICOM or other non-FHIR document (or a
// FHIR record too malformed to filter). Why says what allowed it.
type WholeRecord struct {
	Record string
	Format string
	// DocumentType is the FHIR resource type that stands for the document
	// in scopes: DocumentReference, or ImagingStudy for DICOM.
	DocumentType string
	Why          string // one of the Whole* reasons
}

// Why a record is released whole.
const (
	WholeByScope    = "scope"        // a scope names the document type (or every type)
	WholeByFlag     = "whole-record" // GrantOptions.WholeRecord
	WholeUnfiltered = "unfilterable" // detected as FHIR but not filterable
)

// FieldWholeRecord marks the refusal of a grant whose scopes cover only
// part of a document the wallet cannot filter (an InputError with Problem
// Rejected; Value is the document type a scope would have to name).
const FieldWholeRecord Field = "whole record"

// documentType is the FHIR resource type a scope must name to release a
// non-FHIR record of this format whole: ImagingStudy for DICOM,
// DocumentReference for every other document.
func documentType(format string) string {
	if format == vault.FormatDICOM {
		return "ImagingStudy"
	}
	return "DocumentReference"
}

// formatName says what a format is, for refusals.
func formatName(md vault.Metadata) string {
	switch md.Format {
	case vault.FormatCCDA:
		if md.CDA != nil && md.CDA.DocumentType != "" {
			return "a C-CDA document (" + md.CDA.DocumentType + ")"
		}
		return "a C-CDA document"
	case vault.FormatPDF:
		return "a PDF document"
	case vault.FormatDICOM:
		return "a DICOM image"
	}
	return "a " + md.Format + " file (" + md.MediaType + ")"
}

// coversDocument reports whether the scopes release a document of type t
// whole: a scope readable for t or for every type, without a query that
// would narrow it (the wallet cannot narrow a document).
func coversDocument(scopes []string, t string) bool {
	for _, s := range scopes {
		sc, err := consent.ParseScope(s)
		if err != nil {
			continue
		}
		if (sc.Type == t || sc.Type == "*") && sc.Perms&consent.PermRead != 0 && len(sc.Params) == 0 {
			return true
		}
	}
	return false
}

// minimumResult is what minimumNecessary decided.
type minimumResult struct {
	out      []RecordInfo // the records to grant
	derived  []DerivedRecord
	excluded []ExcludedRecord
	released []WholeRecord // non-FHIR (or unfilterable) records granted whole
	// whole is whether an "all records" grant can stay one (nothing was
	// derived or left out).
	whole bool
}

// minimumNecessary decides, record by record, what a grant with these
// scopes may carry. A FHIR record is filtered (fhirscope): if everything
// in it is allowed the record itself is granted; if part is, a derived
// record with only that part is made and granted instead; if nothing is,
// it is left out. Any other format (C-CDA, PDF, DICOM, anything) cannot be
// filtered, so it is granted whole only when a scope names its document
// type (DocumentReference, or ImagingStudy for DICOM) or every type, or
// wholeRecord is set. Otherwise a record named in the grant refuses the
// grant with an explanation, and one that came in through "all records"
// (explicit false) is left out with the same reason.
func (w *Wallet) minimumNecessary(ctx context.Context, infos []RecordInfo, scopes, allow []string, grantee string,
	wholeRecord, explicit bool) (res minimumResult, err error) {
	sel, err := fhirscope.NewSelection(scopes, allow)
	if err != nil {
		return res, &InputError{Field: FieldCategory, Problem: Malformed, Err: err}
	}
	res.whole = true
	for _, info := range infos {
		if info.Metadata.Format != vault.FormatFHIR {
			md := info.Metadata
			t := documentType(md.Format)
			switch {
			case coversDocument(scopes, t):
				res.released = append(res.released, WholeRecord{Record: info.ID, Format: md.Format, DocumentType: t, Why: WholeByScope})
			case wholeRecord:
				res.released = append(res.released, WholeRecord{Record: info.ID, Format: md.Format, DocumentType: t, Why: WholeByFlag})
			case explicit:
				return res, &InputError{Field: FieldWholeRecord, Problem: Rejected, Value: t, Reason: fmt.Sprintf(
					"record %s is %s of %s that the wallet cannot filter: the scopes %s cover only part of what it may hold, "+
						"and granting it would release the whole document", info.ID[:12], formatName(md), units.Size(md.Size),
					strings.Join(scopes, " "))}
			default:
				res.whole = false
				res.excluded = append(res.excluded, ExcludedRecord{Record: info.ID, Reason: fmt.Sprintf(
					"it is %s the wallet cannot filter, and no scope names patient/%s.rs (or pass --whole-record)", formatName(md), t)})
				continue
			}
			res.out = append(res.out, info)
			continue
		}
		if info.Metadata.Size > fhirscope.MaxInput {
			return res, fmt.Errorf("record %s is too large to filter for a grant (%d bytes): %w", info.ID, info.Metadata.Size, ErrInvalid)
		}
		var plain, filtered bytes.Buffer
		if _, err := w.GetRecord(ctx, info.ID, &plain, RecordOptions{}); err != nil {
			return res, err
		}
		rep, err := fhirscope.Filter(bytes.NewReader(plain.Bytes()), &filtered, sel)
		plain.Reset()
		if errors.Is(err, fhirscope.ErrNotFHIR) {
			// detected as FHIR but not filterable: granted whole, as before
			res.out = append(res.out, info)
			res.released = append(res.released, WholeRecord{Record: info.ID, Format: info.Metadata.Format, Why: WholeUnfiltered})
			continue
		}
		if err != nil {
			return res, fmt.Errorf("record %s: %w", info.ID, err)
		}
		if len(rep.Dropped) == 0 && len(rep.Excluded) == 0 {
			res.out = append(res.out, info)
			continue
		}
		res.whole = false
		if rep.KeptTotal() == 0 {
			res.excluded = append(res.excluded, ExcludedRecord{Record: info.ID, Categories: categories(rep.Excluded),
				Reason: "nothing in it falls under the scopes without a sensitive category the grant does not name"})
			continue
		}
		d, err := w.AddRecord(ctx, &filtered, AddRecordOptions{Label: "minimum necessary from " + info.ID[:8] + " for " + grantee,
			K: info.K, N: info.N})
		if err != nil {
			return res, fmt.Errorf("storing the minimum-necessary copy of record %s: %w", info.ID, err)
		}
		res.derived = append(res.derived, DerivedRecord{Source: info.ID, Derived: d.ID, Kept: rep.Kept, Dropped: rep.Dropped, Excluded: rep.Excluded})
		res.out = append(res.out, d)
	}
	if len(res.out) == 0 {
		return minimumResult{excluded: res.excluded}, &InputError{Field: FieldScope, Problem: Rejected,
			Reason: "nothing in these records falls under the grant's scopes"}
	}
	return res, nil
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
