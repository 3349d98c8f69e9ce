package fhirscope

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode"
	"unicode/utf8"
)

// checkKeys fails when an object anywhere in the valid JSON data has two
// member names that are equal or differ only in case. encoding/json keeps
// the last of duplicate names and matches names case-insensitively, while
// other FHIR parsers may keep the first or match exactly; with such input
// the labels fhirscope reads could differ from those the grantee's
// software reads (a second "meta" hiding the first's security labels).
// FHIR JSON never has such names, so they are refused.
func checkKeys(data []byte) error { return checkKeysAt(data, 0) }

// maxJSONDepth is encoding/json's limit on nesting, which Filter applies to
// the whole record though it decodes it a part at a time.
const maxJSONDepth = 10000

var errTooDeepJSON = errors.New("JSON nested too deeply")

// checkKeysAt is checkKeys on a value found depth arrays and objects deep
// in a record; it also fails when the value reaches deeper than
// maxJSONDepth in the record.
func checkKeysAt(data []byte, depth int) error {
	type frame struct {
		obj  bool
		keys []string
		set  map[string]struct{}
	}
	var stack []frame
	push := func(obj bool) {
		if len(stack) < cap(stack) {
			stack = stack[:len(stack)+1]
			f := &stack[len(stack)-1]
			f.obj, f.keys, f.set = obj, f.keys[:0], nil
			return
		}
		stack = append(stack, frame{obj: obj})
	}
	var buf []byte
	for i := 0; i < len(data); {
		switch data[i] {
		case '{', '[':
			push(data[i] == '{')
			if depth+len(stack) > maxJSONDepth {
				return errTooDeepJSON
			}
			i++
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			i++
		case '"':
			j, esc := i+1, false
			for j < len(data) && data[j] != '"' {
				if data[j] == '\\' {
					esc = true
					j++
				}
				j++
			}
			if j >= len(data) {
				return errMalformed
			}
			s := data[i : j+1]
			i = j + 1
			k := i
			for k < len(data) && isSpace(data[k]) {
				k++
			}
			if k >= len(data) || data[k] != ':' || len(stack) == 0 || !stack[len(stack)-1].obj {
				continue
			}
			name := s[1 : len(s)-1]
			if esc {
				var u string
				if json.Unmarshal(s, &u) != nil {
					return errMalformed
				}
				name = []byte(u)
			}
			buf = fold(buf[:0], name)
			f := &stack[len(stack)-1]
			if f.set != nil {
				if _, dup := f.set[string(buf)]; dup {
					return errDupKey
				}
				f.set[string(buf)] = struct{}{}
				continue
			}
			for _, k := range f.keys {
				if k == string(buf) {
					return errDupKey
				}
			}
			f.keys = append(f.keys, string(buf))
			if len(f.keys) > 16 {
				f.set = make(map[string]struct{}, 2*len(f.keys))
				for _, k := range f.keys {
					f.set[k] = struct{}{}
				}
			}
		default:
			i++
		}
	}
	return nil
}

// fold appends to dst a case-folded form of s such that fold(x) ==
// fold(y) exactly when bytes.EqualFold(x, y), the rule encoding/json
// matches member names by: every rune becomes the smallest rune of its
// simple folding orbit.
func fold(dst, s []byte) []byte {
	for len(s) > 0 {
		c := s[0]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			s = s[1:]
			continue
		}
		r, n := utf8.DecodeRune(s)
		s = s[n:]
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		dst = utf8.AppendRune(dst, m)
	}
	return dst
}

// entryMembers returns the fullUrl and resource members of one Bundle
// entry, as json.Unmarshal into a bundleEntry would (names matched as
// encoding/json matches them, values byte for byte and copied), from data
// the decoder has already checked to be one valid JSON value whose names
// checkKeys has checked. It fails, as that Unmarshal does, when the value
// is neither an object nor null; it is that Unmarshal without a second
// validation pass over the entry.
func entryMembers(data []byte) (e bundleEntry, err error) {
	if string(data) == "null" {
		return e, nil
	}
	if len(data) == 0 || data[0] != '{' {
		return e, errMalformed
	}
	for i := skipSpace(data, 1); i < len(data) && data[i] != '}'; {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		end := skipValue(data, i) // the name
		name := data[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			var s string
			if json.Unmarshal(data[i:end], &s) != nil {
				return bundleEntry{}, errMalformed
			}
			name = []byte(s)
		}
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // the colon
		end = skipValue(data, i)
		switch {
		case bytes.EqualFold(name, []byte("fullUrl")):
			e.FullURL = append(json.RawMessage(nil), data[i:end]...)
		case bytes.EqualFold(name, []byte("resource")):
			e.Resource = append(json.RawMessage(nil), data[i:end]...)
		}
		i = skipSpace(data, end)
	}
	return e, nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value at data[i:].
func skipValue(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i // the end of a scalar before a closing bracket
			}
		case ',', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
