package fhirscope

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Code is one coding that marks a resource as sensitive when it appears in
// meta.security.
type Code struct {
	System, Code string
}

// Code systems of the security labels fhirscope recognises.
const (
	ActCode         = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	Confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
)

// Sensitive category names, as used in Selection.Allow and in reports.
const (
	SubstanceUse  = "substance-use"
	Psychotherapy = "psychotherapy"
	HIV           = "hiv"
	Genetic       = "genetic"
	Reproductive  = "reproductive"
	Restricted    = "restricted"
)

// Categories maps each sensitive category to the meta.security codes that
// put a resource in it. All codes but the last category's are HL7 v3
// ActCode (information sensitivity and privacy law codes); "restricted" is
// v3 Confidentiality R and V, which say the author restricted the data
// without saying why. Do not modify it.
var Categories = map[string][]Code{
	SubstanceUse: {
		{ActCode, "ETH"},                // substance abuse information sensitivity
		{ActCode, "ETHUD"},              // alcohol use disorder information sensitivity
		{ActCode, "OPIOIDUD"},           // opioid use disorder information sensitivity
		{ActCode, "SUD"},                // substance use disorder information sensitivity
		{ActCode, "42CFRPart2"},         // 42 CFR Part 2
		{ActCode, "Title38Section7332"}, // VA: drug and alcohol abuse, HIV, sickle cell
	},
	Psychotherapy: {
		{ActCode, "PSY"},           // psychiatry disorder information sensitivity
		{ActCode, "PSYTHPN"},       // psychotherapy note information sensitivity
		{ActCode, "MH"},            // mental health information sensitivity
		{ActCode, "BH"},            // behavioral health information sensitivity
		{ActCode, "HIPAAPsyNotes"}, // HIPAA psychotherapy notes
	},
	HIV: {
		{ActCode, "HIV"},                // HIV/AIDS information sensitivity
		{ActCode, "Title38Section7332"}, // VA: drug and alcohol abuse, HIV, sickle cell
	},
	Genetic: {
		{ActCode, "GDIS"}, // genetic disease information sensitivity
	},
	Reproductive: {
		{ActCode, "SEX"}, // sexuality and reproductive health information sensitivity
		{ActCode, "STD"}, // sexually transmitted disease information sensitivity
		{ActCode, "SDV"}, // sexual assault, abuse, or domestic violence information sensitivity
	},
	Restricted: {
		{Confidentiality, "R"}, // restricted
		{Confidentiality, "V"}, // very restricted
	},
}

// systemAliases are other spellings of the two code systems (the pre-R4
// URLs and the OIDs).
var systemAliases = map[string]string{
	ActCode:                                  ActCode,
	"http://hl7.org/fhir/v3/ActCode":         ActCode,
	"urn:oid:2.16.840.1.113883.5.4":          ActCode,
	Confidentiality:                          Confidentiality,
	"http://hl7.org/fhir/v3/Confidentiality": Confidentiality,
	"urn:oid:2.16.840.1.113883.5.25":         Confidentiality,
}

// codeIndex maps a canonical Code to its categories; codeOnly maps a bare
// code (a coding without a system) to its categories.
var codeIndex, codeOnly = func() (map[Code][]string, map[string][]string) {
	ix := make(map[Code][]string)
	bare := make(map[string][]string)
	names := make([]string, 0, len(Categories))
	for n := range Categories {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, c := range Categories[n] {
			ix[c] = append(ix[c], n)
			bare[c.Code] = append(bare[c.Code], n)
		}
	}
	return ix, bare
}()

var categoryAliases = map[string]string{
	"substance-use": SubstanceUse, "substance": SubstanceUse, "sud": SubstanceUse,
	"42cfrpart2": SubstanceUse, "part2": SubstanceUse, "eth": SubstanceUse,
	"psychotherapy": Psychotherapy, "psy": Psychotherapy, "psythpn": Psychotherapy,
	"mental-health": Psychotherapy, "behavioral-health": Psychotherapy,
	"hiv":     HIV,
	"genetic": Genetic, "gdis": Genetic,
	"reproductive": Reproductive, "sexual": Reproductive, "sex": Reproductive,
	"sexual-health": Reproductive, "reproductive-health": Reproductive,
	"restricted": Restricted,
}

// ErrUnknownCategory reports a sensitive category name ParseCategory does
// not know.
var ErrUnknownCategory = errors.New("unknown sensitive category")

