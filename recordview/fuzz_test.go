package recordview_test

import (
	"bytes"
	"testing"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

// FuzzSummarize: any input, in any of the formats, gives a summary or an
// error, never a panic, and its text stays within 80 columns.
func FuzzSummarize(f *testing.F) {
	f.Add(uint8(0), []byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]}],"valueQuantity":{"value":1}}}]}`))
	f.Add(uint8(1), []byte(`<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody><component><section><title>T</title><text><table><tr><td>a</td></tr></table><list><item>x</item></list></text><entry/></section></component></structuredBody></component></ClinicalDocument>`))
	f.Add(uint8(3), []byte("%PDF-1.4 << /Type /Pages /Count 3 >> << /Title (x\\) >> stream\n"))
	formats := []string{vault.FormatFHIR, vault.FormatCCDA, vault.FormatDICOM, vault.FormatPDF}
	f.Fuzz(func(t *testing.T, format uint8, data []byte) {
		md := vault.Metadata{Format: formats[int(format)%len(formats)]}
		s, err := recordview.SummarizeBytes(data, md)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := recordview.Render(&b, s, recordview.RenderOptions{Width: 80}); err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(b.Bytes(), []byte("\n")) {
			if n := len([]rune(string(line))); n > 80 {
				t.Fatalf("a line of %d columns: %q", n, line)
			}
		}
	})
}
