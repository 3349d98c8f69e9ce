// Package fhirscope derives the minimum-necessary part of a FHIR R4 JSON
// record for a consent grant, and finds the sensitive resources that broad
// grants must not reach (issue 6). It is pure: an io.Reader in, an
// io.Writer out, no disk, no network, no keys.
//
// # What a selection keeps
//
// Filter reads a FHIR R4 resource or Bundle (any Bundle type) and writes a
// FHIR R4 Bundle of type "collection", without an id (the output is a
// deterministic function of the input and the selection), holding one entry
// per kept resource with the source entry's fullUrl and resource copied
// byte for byte; request, response and search are dropped, they mean
// nothing in a collection. The input Bundle's meta.security, if any, is
// carried to the output so that the derived record keeps its labels. When
// nothing is kept the Bundle has no entry element (FHIR JSON forbids empty
// arrays).
//
// A resource is kept when both hold:
//
//   - Scope. Some scope of the selection with read permission (r) covers
//     it: the scope's type is "*" or the resource's type, and each
//     ?category= parameter matches one of the resource's category codes
//     ("code" matches any system, "system|code" exactly, "|code" a coding
//     without a system). A resource without a category does not match a
//     category-narrowed scope, as a FHIR search with category= would not
//     return it. Scopes with parameters other than category are refused
//     (ErrBadSelection): fhirscope cannot evaluate them and will not guess.
//     Selection.All (an "all records" grant) covers every type.
//   - Sensitivity. Every sensitive category of the resource (see
//     Categories and Sensitive: its own meta.security, its contained
//     resources' and, for a nested Bundle, its entries'), plus every
//     category of the input Bundle's own meta.security, is named in
//     Selection.Allow.
//
// The sensitivity rule applies to every scope, not only to "all" and
// wildcard ones. Issue 6 names broad grants, but a grant of
// patient/Observation.rs would otherwise hand over an HIV viral load or a
// Part 2 drug screen that the patient never saw named; 42 CFR Part 2
// requires consent that names the disclosure, and the patient can always
// add the category explicitly. The safer reading costs one extra word on
// the command line; the other reading leaks the data the issue is about.
//
// # Sensitive categories
//
// A meta.security coding puts a resource in a category when its system is
// v3-ActCode (http://terminology.hl7.org/CodeSystem/v3-ActCode, also
// http://hl7.org/fhir/v3/ActCode or urn:oid:2.16.840.1.113883.5.4),
// v3-Confidentiality (http://terminology.hl7.org/CodeSystem/v3-Confidentiality,
// also http://hl7.org/fhir/v3/Confidentiality or
// urn:oid:2.16.840.1.113883.5.25) or absent, and its code is one of:
//
//	substance-use  ActCode ETH ETHUD OPIOIDUD SUD 42CFRPart2 Title38Section7332
//	psychotherapy  ActCode PSY PSYTHPN MH BH HIPAAPsyNotes
//	hiv            ActCode HIV Title38Section7332
//	genetic        ActCode GDIS
//	reproductive   ActCode SEX STD SDV
//	restricted     Confidentiality R V
//
// Codes are case-sensitive, as in FHIR. A coding without a system is read
// as if it had one of the two (fail closed). Title38Section7332 (the VA's
// rule for drug and alcohol abuse, HIV and sickle cell records) is in two
// categories, and a resource in several categories needs all of them
// named. "restricted" is not in the list: v3-Confidentiality R and
// V mean the author restricted the data without saying why, and a broad
// grant should not reach it either.
//
// # References
//
// References from kept resources to resources that are not kept (a Claim's
// patient, an ExplanationOfBenefit's provider) are left as they are: a
// dangling reference is valid in a collection Bundle, and adding the target
// would give the grantee bytes outside its scopes. Report.Dangling counts
// them by target type so the CLI can say so; a grant that should carry the
// Patient names patient/Patient.rs, and then the Patient is kept like any
// other covered resource.
//
// # Limits and errors
//
// Input is bounded by MaxInput (256 MiB). Filter reads a Bundle one entry
// at a time: it holds the entry it reads, the resources it may keep (the
// output, which it writes only when the whole input has been checked, so
// an error never leaves a partial Bundle behind), and a few strings per
// entry (type, fullUrl, id) to resolve references. Memory is then bounded
// by the largest entry plus the output, not by the input, when the
// Bundle's resourceType comes before its entry array, as it does in
// practice; FHIR JSON has no member order, and an entry array met before
// the resourceType is held until the type is known. A single resource is
// held whole, like the entry it would be in a Bundle. A record
// with two members of one JSON object whose names are equal or differ only
// in case is refused: encoding/json would read the last of them, another
// parser the first, and a second "meta" could hide the first's labels.
// Errors wrap ErrNotFHIR, ErrTooLarge or ErrBadSelection and never quote
// record content: they give an entry's index and at most its resource type.
package fhirscope

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/medwallet/medwallet/consent"
)

