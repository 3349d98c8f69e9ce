package fhirscope

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/medwallet/medwallet/consent"
)

// oracleFilter is Filter as it was before it streamed: it reads the whole
// input, then classifies every entry. Kept verbatim (but for its name) as
// the reference the streaming Filter must match byte for byte.
func oracleFilter(r io.Reader, w io.Writer, sel Selection) (Report, error) {
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
