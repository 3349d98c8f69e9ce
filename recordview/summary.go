// Package recordview turns the plaintext of a record into a summary a
// patient can read: the sections of the International Patient Summary for
// FHIR R4 JSON, the titled sections of a C-CDA document with their
// narrative, the study, series and instance of a DICOM file, the title and
// page count of a PDF.
//
// It is pure: bytes and the record's metadata in, a Summary out. Every read
// is bounded (MaxInput bytes, MaxItems items a section, MaxText bytes of
// narrative a section); past a bound the summary says Partial. It never
// writes anything anywhere: callers decrypt into memory and hand the bytes
// over, so a summary leaves no plaintext on disk.
//
// The Summary is also the --json contract of `medwallet record show`
// (snake_case names, documented in docs/cli.md).
package recordview

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/medwallet/medwallet/vault"
)

// Bounds of one summary.
const (
	// MaxInput is the most bytes of a record Summarize reads.
	MaxInput = 256 << 20
	// MaxItems is the most items a section keeps (its Count goes on).
	MaxItems = 20000
	// MaxText is the most bytes of narrative text a section keeps.
	MaxText = 256 << 10
	// TextWidth is the width narrative tables are laid out for (the
	// 80-column renderer indents them by two).
	TextWidth = 78
)

// Section keys of a FHIR summary, in the order of the International
// Patient Summary.
const (
	KeyPatient       = "patient"
	KeyAllergies     = "allergies"
	KeyMedications   = "medications"
	KeyProblems      = "problems"
	KeyImmunizations = "immunizations"
	KeyResults       = "results"
	KeyVitalSigns    = "vital-signs"
	KeyProcedures    = "procedures"
	KeyEncounters    = "encounters"
	KeyOther         = "other"
)

// Summary is what a record shows.
type Summary struct {
	Format string `json:"format"`
	// Title names the document when the record itself says (a C-CDA or
	// PDF title, a DICOM study description).
	Title    string    `json:"title,omitempty"`
	Sections []Section `json:"sections"`
	// Partial says a bound was reached or the record ended early: the
	// summary shows what was read before.
	Partial bool `json:"partial,omitempty"`
}

// Section is one part of a summary. Count is the number of items the
// record holds for it, which is more than len(Items) only when MaxItems
// was reached. Text is narrative (C-CDA), laid out for TextWidth columns.
type Section struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	Count int    `json:"count"`
	Items []Item `json:"items,omitempty"`
	Text  string `json:"text,omitempty"`
}

// Item is one entry of a section: an allergy, a medication, a result.
// Date is as the record gives it (an ISO 8601 date or date-time), Title the
// display text of its code, Detail a one-line summary of its fields.
type Item struct {
	Date   string  `json:"date,omitempty"`
	Title  string  `json:"title"`
	Detail string  `json:"detail,omitempty"`
	Fields []Field `json:"fields,omitempty"`
	// Sensitive is set when the resource carries a sensitive security
	// label (fhirscope's categories, named in Labels).
	Sensitive bool     `json:"sensitive,omitempty"`
	Labels    []string `json:"labels,omitempty"`
	// Code is the first coding of the item's code, "system|code".
	Code string `json:"code,omitempty"`
	// Value is a numeric result, with its unit and reference range.
	Value *Quantity `json:"value,omitempty"`
}

// Field is one named value of an item, in the record's order.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Quantity is a numeric result.
type Quantity struct {
	Value float64  `json:"value"`
	Unit  string   `json:"unit,omitempty"`
	Low   *float64 `json:"low,omitempty"`
	High  *float64 `json:"high,omitempty"`
}

// Section returns the section with the key, or nil.
func (s *Summary) Section(key string) *Section {
	for i := range s.Sections {
		if s.Sections[i].Key == key {
			return &s.Sections[i]
		}
	}
	return nil
}

// ErrUnsupported reports a record format without a summary (binary).
var ErrUnsupported = errors.New("no summary for this format")

// Summarize reads a record's plaintext (at most MaxInput bytes) and
// returns its summary, chosen by md.Format. A record that is malformed
// part-way gives the summary of what came before, marked Partial; a
// binary record gives ErrUnsupported. Errors never quote the record.
func Summarize(r io.Reader, md vault.Metadata) (*Summary, error) {
	lr := &limitedReader{r: r, n: MaxInput}
	var (
		s   *Summary
		err error
	)
	switch md.Format {
	case vault.FormatFHIR:
		s, err = summarizeFHIR(lr)
	case vault.FormatCCDA:
		s, err = summarizeCCDA(lr)
	case vault.FormatDICOM:
		s, err = summarizeDICOM(lr)
	case vault.FormatPDF:
		s, err = summarizePDF(lr)
	default:
		return nil, fmt.Errorf("%s record: %w", md.Format, ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	if lr.hit {
		s.Partial = true
	}
	return s, nil
}

// SummarizeBytes is Summarize over a record held in memory.
func SummarizeBytes(b []byte, md vault.Metadata) (*Summary, error) {
	return Summarize(bytes.NewReader(b), md)
}

// limitedReader is io.LimitReader that remembers whether the limit cut
// the input.
type limitedReader struct {
	r   io.Reader
	n   int64
	hit bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.hit = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// ErrMalformed reports a record that does not parse as its format says.
var ErrMalformed = errors.New("the record does not parse as its format")
