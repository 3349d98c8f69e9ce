package recordview

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/medwallet/medwallet/fhirscope"
	"github.com/medwallet/medwallet/vault"
)

// fhirSections are the sections of a FHIR summary, in order.
var fhirSections = []struct{ key, title string }{
	{KeyPatient, "Patient"},
	{KeyAllergies, "Allergies and intolerances"},
	{KeyMedications, "Medications"},
	{KeyProblems, "Problems"},
	{KeyImmunizations, "Immunizations"},
	{KeyResults, "Results"},
	{KeyVitalSigns, "Vital signs"},
	{KeyProcedures, "Procedures"},
	{KeyEncounters, "Encounters"},
}

// SectionKeys returns the keys of the FHIR sections, in order, then
// "other".
func SectionKeys() []string {
	keys := make([]string, 0, len(fhirSections)+1)
	for _, s := range fhirSections {
		keys = append(keys, s.key)
	}
	return append(keys, KeyOther)
}

// SectionOf returns the section key a FHIR resource goes to, or "" for a
// resource the summary only counts under "other". resourceType and the
// Observation category codes are all it looks at: tests count sections
// with it from an independent walk of the JSON.
func SectionOf(resourceType string, categories []string) string {
	switch resourceType {
	case "Patient":
		return KeyPatient
	case "AllergyIntolerance":
		return KeyAllergies
	case "MedicationRequest", "MedicationStatement":
		return KeyMedications
	case "Condition":
		return KeyProblems
	case "Immunization":
		return KeyImmunizations
	case "Procedure":
		return KeyProcedures
	case "Encounter":
		return KeyEncounters
	case "Observation":
		for _, c := range categories {
			switch c {
			case "laboratory":
				return KeyResults
			case "vital-signs":
				return KeyVitalSigns
			}
		}
	}
	return ""
}

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type concept struct {
	Text   string   `json:"text"`
	Coding []coding `json:"coding"`
}

// display is the concept's own text, else its first coding's display,
// else its first code.
func (c *concept) display() string {
	if c == nil {
		return ""
	}
	if t := strings.TrimSpace(c.Text); t != "" {
		return t
	}
	for _, cd := range c.Coding {
		if d := strings.TrimSpace(cd.Display); d != "" {
			return d
		}
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			return cd.Code
		}
	}
	return ""
}

// code is the first coding as "system|code".
func (c *concept) code() string {
	if c == nil {
		return ""
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			return cd.System + "|" + cd.Code
		}
	}
	return ""
}

// status is the first coding's code (clinical statuses).
func (c *concept) status() string {
	if c == nil {
		return ""
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			return cd.Code
		}
	}
	return strings.TrimSpace(c.Text)
}

type reference struct {
	Reference string `json:"reference"`
	Display   string `json:"display"`
}

type quantity struct {
	Value      *float64 `json:"value"`
	Comparator string   `json:"comparator"`
	Unit       string   `json:"unit"`
	Code       string   `json:"code"`
}