// MaxInput is the largest record Filter and RecordSensitive read.
const MaxInput = 256 << 20

var (
	// ErrNotFHIR reports input that is not a FHIR R4 JSON resource.
	ErrNotFHIR = errors.New("not a FHIR R4 JSON resource")
	// ErrTooLarge reports input larger than MaxInput.
	ErrTooLarge = errors.New("FHIR record larger than 256 MiB")
	// ErrBadSelection reports a selection Filter cannot apply.
	ErrBadSelection = errors.New("invalid selection")
)

// Selection says what a grant may receive of a FHIR record.
type Selection struct {
	// Scopes are the grant's SMART scopes; only those with read
	// permission select anything.
	Scopes []consent.Scope
	// All selects every resource type, as an "all records" grant does.
	All bool
	// Allow names the sensitive categories the grant names explicitly
	// (names or aliases accepted by ParseCategory).
	Allow []string
}

// NewSelection parses SMART scopes (consent.ParseScope) and sensitive
// category names (ParseCategory) into a Selection.
func NewSelection(scopes, allow []string) (Selection, error) {
	var sel Selection
	for _, s := range scopes {
		sc, err := consent.ParseScope(s)
		if err != nil {
			return Selection{}, fmt.Errorf("%w: %w", ErrBadSelection, err)
		}
		sel.Scopes = append(sel.Scopes, sc)
	}
	for _, a := range allow {
		c, err := ParseCategory(a)
		if err != nil {
			return Selection{}, fmt.Errorf("%w: %w", ErrBadSelection, err)
		}
		sel.Allow = append(sel.Allow, c)
	}
	return sel, sel.check()
}

// Broad reports whether the selection is an "all records" grant or has a
// wildcard scope with read permission.
func (s Selection) Broad() bool {
	if s.All {
		return true
	}
	for _, sc := range s.Scopes {
		if sc.Type == "*" && sc.Perms&consent.PermRead != 0 {
			return true
		}
	}
	return false
}

// check refuses scope parameters other than category.
func (s Selection) check() error {
	for _, sc := range s.Scopes {
		for _, p := range sc.Params {
			if p.Name != "category" {
				return fmt.Errorf("%w: scope %s: parameter %q is not supported for filtering (only category)", ErrBadSelection, sc, p.Name)
			}
		}
	}
	return nil
}

// Exclusion is one resource a scope covered but its sensitive categories
// kept out.
type Exclusion struct {
	Index      int      // entry index in the input Bundle (0 for a single resource)
	Type       string   // resource type
	Categories []string // sensitive categories not named by the selection, sorted
}

// Report says what Filter kept and left out, in counts and types only.
// Every input entry is in exactly one of Kept, Dropped and Excluded.
type Report struct {
	Bundle   bool           // the input was a Bundle (else a single resource)
	Kept     map[string]int // kept resources by type
	Dropped  map[string]int // resources no scope covers, by type ("" for an entry without a resource)
	Excluded []Exclusion    // covered resources kept out for their sensitive categories
	// Dangling counts references from kept resources to resources not in
	// the output, by target type ("" when the target's type is unknown).
	// Conditional references (Type?identifier=...) count as dangling.
	Dangling map[string]int
}

