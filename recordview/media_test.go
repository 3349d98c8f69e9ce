package recordview_test

import (
	"bytes"
	"compress/zlib"
	"io"
	"regexp"
	"strconv"
	"testing"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

// TestDICOMSummary: every DICOM file of the shared data shows its modality
// and SOP class (as detection reports them), with a golden text.
func TestDICOMSummary(t *testing.T) {
	for _, rel := range sharedFiles(t, vault.FormatDICOM, "dicom") {
		t.Run(rel, func(t *testing.T) {
			s, raw := summarizeFile(t, rel)
			checkGolden(t, goldenName(rel, ".txt"), render(t, s))
			md, _ := vault.Detect(bytes.NewReader(raw))
			field := func(sec, name string) string {
				for _, f := range s.Section(sec).Items[0].Fields {
					if f.Name == name {
						return f.Value
					}
				}
				return ""
			}
			if got := field("series", "modality"); got == "" || got != md.DICOM.Modality {
				t.Errorf("modality %q, detection says %q", got, md.DICOM.Modality)
			}
			if got := field("instance", "SOP class"); got == "" || got != md.DICOM.SOPClassUID {
				t.Errorf("SOP class %q, detection says %q", got, md.DICOM.SOPClassUID)
			}
			if s.Section("instance").Items[0].Title == md.DICOM.SOPClassUID {
				t.Errorf("SOP class %q shown without its name", md.DICOM.SOPClassUID)
			}
		})
	}
}

// TestPDFSummary: every PDF of the shared data shows its page count, as
// counted by another path (every /Type /Page in the file and in every
// stream that inflates), with a golden text.
func TestPDFSummary(t *testing.T) {
	for _, rel := range sharedFiles(t, vault.FormatPDF, "pdf") {
		t.Run(rel, func(t *testing.T) {
			s, raw := summarizeFile(t, rel)
			checkGolden(t, goldenName(rel, ".txt"), render(t, s))
			want := countPages(raw)
			var got string
			for _, f := range s.Section("document").Items[0].Fields {
				if f.Name == "pages" {
					got = f.Value
				}
			}
			if got != strconv.Itoa(want) || want == 0 {
				t.Errorf("pages %q, the stream walk counts %d", got, want)
			}
		})
	}
}

func countPages(raw []byte) int {
	page := regexp.MustCompile(`/Type\s*/Page([^a-zA-Z]|$)`)
	n := len(page.FindAll(raw, -1))
	for _, m := range regexp.MustCompile(`stream\r?\n`).FindAllIndex(raw, -1) {
		zr, err := zlib.NewReader(bytes.NewReader(raw[m[1]:]))
		if err != nil {
			continue
		}
		plain, _ := io.ReadAll(io.LimitReader(zr, 16<<20))
		n += len(page.FindAll(plain, -1))
	}
	return n
}

func TestPDFStrings(t *testing.T) {
	pdf := "%PDF-1.4\n1 0 obj << /Title <FEFF00480069> /Producer (x) >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n"
	s, err := recordview.SummarizeBytes([]byte(pdf), vault.Metadata{Format: vault.FormatPDF})
	if err != nil {
		t.Fatal(err)
	}
	if s.Title != "Hi" || s.Sections[0].Items[0].Detail != "title Hi; pages 1; PDF version 1.4" {
		t.Errorf("title %q, detail %q", s.Title, s.Sections[0].Items[0].Detail)
	}
	s, _ = recordview.SummarizeBytes([]byte(`%PDF-1.4 << /Title (a \(b\) \101\nc) >>`), vault.Metadata{Format: vault.FormatPDF})
	if s.Title != "a (b) A c" {
		t.Errorf("title %q", s.Title)
	}
}
