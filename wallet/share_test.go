package wallet

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/medwallet/medwallet/vault"
)

// A FHIR record goes behind a link as it is; any other inside a FHIR
// DocumentReference whose attachment holds its bytes and media type.
func TestSHLContent(t *testing.T) {
	fhir := []byte(`{"resourceType":"Bundle"}`)
	got, wrapped, err := shlContent(vault.Metadata{Format: vault.FormatFHIR, MediaType: "application/fhir+json"}, fhir)
	if err != nil || wrapped || string(got) != string(fhir) {
		t.Fatalf("FHIR: %s %v %v", got, wrapped, err)
	}
	pdf := []byte("%PDF-1.7 not really")
	got, wrapped, err = shlContent(vault.Metadata{Format: vault.FormatPDF, MediaType: "application/pdf", Label: "Discharge letter"}, pdf)
	if err != nil || !wrapped {
		t.Fatalf("PDF: %v %v", wrapped, err)
	}
	var doc struct {
		ResourceType string `json:"resourceType"`
		Status       string `json:"status"`
		Content      []struct {
			Attachment struct {
				ContentType string `json:"contentType"`
				Data        string `json:"data"`
				Size        int    `json:"size"`
				Title       string `json:"title"`
			} `json:"attachment"`
		} `json:"content"`
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	a := doc.Content[0].Attachment
	data, _ := base64.StdEncoding.DecodeString(a.Data)
	if doc.ResourceType != "DocumentReference" || doc.Status != "current" || a.ContentType != "application/pdf" ||
		string(data) != string(pdf) || a.Size != len(pdf) || a.Title != "Discharge letter" {
		t.Fatalf("DocumentReference: %s", got)
	}
	got, _, _ = shlContent(vault.Metadata{Format: vault.FormatBinary}, []byte{0, 1})
	if err := json.Unmarshal(got, &doc); err != nil || doc.Content[0].Attachment.ContentType != "application/octet-stream" {
		t.Fatalf("binary: %s", got)
	}
}

func TestParseShareExpiry(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 500e6, time.UTC)
	for in, want := range map[string]time.Time{
		"":           {},
		"90s":        time.Date(2026, 12, 2, 6, 1, 31, 0, time.UTC),
		"30m":        time.Date(2026, 12, 2, 6, 30, 1, 0, time.UTC),
		"12h":        time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC),
		"2026-12-31": time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ParseShareExpiry(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseShareExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-5s", "0s", "soon", "2020-01-01"} {
		if _, err := ParseShareExpiry(in, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseShareExpiry(%q) = %v, want ErrInvalid", in, err)
		}
	}
}
