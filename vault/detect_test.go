package vault_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/vault"
)

func TestDetect(t *testing.T) {
	bigBundle := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"entry":[`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"fullUrl":"urn:uuid:%d","resource":{"resourceType":"Observation","id":"o%d","subject":{"reference":"Patient/p1"},"valueString":"%s"}}`, i, i, strings.Repeat("x", 100))
		}
		b.WriteString(`],"type":"collection","resourceType":"Bundle"}`)
		return b.String()
	}
	dicom := append(make([]byte, 128), "DICM"...)
	dicom = append(dicom, 0x02, 0x00, 0x10, 0x00, 'U', 'I', 18, 0)
	dicom = append(dicom, "1.2.840.10008.1.2\x00"...)
	dicom = append(dicom, 0x08, 0x00, 0x60, 0x00, 2, 0, 0, 0, 'U', 'S') // implicit VR: (0008,0060) len 2
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, m vault.Metadata)
	}{
		{"empty", "", func(t *testing.T, m vault.Metadata) { want(t, m.Format, vault.FormatBinary) }},
		{"random", "\x00\x01\x02", func(t *testing.T, m vault.Metadata) { want(t, m.Format, vault.FormatBinary) }},
		{"plain json", `{"a":1}`, func(t *testing.T, m vault.Metadata) {
			want(t, m.Format, vault.FormatBinary)
			want(t, m.MediaType, "application/json")
		}},
		{"broken fhir json", `{"resourceType":"Observation","subject":{"reference":"Patient/9"}`, func(t *testing.T, m vault.Metadata) {
			want(t, m.Format, vault.FormatFHIR)
			if !m.FHIR.Partial {
				t.Error("truncated JSON not marked partial")
			}
		}},
		{"bom and spaces", "\xef\xbb\xbf \n{\"resourceType\":\"Patient\",\"id\":\"x\"}", func(t *testing.T, m vault.Metadata) {
			want(t, m.FHIR.Patient, "Patient/x")
		}},
		{"bad resource type", `{"resourceType":"not a type"}`, func(t *testing.T, m vault.Metadata) { want(t, m.Format, vault.FormatBinary) }},
		{"bundle, resourceType last, larger than the sniff prefix", bigBundle(2000), func(t *testing.T, m vault.Metadata) {
			want(t, m.Format, vault.FormatFHIR)
			want(t, m.FHIR.BundleType, "collection")
			want(t, fmt.Sprint(m.FHIR.Resources), "map[Observation:2000]")
			want(t, m.FHIR.Patient, "Patient/p1")
			want(t, fmt.Sprint(m.ResourceTypes()), "[Observation]")
		}},
		{"other xml", `<?xml version="1.0"?><html/>`, func(t *testing.T, m vault.Metadata) { want(t, m.Format, vault.FormatBinary) }},
		{"cda in another namespace", `<ClinicalDocument xmlns="urn:x"/>`, func(t *testing.T, m vault.Metadata) { want(t, m.Format, vault.FormatBinary) }},
		{"cda", `<ClinicalDocument xmlns="urn:hl7-org:v3"><templateId root="2.16.840.1.113883.10.20.22.1.8"/><code code="18842-5" displayName="Discharge summary"/><component/></ClinicalDocument>`,
			func(t *testing.T, m vault.Metadata) {
				want(t, m.Format, vault.FormatCCDA)
				want(t, m.CDA.DocumentType, "Discharge Summary")
			}},
		{"pdf", "%PDF-1.4\n%\xe2\xe3", func(t *testing.T, m vault.Metadata) {
			want(t, m.Format, vault.FormatPDF)
			want(t, m.PDF.Version, "1.4")
		}},
		{"dicom implicit vr", string(dicom), func(t *testing.T, m vault.Metadata) {
			want(t, m.Format, vault.FormatDICOM)
			want(t, m.DICOM.Modality, "US")
		}},
		{"dicom truncated", string(dicom[:140]), func(t *testing.T, m vault.Metadata) { want(t, m.Format, vault.FormatDICOM) }},
		{"invalid utf-8 is cleaned", "{\"resourceType\":\"Patient\",\"id\":\"\xff\"}", func(t *testing.T, m vault.Metadata) {
			want(t, m.Format, vault.FormatFHIR)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := vault.Detect(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			want(t, m.Size, int64(len(tc.in)))
			tc.check(t, m)
		})
	}
}

func want[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDetectFHIRScanLimit(t *testing.T) {
	defer vault.SetFHIRScanLimit(100 << 10)()
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","entry":[`)
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"resource":{"resourceType":"Condition","id":"%d"}}`, i)
	}
	b.WriteString(`]}`)
	m, err := vault.Detect(&b)
	if err != nil {
		t.Fatal(err)
	}
	if m.FHIR == nil || !m.FHIR.Partial || m.FHIR.Resources["Condition"] == 0 || m.FHIR.Resources["Condition"] >= 5000 {
		t.Fatalf("scan limit not applied: %+v", m.FHIR)
	}
}
