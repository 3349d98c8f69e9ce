package shlserve

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCleanRecipient: the recipient of a manifest request is text from
// anyone on the internet that goes (encrypted) onto the ledger: what is
// kept is valid UTF-8, has no control characters and fits the bound.
func FuzzCleanRecipient(f *testing.F) {
	for _, s := range []string{"Dr. Bob, St. Elsewhere ER", "a\x00b\nc\x1b[31m", "\xff\xfe", strings.Repeat("é", 300), "  \t "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := CleanRecipient(s)
		if len(got) > maxRecipient || !utf8.ValidString(got) {
			t.Fatalf("%q -> %q: %d bytes, valid %v", s, got, len(got), utf8.ValidString(got))
		}
		if strings.IndexFunc(got, unicode.IsControl) >= 0 {
			t.Fatalf("%q -> %q keeps a control character", s, got)
		}
	})
}