func (q *quantity) number() (float64, bool) {
	if q == nil || q.Value == nil {
		return 0, false
	}
	f := *q.Value
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func (q *quantity) unit() string {
	if q == nil {
		return ""
	}
	if q.Unit != "" {
		return q.Unit
	}
	return q.Code
}

func (q *quantity) String() string {
	v, ok := q.number()
	if !ok {
		return ""
	}
	s := q.Comparator + formatNumber(v)
	if u := q.unit(); u != "" {
		s += " " + u
	}
	return s
}

// formatNumber prints at most two decimals, without trailing zeros.
func formatNumber(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

func (p *period) start() string {
	if p == nil {
		return ""
	}
	return p.Start
}

type dosage struct {
	Text       string `json:"text"`
	AsNeeded   *bool  `json:"asNeededBoolean"`
	DoseAndRat []struct {
		DoseQuantity *quantity `json:"doseQuantity"`
	} `json:"doseAndRate"`
	Timing *struct {
		Repeat *struct {
			Frequency  *float64 `json:"frequency"`
			Period     *float64 `json:"period"`
			PeriodUnit string   `json:"periodUnit"`
		} `json:"repeat"`
	} `json:"timing"`
}

func (d dosage) String() string {
	if t := strings.TrimSpace(d.Text); t != "" {
		return t
	}
	var parts []string
	for _, dr := range d.DoseAndRat {
		if s := dr.DoseQuantity.String(); s != "" {
			parts = append(parts, s)
			break
		}
	}
	if d.Timing != nil && d.Timing.Repeat != nil {
		r := d.Timing.Repeat
		if r.Frequency != nil && r.Period != nil && r.PeriodUnit != "" {
			parts = append(parts, fmt.Sprintf("%s times every %s %s", formatNumber(*r.Frequency), formatNumber(*r.Period), r.PeriodUnit))
		}
	}
	if d.AsNeeded != nil && *d.AsNeeded {
		parts = append(parts, "as needed")
	}
	return strings.Join(parts, ", ")
}

type humanName struct {
	Use    string   `json:"use"`
	Text   string   `json:"text"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
	Prefix []string `json:"prefix"`
}

func (n humanName) String() string {
	if t := strings.TrimSpace(n.Text); t != "" {
		return t
	}
	return strings.TrimSpace(strings.Join(append(append([]string{}, n.Given...), n.Family), " "))
}

type rangeValue struct {
	Low  *quantity `json:"low"`
	High *quantity `json:"high"`
	Text string    `json:"text"`
}

type component struct {
	Code                 concept   `json:"code"`
	ValueQuantity        *quantity `json:"valueQuantity"`
	ValueCodeableConcept *concept  `json:"valueCodeableConcept"`
	ValueString          *string   `json:"valueString"`
}

// resource is what a summary reads of a FHIR resource: the union of the
// fields of the resource types it shows.
type resource struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`

	Name      []humanName `json:"name"`
	BirthDate string      `json:"birthDate"`
	Gender    string      `json:"gender"`

	Status             string          `json:"status"`
	Code               *concept        `json:"code"`
	ClinicalStatus     *concept        `json:"clinicalStatus"`
	VerificationStatus *concept        `json:"verificationStatus"`
	Category           json.RawMessage `json:"category"`
	Criticality        string          `json:"criticality"`
	Type               json.RawMessage `json:"type"`
	Reaction           []struct {
		Manifestation []concept `json:"manifestation"`
		Severity      string    `json:"severity"`
		Description   string    `json:"description"`
	} `json:"reaction"`
	RecordedDate      string  `json:"recordedDate"`
	OnsetDateTime     string  `json:"onsetDateTime"`
	OnsetPeriod       *period `json:"onsetPeriod"`
	OnsetString       string  `json:"onsetString"`
	AbatementDateTime string  `json:"abatementDateTime"`

	AuthoredOn                string            `json:"authoredOn"`
	MedicationCodeableConcept *concept          `json:"medicationCodeableConcept"`
	MedicationReference       *reference        `json:"medicationReference"`
	DosageInstruction         []dosage          `json:"dosageInstruction"`
	Dosage                    []dosage          `json:"dosage"`
	EffectiveDateTime         string            `json:"effectiveDateTime"`
	EffectivePeriod           *period           `json:"effectivePeriod"`
	EffectiveInstant          string            `json:"effectiveInstant"`
	DateAsserted              string            `json:"dateAsserted"`
	Issued                    string            `json:"issued"`
	Contained                 []json.RawMessage `json:"contained"`

	VaccineCode        *concept `json:"vaccineCode"`
	OccurrenceDateTime string   `json:"occurrenceDateTime"`
	OccurrenceString   string   `json:"occurrenceString"`

	ValueQuantity        *quantity    `json:"valueQuantity"`
	ValueCodeableConcept *concept     `json:"valueCodeableConcept"`
	ValueString          *string      `json:"valueString"`
	ValueBoolean         *bool        `json:"valueBoolean"`
	ValueInteger         *float64     `json:"valueInteger"`
	ReferenceRange       []rangeValue `json:"referenceRange"`
	Interpretation       []concept    `json:"interpretation"`
	Component            []component  `json:"component"`

	PerformedDateTime string  `json:"performedDateTime"`
	PerformedPeriod   *period `json:"performedPeriod"`

	Class      json.RawMessage `json:"class"`
	Period     *period         `json:"period"`
	ReasonCode []concept       `json:"reasonCode"`
}

// ObservationCategories returns the category codes of an Observation's
// raw "category" member (a list of CodeableConcepts).
func ObservationCategories(raw json.RawMessage) []string {
	var cats []concept
	if len(raw) == 0 || json.Unmarshal(raw, &cats) != nil {
		return nil
	}
	var out []string
	for _, c := range cats {
		for _, cd := range c.Coding {
			out = append(out, cd.Code)
		}
	}
	return out
}

// fhirSummary collects a FHIR summary one resource at a time.
type fhirSummary struct {
	sections map[string]*Section
	other    map[string]int
	// meds maps Medication references (Medication/id, full URLs) to
	// their display text, for MedicationRequests that point at them.
	meds    map[string]string
	pending []pendingMed
	partial bool
}

type pendingMed struct {
	section string
	index   int
	ref     string
}

func newFHIRSummary() *fhirSummary {
	f := &fhirSummary{sections: map[string]*Section{}, other: map[string]int{}, meds: map[string]string{}}
	for _, s := range fhirSections {
		f.sections[s.key] = &Section{Key: s.key, Title: s.title}
	}
	return f
}

// summarizeFHIR streams a FHIR R4 JSON record: a Bundle one entry at a
// time, or a single resource.
func summarizeFHIR(r io.Reader) (*Summary, error) {
	f := newFHIRSummary()
	dec := json.NewDecoder(r)
	err := f.scan(dec)
	if err != nil && !errors.Is(err, errTruncated) {
		return nil, err
	}
	s := f.finish()
	s.Partial = s.Partial || err != nil
	return s, nil
}

var errTruncated = errors.New("the record ends early or is malformed")

func (f *fhirSummary) scan(dec *json.Decoder) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ErrMalformed
	}
	top := map[string]json.RawMessage{}
	streamed := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return errTruncated
		}
		key, _ := t.(string)
		if key == "entry" {
			if t, err := dec.Token(); err != nil || t != json.Delim('[') {
				return errTruncated
			}
			streamed = true
			for dec.More() {
				var e struct {
					FullURL  string          `json:"fullUrl"`
					Resource json.RawMessage `json:"resource"`
				}
				if err := dec.Decode(&e); err != nil {
					var te *json.UnmarshalTypeError
					if errors.As(err, &te) {
						continue
					}
					return errTruncated
				}
				if len(e.Resource) > 0 {
					f.add(e.Resource, e.FullURL)
				}
			}
			if _, err := dec.Token(); err != nil {
				return errTruncated
			}
			continue
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return errTruncated
		}
		if key != "" {
			top[key] = v
		}
	}
	if _, err := dec.Token(); err != nil {
		return errTruncated
	}
	var rt string
	_ = json.Unmarshal(top["resourceType"], &rt)
	if rt != "Bundle" && !streamed {
		raw, err := json.Marshal(top)
		if err != nil {
			return errTruncated
		}
		f.add(raw, "")
	}
	return nil
}

