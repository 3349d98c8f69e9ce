package recordview_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

// cdaSection is a section as encoding/xml's struct decoding sees it, for
// a count made by another path than the summary's token walk.
type cdaSection struct {
	Title     string     `xml:"title"`
	Entries   []struct{} `xml:"entry"`
	Text      *struct{}  `xml:"text"`
	Component []struct {
		Section *cdaSection `xml:"section"`
	} `xml:"component"`
}

type cdaDoc struct {
	Component struct {
		StructuredBody struct {
			Component []struct {
				Section *cdaSection `xml:"section"`
			} `xml:"component"`
		} `xml:"structuredBody"`
	} `xml:"component"`
}

// flatten lists sections as the summary does: a nested section after
// its parent... in document order of their end tags (children first).
func flatten(s *cdaSection, out *[]*cdaSection) {
	for _, c := range s.Component {
		if c.Section != nil {
			flatten(c.Section, out)
		}
	}
	*out = append(*out, s)
}

// TestCCDAGolden summarises every C-CDA document of the shared data,
// compares the text with its golden file, and checks each section's title
// and entry count against encoding/xml's struct decoding of the source.
func TestCCDAGolden(t *testing.T) {
	for _, rel := range sharedFiles(t, vault.FormatCCDA, "ccda") {
		t.Run(rel, func(t *testing.T) {
			s, raw := summarizeFile(t, rel)
			checkGolden(t, goldenName(rel, ".txt"), render(t, s))
			if s.Partial {
				t.Error("summary of a whole shared file is partial")
			}
			var doc cdaDoc
			if err := xml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			var want []*cdaSection
			for _, c := range doc.Component.StructuredBody.Component {
				if c.Section != nil {
					flatten(c.Section, &want)
				}
			}
			var got []recordview.Section
			for _, sec := range s.Sections {
				if sec.Key != recordview.KeyPatient && sec.Key != "document" {
					got = append(got, sec)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d sections, struct decoding finds %d", len(got), len(want))
			}
			for i, w := range want {
				title := strings.Join(strings.Fields(w.Title), " ")
				if got[i].Title != title && !(title == "" && got[i].Title == "Untitled section") {
					t.Errorf("section %d: title %q, want %q", i, got[i].Title, title)
				}
				if got[i].Count != len(w.Entries) {
					t.Errorf("section %q: %d entries, struct decoding counts %d", title, got[i].Count, len(w.Entries))
				}
				if (w.Text != nil) != (got[i].Text != "") && w.Text != nil {
					t.Logf("section %q: empty narrative", title)
				}
			}
			if p := s.Section(recordview.KeyPatient); p == nil || p.Items[0].Title == "(no name)" {
				t.Errorf("no patient: %+v", p)
			}
		})
	}
}

func TestCCDARefusesOtherXML(t *testing.T) {
	md := vault.Metadata{Format: vault.FormatCCDA}
	for _, in := range []string{`<html/>`, `<ClinicalDocument xmlns="urn:x"/>`, `not xml`} {
		if _, err := recordview.SummarizeBytes([]byte(in), md); err == nil {
			t.Errorf("%q summarised as C-CDA", in)
		}
	}
	// An external entity is never fetched nor expanded.
	doc := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody><component><section><title>T &ext;</title><text>a &amp; b &nbsp;c</text></section></component></structuredBody></component></ClinicalDocument>`
	s, err := recordview.SummarizeBytes([]byte(doc), md)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Sections) != 1 || strings.Contains(s.Sections[0].Title, "root:") || s.Sections[0].Text != "a & b \u00a0c" && s.Sections[0].Text != "a & b c" {
		t.Errorf("sections: %+v", s.Sections)
	}
}
