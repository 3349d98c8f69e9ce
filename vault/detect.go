package vault

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Record formats reported in Metadata.Format.
const (
	FormatFHIR   = "fhir-r4"
	FormatCCDA   = "ccda"
	FormatDICOM  = "dicom"
	FormatPDF    = "pdf"
	FormatBinary = "binary"
	// FormatSHC is a SMART Health Card as it arrives (a .smart-health-card
	// file, a numeric shc:/ QR payload or a bare JWS). The wallet verifies
	// and stores the Bundle inside as FHIR instead; a card stored as is
	// (sealed directly) keeps this format.
	FormatSHC = "smart-health-card"
)

// Detection limits. The format is decided on the first SniffSize bytes.
// C-CDA headers, DICOM attributes and PDF versions are read from that
// prefix only. FHIR JSON is parsed with a streaming decoder (one bundle
// entry in memory at a time) over at most FHIRScanLimit bytes; past that,
// counts stop and FHIRInfo.Partial is set.
const (
	SniffSize     = 64 << 10
	FHIRScanLimit = 64 << 20 // default of fhirScanLimit
	maxTypes      = 256
)

// Metadata describes a record. It is read from the record itself while it
// is sealed, plus the user's label, and lives only inside the encrypted
// manifest.
type Metadata struct {
	Format    string     `cbor:"format" json:"format"`
	MediaType string     `cbor:"media_type" json:"media_type"`
	Label     string     `cbor:"label,omitempty" json:"label,omitempty"`
	Size      int64      `cbor:"size" json:"size"`
	FHIR      *FHIRInfo  `cbor:"fhir,omitempty" json:"fhir,omitempty"`
	CDA       *CDAInfo   `cbor:"cda,omitempty" json:"cda,omitempty"`
	DICOM     *DICOMInfo `cbor:"dicom,omitempty" json:"dicom,omitempty"`
	PDF       *PDFInfo   `cbor:"pdf,omitempty" json:"pdf,omitempty"`
	// Provenance is set by the wallet, not detected: where the record came
	// from when it was imported from a signed source (a SMART Health Card).
	Provenance *Provenance `cbor:"provenance,omitempty" json:"provenance,omitempty"`
}

// Provenance describes the signed source a record was imported from.
type Provenance struct {
	// Source is "smart-health-card" or "smart-health-link" (a FHIR file
	// from a link); Via says how it arrived: "file", "qr", "jws", or
	// "smart-health-link".
	Source string `cbor:"source" json:"source"`
	Via    string `cbor:"via,omitempty" json:"via,omitempty"`
	// Issuer is the card's iss (the issuer's URL; for a link's FHIR file,
	// the link server's origin), IssuerName the local name of the trusted
	// issuer whose key verified it, Kid that key.
	Issuer     string `cbor:"issuer" json:"issuer"`
	IssuerName string `cbor:"issuer_name,omitempty" json:"issuer_name,omitempty"`
	Kid        string `cbor:"kid" json:"kid"`
	// Status is "verified", "unverified" or "unsigned"; Problem says why a
	// card was stored unverified (imported with --unverified).
	Status  string `cbor:"status" json:"status"`
	Problem string `cbor:"problem,omitempty" json:"problem,omitempty"`
	// IssuedAt and Expires are the card's nbf and exp (Unix seconds; 0 when absent).
	IssuedAt int64 `cbor:"issued_at,omitempty" json:"issued_at,omitempty"`
	Expires  int64 `cbor:"expires,omitempty" json:"expires,omitempty"`
	// Revocation is what the issuer's card revocation list said at
	// import (smarthealth.RevocationChecked, ...Stale or ...Missing);
	// empty when the issuer revokes no card of the signing key.
	Revocation string `cbor:"revocation,omitempty" json:"revocation,omitempty"`
}

// Provenance statuses. A FHIR file from a SMART Health Link carries no
// signature of its own: it is "unsigned" (the link's key only shows it
// came from whoever made the link).
const (
	ProvenanceVerified   = "verified"
	ProvenanceUnverified = "unverified"
	ProvenanceUnsigned   = "unsigned"
)