// add puts one resource in its section.
func (f *fhirSummary) add(raw json.RawMessage, fullURL string) {
	var r resource
	if err := json.Unmarshal(raw, &r); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			f.partial = true
			return
		}
	}
	if r.ResourceType == "" {
		return
	}
	if r.ResourceType == "Medication" {
		var m struct {
			Code *concept `json:"code"`
		}
		_ = json.Unmarshal(raw, &m)
		if d := m.Code.display(); d != "" {
			if r.ID != "" {
				f.meds["Medication/"+r.ID] = d
			}
			if fullURL != "" {
				f.meds[fullURL] = d
			}
		}
	}
	key := SectionOf(r.ResourceType, ObservationCategories(r.Category))
	if key == "" {
		f.other[r.ResourceType]++
		return
	}
	sec := f.sections[key]
	sec.Count++
	if len(sec.Items) >= MaxItems {
		f.partial = true
		return
	}
	it, medRef := item(&r)
	if labels := fhirscope.Sensitive(raw); len(labels) > 0 {
		it.Sensitive, it.Labels = true, labels
	}
	if medRef != "" {
		f.pending = append(f.pending, pendingMed{key, len(sec.Items), medRef})
	}
	sec.Items = append(sec.Items, it)
}

// finish resolves medication references, sorts every section newest
// first and returns the summary.
func (f *fhirSummary) finish() *Summary {
	for _, p := range f.pending {
		if d, ok := f.meds[p.ref]; ok {
			f.sections[p.section].Items[p.index].Title = d
		}
	}
	s := &Summary{Format: vault.FormatFHIR, Partial: f.partial}
	for _, fs := range fhirSections {
		sec := f.sections[fs.key]
		if fs.key != KeyPatient {
			sortNewestFirst(sec.Items)
		}
		s.Sections = append(s.Sections, *sec)
	}
	other := Section{Key: KeyOther, Title: "Also in this record"}
	types := make([]string, 0, len(f.other))
	for t, n := range f.other {
		types = append(types, t)
		other.Count += n
	}
	sort.Slice(types, func(i, j int) bool {
		if f.other[types[i]] != f.other[types[j]] {
			return f.other[types[i]] > f.other[types[j]]
		}
		return types[i] < types[j]
	})
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s %d", t, f.other[t]))
	}
	other.Text = strings.Join(parts, ", ")
	s.Sections = append(s.Sections, other)
	return s
}

