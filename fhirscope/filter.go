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
// Input is bounded by MaxInput (256 MiB); Filter holds it in memory, with
// the kept entries, and writes nothing until the whole input has been
// checked, so an error never leaves a partial Bundle behind. A record
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
// documentation gives the rules. Nothing is written when it fails.
func Filter(r io.Reader, w io.Writer, sel Selection) (Report, error) {
	allow := make(map[string]bool, len(sel.Allow))
	for _, a := range sel.Allow {
		c, err := ParseCategory(a)
		if err != nil {
			return Report{}, fmt.Errorf("%w: %w", ErrBadSelection, err)
		}
		allow[c] = true
	}
	if err := sel.check(); err != nil {
		return Report{}, err
	}
	data, err := readLimited(r)
	if err != nil {
		return Report{}, err
	}
	top, err := topLevel(data)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Kept: map[string]int{}, Dropped: map[string]int{}, Dangling: map[string]int{}}
	var entries []bundleEntry
	var bundleSec json.RawMessage
	bundleCats := make(map[string]bool)
	var views []*resourceView
	if top.ResourceType == "Bundle" {
		rep.Bundle = true
		if len(top.Entry) > 0 && string(top.Entry) != "null" {
			if err := json.Unmarshal(top.Entry, &entries); err != nil {
				return Report{}, fmt.Errorf("%w: malformed Bundle entries", ErrNotFHIR)
			}
		}
		if top.Meta != nil && len(top.Meta.Security) > 0 {
			securityCategories(top.Meta.Security, bundleCats)
			// Copy the labels byte for byte (display, version...).
			var raw struct {
				Meta struct {
					Security json.RawMessage `json:"security"`
				} `json:"meta"`
			}
			if err := json.Unmarshal(data, &raw); err != nil {
				return Report{}, fmt.Errorf("%w: malformed Bundle meta", ErrNotFHIR)
			}
			bundleSec = raw.Meta.Security
		}
		views = make([]*resourceView, len(entries))
	} else {
		entries = []bundleEntry{{Resource: trim(data)}}
		views = []*resourceView{top}
	}

	// Classify every entry; record what each fullUrl and Type/id names.
	typeOf := make(map[string]string)
	keptRef := make(map[string]bool)
	var out []int
	for i, e := range entries {
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			rep.Dropped[""]++
			continue
		}
		if len(e.FullURL) > 0 && e.FullURL[0] != '"' && string(e.FullURL) != "null" {
			return Report{}, fmt.Errorf("%w: entry %d: fullUrl is not a string", ErrNotFHIR, i)
		}
		if string(e.FullURL) == "null" {
			entries[i].FullURL = nil
		}
		v := views[i]
		if v == nil {
			v = new(resourceView)
			if e.Resource[0] != '{' || json.Unmarshal(e.Resource, v) != nil {
				return Report{}, fmt.Errorf("%w: entry %d: malformed resource", ErrNotFHIR, i)
			}
		}
		if !consent.IsR4ResourceType(v.ResourceType) {
			return Report{}, fmt.Errorf("%w: entry %d: resourceType missing or not an R4 resource type", ErrNotFHIR, i)
		}
		fullURL := rawString(entries[i].FullURL)
		id := rawString(v.ID)
		if fullURL != "" {
			typeOf[fullURL] = v.ResourceType
		}
		if id != "" {
			typeOf[v.ResourceType+"/"+id] = v.ResourceType
		}
		covered, err := sel.covers(v)
		if err != nil {
			return Report{}, fmt.Errorf("%w: entry %d (%s): %v", ErrNotFHIR, i, v.ResourceType, err)
		}
		if !covered {
			rep.Dropped[v.ResourceType]++
			continue
		}
		cats := make(map[string]bool, len(bundleCats))
		for c := range bundleCats {
			cats[c] = true
		}
		if err := viewLabels(v, cats, 0); err != nil {
			return Report{}, fmt.Errorf("%w: entry %d (%s): %v", ErrNotFHIR, i, v.ResourceType, err)
		}
		var missing []string
		for _, c := range sortedKeys(cats) {
			if !allow[c] {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			rep.Excluded = append(rep.Excluded, Exclusion{Index: i, Type: v.ResourceType, Categories: missing})
			continue
		}
		rep.Kept[v.ResourceType]++
		out = append(out, i)
		if fullURL != "" {
			keptRef[fullURL] = true
		}
		if id != "" {
			keptRef[v.ResourceType+"/"+id] = true
		}
	}

	// Dangling references: targets that are not kept. Targets are looked
	// up by fullUrl, then by [base/]Type/id.
	for _, i := range out {
		err := scanReferences(entries[i].Resource, func(ref string) {
			if ref == "" || ref[0] == '#' || keptRef[ref] {
				return
			}
			rel := relative(ref)
			if rel != "" && keptRef[rel] {
				return
			}
			t, ok := typeOf[ref]
			if !ok && rel != "" {
				t = rel[:strings.IndexByte(rel, '/')]
			} else if q := strings.IndexByte(ref, '?'); !ok && q > 0 && consent.IsR4ResourceType(ref[:q]) {
				t = ref[:q] // a conditional reference, Type?search
			}
			rep.Dangling[t]++
		})
		if err != nil {
			return Report{}, fmt.Errorf("%w: entry %d: malformed reference", ErrNotFHIR, i)
		}
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`{"resourceType":"Bundle"`)
	if bundleSec != nil {
		bw.WriteString(`,"meta":{"security":`)
		bw.Write(bundleSec)
		bw.WriteByte('}')
	}
	bw.WriteString(`,"type":"collection"`)
	if len(out) > 0 {
		bw.WriteString(`,"entry":[`)
		for n, i := range out {
			if n > 0 {
				bw.WriteByte(',')
			}
			bw.WriteByte('{')
			if len(entries[i].FullURL) > 0 {
				bw.WriteString(`"fullUrl":`)
				bw.Write(entries[i].FullURL)
				bw.WriteByte(',')
			}
			bw.WriteString(`"resource":`)
			bw.Write(entries[i].Resource)
			bw.WriteByte('}')
		}
		bw.WriteByte(']')
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return Report{}, fmt.Errorf("writing filtered Bundle: %w", err)
	}
	return rep, nil
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