// ResourceTypes returns the FHIR resource types found in the record, sorted,
// or nil for a non-FHIR record.
func (m Metadata) ResourceTypes() []string {
	if m.FHIR == nil {
		return nil
	}
	types := make([]string, 0, len(m.FHIR.Resources))
	for t := range m.FHIR.Resources {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// FHIRInfo describes a FHIR R4 JSON record: a Bundle or a single resource.
type FHIRInfo struct {
	ResourceType string         `cbor:"resource_type" json:"resource_type"`
	BundleType   string         `cbor:"bundle_type,omitempty" json:"bundle_type,omitempty"`
	Resources    map[string]int `cbor:"resources,omitempty" json:"resources,omitempty"`
	Patient      string         `cbor:"patient,omitempty" json:"patient,omitempty"`
	Partial      bool           `cbor:"partial,omitempty" json:"partial,omitempty"`
}

// CDAInfo describes an HL7 C-CDA XML ClinicalDocument.
type CDAInfo struct {
	DocumentType string   `cbor:"document_type,omitempty" json:"document_type,omitempty"`
	Code         string   `cbor:"code,omitempty" json:"code,omitempty"`
	CodeSystem   string   `cbor:"code_system,omitempty" json:"code_system,omitempty"`
	CodeName     string   `cbor:"code_name,omitempty" json:"code_name,omitempty"`
	Templates    []string `cbor:"templates,omitempty" json:"templates,omitempty"`
}

// DICOMInfo describes a DICOM Part 10 file.
type DICOMInfo struct {
	Modality       string `cbor:"modality,omitempty" json:"modality,omitempty"`
	SOPClassUID    string `cbor:"sop_class_uid,omitempty" json:"sop_class_uid,omitempty"`
	TransferSyntax string `cbor:"transfer_syntax,omitempty" json:"transfer_syntax,omitempty"`
}

// PDFInfo describes a PDF document.
type PDFInfo struct {
	Version string `cbor:"version,omitempty" json:"version,omitempty"`
}

// Detect reads r to EOF and returns its metadata (without a label).
func Detect(r io.Reader) (Metadata, error) {
	d := newDetector()
	_, err := io.Copy(d, r)
	m := d.finish()
	return m, err
}

// detector is an io.Writer that sees the plaintext as it streams past. It
// never fails and never blocks for long: it keeps a bounded prefix and, for
// JSON, feeds a streaming decoder until FHIRScanLimit.
type detector struct {
	size    int64
	prefix  []byte
	decided bool

	jw     *io.PipeWriter
	jfed   int64
	jdone  chan fhirScan
	jstop  bool
	isJSON bool
}

func newDetector() *detector { return &detector{prefix: make([]byte, 0, SniffSize)} }

func (d *detector) Write(p []byte) (int, error) {
	total := len(p)
	d.size += int64(total)
	if !d.decided {
		n := min(len(p), SniffSize-len(d.prefix))
		d.prefix = append(d.prefix, p[:n]...)
		if len(d.prefix) < SniffSize {
			return len(p), nil
		}
		d.decide()
		if d.isJSON {
			d.feed(bytes.TrimPrefix(d.prefix, []byte(bom)))
		}
		p = p[n:]
	}
	if d.isJSON {
		d.feed(p)
	}
	return total, nil
}

func (d *detector) decide() {
	d.decided = true
	if first := firstByte(d.prefix); first == '{' {
		d.isJSON = true
		pr, pw := io.Pipe()
		d.jw = pw
		d.jdone = make(chan fhirScan, 1)
		go func() {
			res := scanFHIR(json.NewDecoder(pr))
			pr.CloseWithError(errScanDone)
			d.jdone <- res
		}()
	}
}

var (
	errScanDone  = errors.New("scan done")
	errScanLimit = errors.New("scan limit reached")
)

func (d *detector) feed(p []byte) {
	if d.jstop || len(p) == 0 {
		return
	}
	if room := fhirScanLimit - d.jfed; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := d.jw.Write(p)
	d.jfed += int64(n)
	if err != nil {
		d.jstop = true
		return
	}
	if d.jfed >= fhirScanLimit {
		d.jstop = true
		d.jw.CloseWithError(errScanLimit)
	}
}

// finish returns the metadata once the whole record has been written.
func (d *detector) finish() Metadata {
	if !d.decided {
		d.decide()
		if d.isJSON {
			d.feed(bytes.TrimPrefix(d.prefix, []byte(bom)))
		}
	}
	m := Metadata{Format: FormatBinary, MediaType: "application/octet-stream", Size: d.size}
	if d.isJSON {
		d.jw.Close()
		res := <-d.jdone
		if res.info == nil && isSHC(d.prefix) {
			m.Format, m.MediaType = FormatSHC, MediaTypeSHC
			return m
		}
		if res.info != nil {
			m.Format, m.MediaType, m.FHIR = FormatFHIR, "application/fhir+json", res.info
			if !res.complete {
				m.FHIR.Partial = true
			}
		} else {
			m.MediaType = "application/json"
		}
		return m
	}
	p := d.prefix
	dcm := sniffDICOM(p)
	switch {
	case dcm != nil:
		m.Format, m.MediaType, m.DICOM = FormatDICOM, "application/dicom", dcm
	case bytes.HasPrefix(p, []byte("%PDF-")) || bytes.Contains(p[:min(len(p), 1024)], []byte("%PDF-")):
		m.Format, m.MediaType, m.PDF = FormatPDF, "application/pdf", sniffPDF(p)
	case firstByte(p) == '<':
		if info := sniffCDA(p); info != nil {
			m.Format, m.MediaType, m.CDA = FormatCCDA, "application/xml", info
		}
	case isSHC(p):
		m.Format, m.MediaType = FormatSHC, MediaTypeSHC
	}
	return m
}

// MediaTypeSHC is the media type of a SMART Health Card file.
const MediaTypeSHC = "application/smart-health-card"

// shcJWS is a compact JWS whose header is JSON ("eyJ" is base64url of
// `{"`): the whole first line, or a long prefix of one.
var shcJWS = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// isSHC reports whether the prefix looks like a SMART Health Card: a JSON
// object that opens with "verifiableCredential", a numeric "shc:/" QR
// payload, or a bare compact JWS. The wallet's smarthealth package decides
// (and verifies); this only keeps such input from being called binary.
func isSHC(p []byte) bool {
	p = bytes.TrimLeft(bytes.TrimPrefix(p, []byte(bom)), " \t\r\n")
	switch {
	case len(p) > 0 && p[0] == '{':
		return bytes.Contains(p[:min(len(p), 256)], []byte(`"verifiableCredential"`))
	case bytes.HasPrefix(p, []byte("shc:/")):
		d := p[len("shc:/"):]
		return len(d) > 0 && d[0] >= '0' && d[0] <= '9'
	case bytes.HasPrefix(p, []byte("eyJ")):
		line, _, complete := bytes.Cut(p, []byte("\n"))
		line = bytes.TrimRight(line, " \t\r")
		if complete || len(p) < SniffSize {
			return shcJWS.Match(line)
		}
		return len(bytes.Trim(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")) == 0 && bytes.Count(line, []byte(".")) >= 1
	}
	return false
}

// IsSmartHealthCard reports whether a record's first bytes (up to
// SniffSize) look like a SMART Health Card: whether Detect, given them,
// says FormatSHC.
func IsSmartHealthCard(prefix []byte) bool {
	md, _ := Detect(bytes.NewReader(prefix[:min(len(prefix), SniffSize)]))
	return md.Format == FormatSHC
}

const bom = "\xef\xbb\xbf"

// firstByte returns the first non-space byte after an optional UTF-8 BOM.
func firstByte(p []byte) byte {
	p = bytes.TrimPrefix(p, []byte(bom))
	p = bytes.TrimLeft(p, " \t\r\n")
	if len(p) == 0 {
		return 0
	}
	return p[0]
}

type fhirScan struct {
	info     *FHIRInfo
	complete bool
}

type fhirRef struct {
	Reference string `json:"reference"`
}

type fhirResource struct {
	ResourceType string   `json:"resourceType"`
	ID           string   `json:"id"`
	Subject      *fhirRef `json:"subject"`
	Patient      *fhirRef `json:"patient"`
}

type fhirEntry struct {
	FullURL  string       `json:"fullUrl"`
	Resource fhirResource `json:"resource"`
}

// scanFHIR walks the top-level object of a JSON document with a streaming
// decoder, keeping one bundle entry in memory at a time. It returns nil info
// if the document is not a FHIR resource.
func scanFHIR(dec *json.Decoder) (res fhirScan) {
	var (
		top        fhirResource
		bundleType string
		counts     = map[string]int{}
		patient    string
		subject    string
	)
	build := func() {
		if !validType(top.ResourceType) {
			return
		}
		info := &FHIRInfo{ResourceType: top.ResourceType, BundleType: bundleType}
		if top.ResourceType != "Bundle" {
			counts = map[string]int{top.ResourceType: 1}
			switch {
			case top.ResourceType == "Patient" && top.ID != "":
				patient = "Patient/" + top.ID
			case top.Subject != nil:
				patient = top.Subject.Reference
			case top.Patient != nil:
				patient = top.Patient.Reference
			}
		} else if patient == "" {
			patient = subject
		}
		info.Patient = patient
		if len(counts) > 0 {
			info.Resources = counts
		}
		res.info = info
	}
	defer build()

	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return
		}
		key, _ := t.(string)
		switch key {
		case "resourceType":
			if !decodeLenient(dec, &top.ResourceType) {
				return
			}
		case "id":
			if !decodeLenient(dec, &top.ID) {
				return
			}
		case "type":
			var v any
			if dec.Decode(&v) != nil {
				return
			}
			bundleType, _ = v.(string)
		case "subject":
			if !decodeLenient(dec, &top.Subject) {
				return
			}
		case "patient":
			if !decodeLenient(dec, &top.Patient) {
				return
			}
		case "entry":
			if t, err := dec.Token(); err != nil || t != json.Delim('[') {
				return
			}
			for dec.More() {
				var e fhirEntry
				if !decodeLenient(dec, &e) {
					return
				}
				rt := e.Resource.ResourceType
				if !validType(rt) {
					continue
				}
				if _, ok := counts[rt]; ok || len(counts) < maxTypes {
					counts[rt]++
				}
				if rt == "Patient" && patient == "" {
					if e.Resource.ID != "" {
						patient = "Patient/" + e.Resource.ID
					} else {
						patient = e.FullURL
					}
				}
				if subject == "" {
					if e.Resource.Subject != nil {
						subject = e.Resource.Subject.Reference
					} else if e.Resource.Patient != nil {
						subject = e.Resource.Patient.Reference
					}
				}
			}
			if _, err := dec.Token(); err != nil {
				return
			}
		default:
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return
			}
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return
	}
	res.complete = true
	return
}

// decodeLenient decodes the next value, tolerating type mismatches (the
// value is consumed either way).
func decodeLenient(dec *json.Decoder, v any) bool {
	err := dec.Decode(v)
	var te *json.UnmarshalTypeError
	return err == nil || errors.As(err, &te)
}

// validType accepts FHIR resource type names: an upper-case letter then
// letters, at most 64 bytes.
func validType(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// C-CDA R2.1 document templates (2.16.840.1.113883.10.20.22.1.*).
var cdaTemplates = map[string]string{
	"2.16.840.1.113883.10.20.22.1.2":  "Continuity of Care Document",
	"2.16.840.1.113883.10.20.22.1.3":  "History and Physical",
	"2.16.840.1.113883.10.20.22.1.4":  "Consultation Note",
	"2.16.840.1.113883.10.20.22.1.5":  "Diagnostic Imaging Report",
	"2.16.840.1.113883.10.20.22.1.6":  "Procedure Note",
	"2.16.840.1.113883.10.20.22.1.7":  "Operative Note",
	"2.16.840.1.113883.10.20.22.1.8":  "Discharge Summary",
	"2.16.840.1.113883.10.20.22.1.9":  "Progress Note",
	"2.16.840.1.113883.10.20.22.1.10": "Unstructured Document",
	"2.16.840.1.113883.10.20.22.1.14": "Referral Note",
	"2.16.840.1.113883.10.20.22.1.15": "Care Plan",
}

// sniffCDA reads the header of an XML document from the prefix and returns
// its C-CDA description, or nil if the root is not an HL7 v3
// ClinicalDocument.
func sniffCDA(p []byte) *CDAInfo {
	dec := xml.NewDecoder(bytes.NewReader(p))
	dec.Strict = false
	depth := 0
	var info *CDAInfo
	for {
		t, err := dec.Token()
		if err != nil {
			return info
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				if t.Name.Local != "ClinicalDocument" || t.Name.Space != "urn:hl7-org:v3" {
					return nil
				}
				info = &CDAInfo{}
				continue
			}
			if depth != 2 {
				continue
			}
			switch t.Name.Local {
			case "templateId":
				if root := attr(t, "root"); root != "" && len(info.Templates) < 16 {
					info.Templates = append(info.Templates, root)
					if name, ok := cdaTemplates[root]; ok && info.DocumentType == "" {
						info.DocumentType = name
					}
				}
			case "code":
				if info.Code == "" {
					info.Code, info.CodeSystem, info.CodeName = attr(t, "code"), attr(t, "codeSystem"), attr(t, "displayName")
				}
			case "component", "recordTarget":
				if info.DocumentType == "" {
					info.DocumentType = info.CodeName
				}
				return info
			}
		case xml.EndElement:
			depth--
		}
	}
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// sniffPDF returns the version from the %PDF-x.y header.
func sniffPDF(p []byte) *PDFInfo {
	i := bytes.Index(p, []byte("%PDF-"))
	v := p[i+5:]
	n := 0
	for n < len(v) && n < 4 && (v[n] >= '0' && v[n] <= '9' || v[n] == '.') {
		n++
	}
	return &PDFInfo{Version: string(v[:n])}
}

// maxField bounds every string detected from a record.
const maxField = 256

func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxField {
		return s
	}
	s = s[:maxField]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// sanitized returns m with every detected string valid UTF-8 and bounded,
// so the manifest always encodes and decodes.
func (m Metadata) sanitized() Metadata {
	if f := m.FHIR; f != nil {
		f.ResourceType, f.BundleType, f.Patient = clean(f.ResourceType), clean(f.BundleType), clean(f.Patient)
	}
	if c := m.CDA; c != nil {
		c.DocumentType, c.Code, c.CodeSystem, c.CodeName = clean(c.DocumentType), clean(c.Code), clean(c.CodeSystem), clean(c.CodeName)
		for i := range c.Templates {
			c.Templates[i] = clean(c.Templates[i])
		}
	}
	if d := m.DICOM; d != nil {
		d.Modality, d.SOPClassUID, d.TransferSyntax = clean(d.Modality), clean(d.SOPClassUID), clean(d.TransferSyntax)
	}
	if p := m.PDF; p != nil {
		p.Version = clean(p.Version)
	}
	if p := m.Provenance; p != nil {
		p.Source, p.Via, p.Issuer, p.IssuerName = clean(p.Source), clean(p.Via), clean(p.Issuer), clean(p.IssuerName)
		p.Kid, p.Status, p.Problem = clean(p.Kid), clean(p.Status), clean(p.Problem)
	}
	return m
}

// fhirScanLimit is FHIRScanLimit, lowered by tests.
var fhirScanLimit int64 = FHIRScanLimit