// sortNewestFirst orders items by date, newest first; undated items go
// last, and equal dates keep the record's order.
func sortNewestFirst(items []Item) {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := sortKey(items[i].Date), sortKey(items[j].Date)
		return a > b
	})
}

// sortKey makes ISO 8601 dates and date-times comparable as strings:
// date-times in UTC.
func sortKey(d string) string {
	if t, ok := parseDate(d); ok {
		return t.UTC().Format("2006-01-02T15:04:05.000")
	}
	return d
}

func first(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

func addField(fields []Field, name, value string) []Field {
	if value = strings.TrimSpace(value); value == "" {
		return fields
	}
	return append(fields, Field{Name: name, Value: value})
}

// detail joins the fields' values, "name value" each, with "; ".
func detail(fields []Field, skip ...string) string {
	var parts []string
outer:
	for _, f := range fields {
		for _, s := range skip {
			if f.Name == s {
				continue outer
			}
		}
		parts = append(parts, f.Name+" "+f.Value)
	}
	return strings.Join(parts, "; ")
}

// item turns a resource into an item; medRef is a Medication reference
// still to resolve.
func item(r *resource) (it Item, medRef string) {
	var f []Field
	switch r.ResourceType {
	case "Patient":
		var name string
		for _, n := range r.Name {
			if name == "" || n.Use == "official" {
				name = n.String()
			}
		}
		it.Title = first(name, "(no name)")
		f = addField(f, "born", r.BirthDate)
		f = addField(f, "sex", r.Gender)
		it.Detail = detail(f)
	case "AllergyIntolerance":
		it.Title = first(r.Code.display(), "(no substance)")
		it.Code = r.Code.code()
		it.Date = first(r.RecordedDate, r.OnsetDateTime, r.OnsetPeriod.start())
		f = addField(f, "criticality", r.Criticality)
		var reactions []string
		for _, re := range r.Reaction {
			for _, m := range re.Manifestation {
				if d := m.display(); d != "" {
					if re.Severity != "" {
						d += " (" + re.Severity + ")"
					}
					reactions = append(reactions, d)
				}
			}
		}
		f = addField(f, "reaction", strings.Join(reactions, ", "))
		f = addField(f, "status", r.ClinicalStatus.status())
		it.Detail = detail(f)
	case "MedicationRequest", "MedicationStatement":
		it.Title = r.MedicationCodeableConcept.display()
		it.Code = r.MedicationCodeableConcept.code()
		if it.Title == "" && r.MedicationReference != nil {
			it.Title = r.MedicationReference.Display
			if it.Title == "" {
				medRef = r.MedicationReference.Reference
				if strings.HasPrefix(medRef, "#") {
					it.Title = containedMedication(r.Contained, medRef[1:])
					medRef = ""
				}
			}
		}
		if it.Title == "" {
			it.Title = "(no drug named)"
		}
		it.Date = first(r.AuthoredOn, r.EffectiveDateTime, r.EffectivePeriod.start(), r.DateAsserted)
		var doses []string
		for _, d := range append(r.DosageInstruction, r.Dosage...) {
			if s := d.String(); s != "" {
				doses = append(doses, s)
			}
		}
		f = addField(f, "dose", strings.Join(doses, "; "))
		f = addField(f, "status", r.Status)
		it.Detail = detail(f)
	case "Condition":
		it.Title = first(r.Code.display(), "(no name)")
		it.Code = r.Code.code()
		it.Date = first(r.OnsetDateTime, r.OnsetPeriod.start(), r.RecordedDate)
		f = addField(f, "onset", first(displayDate(first(r.OnsetDateTime, r.OnsetPeriod.start())), r.OnsetString))
		f = addField(f, "status", r.ClinicalStatus.status())
		f = addField(f, "resolved", displayDate(r.AbatementDateTime))
		it.Detail = detail(f, "onset")
	case "Immunization":
		it.Title = first(r.VaccineCode.display(), "(no vaccine named)")
		it.Code = r.VaccineCode.code()
		it.Date = first(r.OccurrenceDateTime, r.RecordedDate)
		f = addField(f, "status", r.Status)
		it.Detail = detail(f)
	case "Observation":
		it.Title = first(r.Code.display(), "(no name)")
		it.Code = r.Code.code()
		it.Date = first(r.EffectiveDateTime, r.EffectivePeriod.start(), r.EffectiveInstant, r.Issued)
		f = addField(f, "value", observationValue(r))
		if v, ok := r.ValueQuantity.number(); ok {
			it.Value = &Quantity{Value: v, Unit: r.ValueQuantity.unit()}
		}
		if len(r.ReferenceRange) > 0 {
			// The first range is the one for this patient.
			rr := r.ReferenceRange[0]
			lo, lok := rr.Low.number()
			hi, hok := rr.High.number()
			var s string
			switch {
			case lok && hok:
				s = formatNumber(lo) + "-" + formatNumber(hi)
			case lok:
				s = ">=" + formatNumber(lo)
			case hok:
				s = "<=" + formatNumber(hi)
			}
			if s != "" {
				if u := first(rr.Low.unit(), rr.High.unit()); u != "" {
					s += " " + u
				}
			}
			f = addField(f, "range", first(s, rr.Text))
			if it.Value != nil {
				if lok {
					it.Value.Low = &lo
				}
				if hok {
					it.Value.High = &hi
				}
			}
		}
		var flags []string
		for _, in := range r.Interpretation {
			if d := in.status(); d != "" {
				flags = append(flags, d)
			}
		}
		if len(flags) == 0 && it.Value != nil {
			// No interpretation given: compare with the range.
			switch {
			case it.Value.Low != nil && it.Value.Value < *it.Value.Low:
				flags = append(flags, "L")
			case it.Value.High != nil && it.Value.Value > *it.Value.High:
				flags = append(flags, "H")
			}
		}
		f = addField(f, "flag", strings.Join(flags, ","))
		it.Detail = detail(f)
	case "Procedure":
		it.Title = first(r.Code.display(), "(no name)")
		it.Code = r.Code.code()
		it.Date = first(r.PerformedDateTime, r.PerformedPeriod.start())
		f = addField(f, "status", r.Status)
		it.Detail = detail(f)
	case "Encounter":
		var types []concept
		_ = json.Unmarshal(r.Type, &types)
		var title string
		for _, t := range types {
			if title = t.display(); title != "" {
				break
			}
		}
		var class coding
		_ = json.Unmarshal(r.Class, &class)
		it.Title = first(title, class.Display, class.Code, "(encounter)")
		it.Date = r.Period.start()
		f = addField(f, "class", first(class.Display, class.Code))
		var reasons []string
		for _, rc := range r.ReasonCode {
			if d := rc.display(); d != "" {
				reasons = append(reasons, d)
			}
		}
		f = addField(f, "reason", strings.Join(reasons, ", "))
		f = addField(f, "status", r.Status)
		it.Detail = detail(f)
	}
	it.Fields = f
	return it, medRef
}

func containedMedication(contained []json.RawMessage, id string) string {
	for _, c := range contained {
		var m struct {
			ResourceType string   `json:"resourceType"`
			ID           string   `json:"id"`
			Code         *concept `json:"code"`
		}
		if json.Unmarshal(c, &m) == nil && m.ResourceType == "Medication" && m.ID == id {
			return m.Code.display()
		}
	}
	return ""
}

// observationValue is an Observation's value as text, its components'
// when it has none of its own.
func observationValue(r *resource) string {
	switch {
	case r.ValueQuantity != nil:
		return r.ValueQuantity.String()
	case r.ValueCodeableConcept != nil:
		return r.ValueCodeableConcept.display()
	case r.ValueString != nil:
		return *r.ValueString
	case r.ValueBoolean != nil:
		return strconv.FormatBool(*r.ValueBoolean)
	case r.ValueInteger != nil:
		return formatNumber(*r.ValueInteger)
	}
	var parts []string
	for _, c := range r.Component {
		var v string
		switch {
		case c.ValueQuantity != nil:
			v = c.ValueQuantity.String()
		case c.ValueCodeableConcept != nil:
			v = c.ValueCodeableConcept.display()
		case c.ValueString != nil:
			v = *c.ValueString
		}
		if v != "" {
			parts = append(parts, first(c.Code.display(), "?")+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}