// ParseCategory returns the canonical name of a sensitive category, given
// its name or an alias (case-insensitive): substance-use (sud, 42cfrpart2,
// part2, eth, substance), psychotherapy (psy, psythpn, mental-health,
// behavioral-health), hiv, genetic (gdis), reproductive (sexual, sex,
// sexual-health, reproductive-health), restricted.
func ParseCategory(name string) (string, error) {
	if c, ok := categoryAliases[strings.ToLower(strings.TrimSpace(name))]; ok {
		return c, nil
	}
	if len(name) > 64 {
		name = name[:64] + "..."
	}
	return "", fmt.Errorf("%w %q (want one of substance-use, psychotherapy, hiv, genetic, reproductive, restricted)", ErrUnknownCategory, name)
}

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// securityCategories adds to set the categories of a meta.security list.
func securityCategories(sec []coding, set map[string]bool) {
	for _, c := range sec {
		var cats []string
		if c.System == "" {
			cats = codeOnly[c.Code]
		} else if sys, ok := systemAliases[c.System]; ok {
			cats = codeIndex[Code{sys, c.Code}]
		}
		for _, n := range cats {
			set[n] = true
		}
	}
}

// maxDepth bounds the nesting of Bundles and contained resources that
// labels follows.
const maxDepth = 8

var errTooDeep = errors.New("resources nested too deeply")

// resourceView is what fhirscope reads of a resource.
type resourceView struct {
	ResourceType string          `json:"resourceType"`
	ID           json.RawMessage `json:"id"`
	Meta         *struct {
		Security []coding `json:"security"`
	} `json:"meta"`
	Category  json.RawMessage   `json:"category"`
	Contained []json.RawMessage `json:"contained"`
	Entry     json.RawMessage   `json:"entry"`
}

// labels adds to set the categories of a resource: its own meta.security,
// its contained resources', and for a Bundle its entries' resources'.
func labels(raw json.RawMessage, set map[string]bool, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	var v resourceView
	if err := json.Unmarshal(raw, &v); err != nil {
		return errMalformed
	}
	return viewLabels(&v, set, depth)
}

// viewLabels is labels on a decoded resource.
func viewLabels(v *resourceView, set map[string]bool, depth int) error {
	if v.Meta != nil {
		securityCategories(v.Meta.Security, set)
	}
	for _, c := range v.Contained {
		if err := labels(c, set, depth+1); err != nil {
			return err
		}
	}
	if v.ResourceType == "Bundle" && len(v.Entry) > 0 && string(v.Entry) != "null" {
		var es []struct {
			Resource json.RawMessage `json:"resource"`
		}
		if err := json.Unmarshal(v.Entry, &es); err != nil {
			return errMalformed
		}
		for _, e := range es {
			if len(e.Resource) == 0 || string(e.Resource) == "null" {
				continue
			}
			if err := labels(e.Resource, set, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

var (
	errMalformed = errors.New("malformed resource")
	errDupKey    = errors.New("a JSON object has two members whose names differ only in case, or are equal")
)

func sortedKeys(set map[string]bool) []string {
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Sensitive returns the sorted sensitive categories of one resource: those
// of its meta.security codings, of its contained resources', and, when it
// is a Bundle, of its Bundle-level labels and every entry's resource. A
// coding counts when its system is v3-ActCode or v3-Confidentiality (R4
// URL, pre-R4 URL or OID) or absent, and its code is in Categories. It
// returns nil for a resource without such labels; it assumes valid JSON
// (Filter and RecordSensitive check it) and returns the categories found
// before any malformed part.
func Sensitive(resource json.RawMessage) []string {
	set := make(map[string]bool)
	_ = labels(resource, set, 0)
	return sortedKeys(set)
}

// RecordSensitive reads a whole FHIR R4 JSON record (a resource or a
// Bundle, at most MaxInput bytes) and returns the sorted sensitive
// categories of the record: the Bundle's own labels and every resource's,
// as Sensitive. It returns an error wrapping ErrNotFHIR for anything that
// is not FHIR JSON (a PDF, a C-CDA document, garbage), so the caller can
// apply its own rule to such records.
func RecordSensitive(r io.Reader) ([]string, error) {
	data, err := readLimited(r)
	if err != nil {
		return nil, err
	}
	top, err := topLevel(data)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool)
	if err := viewLabels(top, set, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFHIR, err)
	}
	return sortedKeys(set), nil
}