// KeptTotal is the number of resources in the output Bundle.
func (r Report) KeptTotal() int {
	n := 0
	for _, c := range r.Kept {
		n += c
	}
	return n
}

type bundleEntry struct {
	FullURL  json.RawMessage `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
}

// maxInput is MaxInput, lowered by tests.
var maxInput = MaxInput

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(maxInput)+1))
	if err != nil {
		return nil, fmt.Errorf("reading FHIR record: %w", err)
	}
	if len(data) > maxInput {
		return nil, ErrTooLarge
	}
	return data, nil
}

// trim drops white space and a UTF-8 byte order mark around data.
func trim(data []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(data), []byte("\xef\xbb\xbf")))
}

// topLevel checks that data is one JSON object with an R4 resourceType and
// returns its view.
func topLevel(data []byte) (*resourceView, error) {
	data = trim(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrNotFHIR)
	}
	if data[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrNotFHIR)
	}
	v := new(resourceView)
	if err := json.Unmarshal(data, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: invalid JSON at byte %d", ErrNotFHIR, se.Offset)
		}
		// Valid JSON, but a resourceType, meta or contained of the wrong shape.
		var typ struct {
			ResourceType json.RawMessage `json:"resourceType"`
		}
		if json.Unmarshal(data, &typ) != nil || len(typ.ResourceType) == 0 || typ.ResourceType[0] != '"' {
			return nil, fmt.Errorf("%w: no resourceType", ErrNotFHIR)
		}
		return nil, fmt.Errorf("%w: malformed meta or contained", ErrNotFHIR)
	}
	if err := checkKeys(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFHIR, err)
	}
	if v.ResourceType == "" {
		return nil, fmt.Errorf("%w: no resourceType", ErrNotFHIR)
	}
	if !consent.IsR4ResourceType(v.ResourceType) {
		return nil, fmt.Errorf("%w: resourceType is not an R4 resource type", ErrNotFHIR)
	}
	return v, nil
}

// Filter reads a FHIR R4 JSON resource or Bundle from r and writes to w a
// collection Bundle holding only the resources sel allows; the package
// documentation gives the rules. It reads a Bundle one entry at a time.
// Nothing is written when it fails.
func Filter(r io.Reader, w io.Writer, sel Selection) (Report, error) {
	allow, err := sel.allowed()
	if err != nil {
		return Report{}, err
	}
	f := newFilter(sel, allow)
	in := newInput(r)
	if err := f.read(in); err != nil {
		return Report{}, in.fail(err)
	}
	kept, err := f.decide()
	if err != nil {
		return Report{}, err
	}
	if err := f.write(w, kept); err != nil {
		return Report{}, err
	}
	return f.rep, nil
}

// allowed parses Allow into a set and checks the scopes' parameters.
func (s Selection) allowed() (map[string]bool, error) {
	allow := make(map[string]bool, len(s.Allow))
	for _, a := range s.Allow {
		c, err := ParseCategory(a)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadSelection, err)
		}
		allow[c] = true
	}
	return allow, s.check()
}

// filter is one run of Filter: what it has learnt of the record so far.
type filter struct {
	sel   Selection
	allow map[string]bool
	rep   Report

	bundleSec  json.RawMessage // the input Bundle's meta.security, byte for byte
	bundleCats map[string]bool // its categories
	entries    int             // Bundle entries read
	// typeOf maps each entry's fullUrl and Type/id to its type.
	typeOf map[string]string
	// covered lists the resources a scope covers, in input order.
	covered []covered
}

// covered is a resource a scope of the selection covers. Whether it is
// kept is decided when the whole record has been read: the Bundle's own
// labels, which apply to it, may come after the entries.
type covered struct {
	index    int
	typ      string
	cats     []string // its own sensitive categories, sorted
	url, id  string
	fullURL  json.RawMessage // nil for none
	resource json.RawMessage // nil when its own labels keep it out
}

type span struct{ start, end int }

func newFilter(sel Selection, allow map[string]bool) *filter {
	return &filter{sel: sel, allow: allow,
		rep:        Report{Kept: map[string]int{}, Dropped: map[string]int{}, Dangling: map[string]int{}},
		bundleCats: map[string]bool{}, typeOf: map[string]string{}}
}

// read reads the record: a Bundle member by member and its entries one at
// a time, anything else whole (a single resource is copied as it is).
// Which one it is, the resourceType tells; FHIR JSON has no member order,
// so members met before it are put aside, and an entry array met before
// it is kept in the input's copy and walked once the type is known.
func (f *filter) read(in *input) error {
	base, err := in.start()
	if err != nil {
		return err
	}
	t := &topObject{filter: f, in: in, dec: json.NewDecoder(in.br), base: base, names: map[string]bool{}}
	if _, err := t.dec.Token(); err != nil { // the '{' start checked
		return jsonError(err, base)
	}
	for !t.whole && t.dec.More() {
		if err := t.member(); err != nil {
			return err
		}
	}
	if t.whole {
		return nil
	}
	if _, err := t.dec.Token(); err != nil {
		return jsonError(err, base+t.dec.InputOffset())
	}
	if !t.bundle {
		return f.single(in) // no resourceType: the whole-resource checks say so
	}
	if err := in.end(t.dec); err != nil {
		return err
	}
	if in.tooLarge() {
		return ErrTooLarge
	}
	return nil
}

// topObject reads the members of the record's top-level object.
type topObject struct {
	*filter
	in     *input
	dec    *json.Decoder
	base   int64           // the object's offset in the input
	names  map[string]bool // member names read, folded
	bundle bool            // the resourceType, read, is Bundle
	whole  bool            // the resourceType is another: the record was read whole
	// Members met before the resourceType.
	early struct {
		meta, contained json.RawMessage
		entry           *span // in in.kept
	}
}

// member reads one member of the top-level object.
func (t *topObject) member() error {
	tok, err := t.dec.Token()
	if err != nil {
		return jsonError(err, t.base+t.dec.InputOffset())
	}
	name, _ := tok.(string)
	folded := string(fold(nil, []byte(name)))
	if t.names[folded] {
		return fmt.Errorf("%w: %v", ErrNotFHIR, errDupKey)
	}
	t.names[folded] = true
	at := t.base + t.dec.InputOffset()
	switch {
	case strings.EqualFold(name, "resourceType"):
		return t.kind()
	case strings.EqualFold(name, "entry") && t.bundle:
		if err := t.walkEntries(t.dec); err != nil {
			return jsonError(err, at)
		}
	case strings.EqualFold(name, "entry"):
		// Not known to be a Bundle yet: check the array, find it again in
		// the input's copy once the resourceType says.
		if err := t.dec.Decode(new(skipped)); err != nil {
			return jsonError(err, at)
		}
		t.early.entry = &span{int(at), int(t.base + t.dec.InputOffset())}
	default:
		var v json.RawMessage
		if err := t.dec.Decode(&v); err != nil {
			return jsonError(err, at)
		}
		if err := checkKeysAt(v, 1); err != nil {
			return jsonError(err, at)
		}
		switch {
		case strings.EqualFold(name, "meta") && t.bundle:
			return t.bundleMembers(v, nil)
		case strings.EqualFold(name, "contained") && t.bundle:
			return t.bundleMembers(nil, v)
		case strings.EqualFold(name, "meta"):
			t.early.meta = v
		case strings.EqualFold(name, "contained"):
			t.early.contained = v
		}
	}
	return nil
}

// kind reads the resourceType. A record that is not a Bundle is read to
// its end and filtered as a single resource; for a Bundle, the members
// met before are taken now and the input is no longer copied.
func (t *topObject) kind() error {
	var typ string
	if t.dec.Decode(&typ) != nil || typ != "Bundle" {
		t.whole = true
		return t.single(t.in) // or not FHIR: the whole-resource checks say why
	}
	t.bundle = true
	t.rep.Bundle = true
	t.in.keep = false
	if err := t.bundleMembers(t.early.meta, t.early.contained); err != nil {
		return err
	}
	if e := t.early.entry; e != nil {
		v := trimValue(t.in.kept[e.start:e.end])
		if err := t.walkEntries(json.NewDecoder(bytes.NewReader(v))); err != nil {
			return jsonError(err, int64(e.start))
		}
	}
	t.in.kept = nil
	return nil
}

// skipped decodes (and so checks) a JSON value without keeping it.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// single reads a record that is not a Bundle to its end and filters it as
// one resource, with the checks of a whole resource (topLevel).
func (f *filter) single(in *input) error {
	data, err := in.rest()
	if err != nil {
		return err
	}
	in.keep, in.kept = false, nil
	top, err := topLevel(data)
	if err != nil {
		return err
	}
	return f.entry(0, nil, trim(data), top)
}

// bundleMembers checks the input Bundle's meta and contained (either may
// be nil) and takes its security labels, which apply to every entry.
func (f *filter) bundleMembers(meta, contained json.RawMessage) error {
	if contained != nil {
		var c []json.RawMessage
		if json.Unmarshal(contained, &c) != nil {
			return fmt.Errorf("%w: malformed meta or contained", ErrNotFHIR)
		}
	}
	if meta == nil {
		return nil
	}
	var m *struct {
		Security []coding `json:"security"`
	}
	if json.Unmarshal(meta, &m) != nil {
		return fmt.Errorf("%w: malformed meta or contained", ErrNotFHIR)
	}
	if m == nil || len(m.Security) == 0 {
		return nil
	}
	securityCategories(m.Security, f.bundleCats)
	// Copy the labels byte for byte (display, version...).
	var raw struct {
		Security json.RawMessage `json:"security"`
	}
	if err := json.Unmarshal(meta, &raw); err != nil {
		return fmt.Errorf("%w: malformed Bundle meta", ErrNotFHIR)
	}
	f.bundleSec = raw.Security
	return nil
}

// walkEntries reads a Bundle's entry array from dec, one entry at a time.
func (f *filter) walkEntries(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // "entry": null
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("%w: malformed Bundle entries", ErrNotFHIR)
	}
	for dec.More() {
		var e checkedEntry
		if err := dec.Decode(&e); err != nil {
			return err
		}
		if e.err != nil {
			return e.err
		}
		if err := f.entry(f.entries, e.FullURL, e.Resource, nil); err != nil {
			return err
		}
		f.entries++
	}
	_, err = dec.Token() // ']'
	return err
}

// checkedEntry is a Bundle entry, with its member names checked.
type checkedEntry struct {
	bundleEntry
	err error
}

func (e *checkedEntry) UnmarshalJSON(b []byte) error {
	var err error
	if err = checkKeysAt(b, 2); err != nil {
		e.err = fmt.Errorf("%w: %v", ErrNotFHIR, err)
	} else if e.bundleEntry, err = entryMembers(b); err != nil {
		e.err = fmt.Errorf("%w: malformed Bundle entries", ErrNotFHIR)
	}
	return nil
}

// entry classifies the i-th resource of the record (v is its view, nil
// to decode it): dropped when no scope covers it, else covered, and then
// copied unless its own labels already keep it out.
func (f *filter) entry(i int, fullURL, res json.RawMessage, v *resourceView) error {
	if len(res) == 0 || string(res) == "null" {
		f.rep.Dropped[""]++
		return nil
	}
	if len(fullURL) > 0 && fullURL[0] != '"' && string(fullURL) != "null" {
		return fmt.Errorf("%w: entry %d: fullUrl is not a string", ErrNotFHIR, i)
	}
	if string(fullURL) == "null" {
		fullURL = nil
	}
	if v == nil {
		v = new(resourceView)
		if res[0] != '{' || json.Unmarshal(res, v) != nil {
			return fmt.Errorf("%w: entry %d: malformed resource", ErrNotFHIR, i)
		}
	}
	if !consent.IsR4ResourceType(v.ResourceType) {
		return fmt.Errorf("%w: entry %d: resourceType missing or not an R4 resource type", ErrNotFHIR, i)
	}
	c := covered{index: i, typ: v.ResourceType, url: rawString(fullURL), id: rawString(v.ID)}
	if c.url != "" {
		f.typeOf[c.url] = c.typ
	}
	if c.id != "" {
		f.typeOf[c.typ+"/"+c.id] = c.typ
	}
	ok, err := f.sel.covers(v)
	if err != nil {
		return fmt.Errorf("%w: entry %d (%s): %v", ErrNotFHIR, i, c.typ, err)
	}
	if !ok {
		f.rep.Dropped[c.typ]++
		return nil
	}
	cats := make(map[string]bool)
	if err := viewLabels(v, cats, 0); err != nil {
		return fmt.Errorf("%w: entry %d (%s): %v", ErrNotFHIR, i, c.typ, err)
	}
	c.cats = sortedKeys(cats)
	if len(f.missing(c.cats)) == 0 {
		c.fullURL, c.resource = fullURL, res
	}
	f.covered = append(f.covered, c)
	return nil
}

// missing returns the sensitive categories of cats and of the Bundle's
// own labels that the selection does not name, sorted.
func (f *filter) missing(cats []string) []string {
	var out []string
	for _, c := range cats {
		if !f.allow[c] && !f.bundleCats[c] {
			out = append(out, c)
		}
	}
	for c := range f.bundleCats {
		if !f.allow[c] {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// decide keeps or excludes each covered resource, now that the Bundle's
// labels are known, and counts the references kept resources leave
// dangling. It returns the kept ones, in input order.
func (f *filter) decide() ([]covered, error) {
	var kept []covered
	keptRef := make(map[string]bool)
	for _, c := range f.covered {
		if m := f.missing(c.cats); len(m) > 0 {
			f.rep.Excluded = append(f.rep.Excluded, Exclusion{Index: c.index, Type: c.typ, Categories: m})
			continue
		}
		f.rep.Kept[c.typ]++
		kept = append(kept, c)
		if c.url != "" {
			keptRef[c.url] = true
		}
		if c.id != "" {
			keptRef[c.typ+"/"+c.id] = true
		}
	}
	for _, c := range kept {
		if err := scanReferences(c.resource, func(ref string) { f.dangling(ref, keptRef) }); err != nil {
			return nil, fmt.Errorf("%w: entry %d: malformed reference", ErrNotFHIR, c.index)
		}
	}
	return kept, nil
}

// dangling counts ref when its target is not kept. Targets are looked up
// by fullUrl, then by [base/]Type/id.
func (f *filter) dangling(ref string, keptRef map[string]bool) {
	if ref == "" || ref[0] == '#' || keptRef[ref] {
		return
	}
	rel := relative(ref)
	if rel != "" && keptRef[rel] {
		return
	}
	t, ok := f.typeOf[ref]
	if !ok && rel != "" {
		t = rel[:strings.IndexByte(rel, '/')]
	} else if q := strings.IndexByte(ref, '?'); !ok && q > 0 && consent.IsR4ResourceType(ref[:q]) {
		t = ref[:q] // a conditional reference, Type?search
	}
	f.rep.Dangling[t]++
}

// write writes the collection Bundle of the kept resources.
func (f *filter) write(w io.Writer, kept []covered) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`{"resourceType":"Bundle"`)
	if f.bundleSec != nil {
		bw.WriteString(`,"meta":{"security":`)
		bw.Write(f.bundleSec)
		bw.WriteByte('}')
	}
	bw.WriteString(`,"type":"collection"`)
	if len(kept) > 0 {
		bw.WriteString(`,"entry":[`)
		for n, c := range kept {
			if n > 0 {
				bw.WriteByte(',')
			}
			bw.WriteByte('{')
			if len(c.fullURL) > 0 {
				bw.WriteString(`"fullUrl":`)
				bw.Write(c.fullURL)
				bw.WriteByte(',')
			}
			bw.WriteString(`"resource":`)
			bw.Write(c.resource)
			bw.WriteByte('}')
		}
		bw.WriteByte(']')
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing filtered Bundle: %w", err)
	}
	return nil
}

func rawString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// relative returns "Type/id" for a reference of the form [base/]Type/id
// [/_history/v] with an R4 Type, else "".
func relative(ref string) string {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return ""
	}
	t, id := parts[len(parts)-2], parts[len(parts)-1]
	if !consent.IsR4ResourceType(t) || id == "" {
		return ""
	}
	return t + "/" + id
}

// scanReferences calls f with the value of every "reference" member of a
// valid JSON object, contained resources included (they are part of the
// bytes the grantee receives). It scans bytes instead of decoding: in valid
// JSON an unescaped "reference" preceded by { or , and followed by : can
// only be a member name, since a quote inside a string is escaped.
func scanReferences(raw []byte, f func(string)) error {
	const key = `"reference"`
	for off := 0; ; {
		j := bytes.Index(raw[off:], []byte(key))
		if j < 0 {
			return nil
		}
		start := off + j
		off = start + len(key)
		k := start - 1
		for k >= 0 && isSpace(raw[k]) {
			k--
		}
		if k < 0 || (raw[k] != '{' && raw[k] != ',') {
			continue
		}
		for off < len(raw) && isSpace(raw[off]) {
			off++
		}
		if off >= len(raw) || raw[off] != ':' {
			continue
		}
		off++
		for off < len(raw) && isSpace(raw[off]) {
			off++
		}
		if off >= len(raw) || raw[off] != '"' {
			continue // not a string: not a Reference.reference
		}
		end := off + 1
		for end < len(raw) && raw[end] != '"' {
			if raw[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(raw) {
			return errMalformed
		}
		var ref string
		if err := json.Unmarshal(raw[off:end+1], &ref); err != nil {
			return errMalformed
		}
		f(ref)
		off = end + 1
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// covers reports whether a read scope of s covers the resource.
func (s Selection) covers(v *resourceView) (bool, error) {
	if s.All {
		return true, nil
	}
	var cats []coding
	catsDone := false
	for _, sc := range s.Scopes {
		if sc.Perms&consent.PermRead == 0 || (sc.Type != "*" && sc.Type != v.ResourceType) {
			continue
		}
		ok := true
		for _, p := range sc.Params {
			if p.Name != "category" {
				ok = false
				break
			}
			if !catsDone {
				var err error
				if cats, err = categoryCodes(v.Category); err != nil {
					return false, err
				}
				catsDone = true
			}
			if !matchToken(cats, p.Value) {
				ok = false
				break
			}
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// categoryCodes reads a category element in any of its R4 shapes: a
// CodeableConcept or a list of them, or a code or a list of codes
// (AllergyIntolerance).
func categoryCodes(raw json.RawMessage) ([]coding, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, errors.New("malformed category")
		}
	} else {
		items = []json.RawMessage{raw}
	}
	var out []coding
	for _, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) == 0 {
			continue
		}
		switch it[0] {
		case '"':
			var code string
			if json.Unmarshal(it, &code) != nil {
				return nil, errors.New("malformed category")
			}
			out = append(out, coding{Code: code})
		case '{':
			var cc struct {
				Coding []coding `json:"coding"`
			}
			if json.Unmarshal(it, &cc) != nil {
				return nil, errors.New("malformed category")
			}
			out = append(out, cc.Coding...)
		default:
			return nil, errors.New("malformed category")
		}
	}
	return out, nil
}

// matchToken matches a FHIR token search value: "code", "system|code" or
// "|code" (no system).
func matchToken(cs []coding, token string) bool {
	sys, code, hasSys := strings.Cut(token, "|")
	if !hasSys {
		code = token
	}
	for _, c := range cs {
		if c.Code == code && (!hasSys || c.System == sys) {
			return true
		}
	}
	return false
}
