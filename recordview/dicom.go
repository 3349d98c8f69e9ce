package recordview

import (
	"fmt"
	"io"
	"strings"

	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/medwallet/medwallet/vault"
)

// summarizeDICOM reads a DICOM file's header (vault.ReadDICOM, the
// library, up to group 0028; pixel data skipped) and returns its patient,
// study, series and instance.
func summarizeDICOM(r io.Reader) (*Summary, error) {
	h, err := vault.ReadDICOM(r, MaxInput, vault.DICOMSummaryGroup)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	v := h.Value
	s := &Summary{Format: vault.FormatDICOM, Partial: h.Partial}
	s.Title = first(v(tag.StudyDescription), v(tag.SeriesDescription))

	var pf []Field
	pf = addField(pf, "born", hl7Date(v(tag.PatientBirthDate)))
	pf = addField(pf, "sex", v(tag.PatientSex))
	pf = addField(pf, "patient ID", v(tag.PatientID))
	s.Sections = append(s.Sections, one(KeyPatient, "Patient", Item{
		Title: first(personName(v(tag.PatientName)), "(no name)"), Fields: pf}))

	var sf []Field
	sf = addField(sf, "description", v(tag.StudyDescription))
	sf = addField(sf, "date", hl7Date(v(tag.StudyDate)))
	sf = addField(sf, "institution", v(tag.InstitutionName))
	sf = addField(sf, "referring physician", personName(v(tag.ReferringPhysicianName)))
	sf = addField(sf, "accession number", v(tag.AccessionNumber))
	sf = addField(sf, "study UID", v(tag.StudyInstanceUID))
	s.Sections = append(s.Sections, one("study", "Study", Item{
		Date: hl7Date(v(tag.StudyDate)), Title: first(v(tag.StudyDescription), "(no description)"), Fields: sf}))

	mod := v(tag.Modality)
	var rf []Field
	rf = addField(rf, "modality", mod)
	rf = addField(rf, "body part", v(tag.BodyPartExamined))
	rf = addField(rf, "description", v(tag.SeriesDescription))
	rf = addField(rf, "series number", v(tag.SeriesNumber))
	rf = addField(rf, "protocol", v(tag.ProtocolName))
	rf = addField(rf, "equipment", strings.TrimSpace(v(tag.Manufacturer)+" "+v(tag.ManufacturerModelName)))
	s.Sections = append(s.Sections, one("series", "Series", Item{
		Date: hl7Date(v(tag.SeriesDate)), Title: first(modalityName(mod), "(no modality)"), Fields: rf}))

	sop := v(tag.SOPClassUID)
	var inf []Field
	inf = addField(inf, "SOP class", sop)
	inf = addField(inf, "instance number", v(tag.InstanceNumber))
	if rows, cols := v(tag.Rows), v(tag.Columns); rows != "" && cols != "" {
		inf = addField(inf, "image", cols+" x "+rows+" pixels")
	}
	ts := h.TransferSyntax
	inf = addField(inf, "transfer syntax", first(vault.DICOMUIDName(ts), ts))
	s.Sections = append(s.Sections, one("instance", "Instance", Item{
		Date: hl7Date(v(tag.ContentDate)), Title: first(vault.DICOMUIDName(sop), sop, "(no SOP class)"), Fields: inf}))
	return s, nil
}

func one(key, title string, it Item) Section {
	it.Detail = detail(it.Fields)
	return Section{Key: key, Title: title, Count: 1, Items: []Item{it}}
}

// personName turns a DICOM PN (Family^Given^Middle^Prefix^Suffix) into
// "Given Middle Family".
func personName(pn string) string {
	if i := strings.IndexByte(pn, '='); i >= 0 {
		pn = pn[:i] // the alphabetic form only
	}
	parts := strings.Split(pn, "^")
	if len(parts) == 1 {
		return strings.TrimSpace(pn)
	}
	order := []string{}
	if len(parts) > 3 {
		order = append(order, parts[3])
	}
	if len(parts) > 1 {
		order = append(order, parts[1])
	}
	if len(parts) > 2 {
		order = append(order, parts[2])
	}
	order = append(order, parts[0])
	if len(parts) > 4 {
		order = append(order, parts[4])
	}
	return strings.Join(strings.Fields(strings.Join(order, " ")), " ")
}

var modalities = map[string]string{
	"CT": "CT (computed tomography)", "MR": "MR (magnetic resonance)", "US": "US (ultrasound)",
	"CR": "CR (computed radiography)", "DX": "DX (digital radiography)", "MG": "MG (mammography)",
	"NM": "NM (nuclear medicine)", "PT": "PT (positron emission tomography)", "XA": "XA (X-ray angiography)",
	"RF": "RF (radio fluoroscopy)", "SR": "SR (structured report)", "OT": "OT (other)",
	"ECG": "ECG (electrocardiography)", "IO": "IO (intra-oral radiography)", "PX": "PX (panoramic X-ray)",
	"SC": "SC (secondary capture)", "DOC": "DOC (document)", "SEG": "SEG (segmentation)",
	"RTSTRUCT": "RTSTRUCT (radiotherapy structure set)", "RTDOSE": "RTDOSE (radiotherapy dose)",
	"RTPLAN": "RTPLAN (radiotherapy plan)", "OP": "OP (ophthalmic photography)", "XC": "XC (external-camera photography)",
}

func modalityName(m string) string {
	if n, ok := modalities[m]; ok {
		return n
	}
	return m
}
