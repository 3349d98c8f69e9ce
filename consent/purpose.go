package consent

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// PurposeEmergency is the purpose of emergency (break-glass) grants and
// requests.
const PurposeEmergency = "ETREAT"

// PurposeSystem is the code system of purposes of use.
const PurposeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

// ErrUnknownPurpose reports a code outside the PurposeOfUse value set.
var ErrUnknownPurpose = errors.New("unknown purpose of use")

// Purpose is a code of the HL7 v3 PurposeOfUse value set (from the
// v3-ActReason code system). Parent is the broader purpose it specialises:
// a grant for a purpose also covers requests for its specialisations
// (a TREAT grant covers ETREAT and BTG; an ETREAT grant does not cover TREAT).
type Purpose struct {
	Code    string `json:"code"`
	Display string `json:"display"`
	Parent  string `json:"parent,omitempty"`
}

// Purposes lists the supported codes. The list is the PurposeOfUse value
// set's commonly used part; codes missing here are refused, not guessed.
var Purposes = []Purpose{
	{"TREAT", "treatment", ""},
	{"ETREAT", "Emergency Treatment", "TREAT"},
	{"BTG", "break the glass", "ETREAT"},
	{"ERTREAT", "emergency room treatment", "ETREAT"},
	{"CLINTRL", "clinical trial", "TREAT"},
	{"COC", "coordination of care", "TREAT"},
	{"POPHLTH", "population health", "TREAT"},
	{"HPAYMT", "healthcare payment", ""},
	{"CLMATTCH", "claim attachment", "HPAYMT"},
	{"COVAUTH", "coverage authorization", "HPAYMT"},
	{"COVERAGE", "coverage under policy or program", "HPAYMT"},
	{"ELIGDTRM", "eligibility determination", "HPAYMT"},
	{"ELIGVER", "eligibility verification", "HPAYMT"},
	{"ENROLLM", "enrollment", "HPAYMT"},
	{"REMITADV", "remittance advice", "HPAYMT"},
	{"HOPERAT", "healthcare operations", ""},
	{"CAREMGT", "care management", "HOPERAT"},
	{"HACCRED", "health accreditation", "HOPERAT"},
	{"HCOMPL", "health compliance", "HOPERAT"},
	{"HLEGAL", "legal", "HOPERAT"},
	{"HOUTCOMS", "health outcome measure", "HOPERAT"},
	{"HPRGRP", "health program reporting", "HOPERAT"},
	{"HQUALIMP", "health quality improvement", "HOPERAT"},
	{"HSYSADMIN", "health system administration", "HOPERAT"},
	{"PATADMIN", "patient administration", "HOPERAT"},
	{"PATSFTY", "patient safety", "HOPERAT"},
	{"PERFMSR", "performance measure", "HOPERAT"},
	{"RECORDMGT", "records management", "HOPERAT"},
	{"TRAIN", "training", "HOPERAT"},
	{"HMARKT", "healthcare marketing", ""},
	{"HDIRECT", "directory", ""},
	{"HRESCH", "healthcare research", ""},
	{"BIORCH", "biomedical research", "HRESCH"},
	{"CLINTRCH", "clinical trial research", "HRESCH"},
	{"PATRQT", "patient requested", ""},
	{"FAMRQT", "family requested", "PATRQT"},
	{"PWATRNY", "power of attorney", "PATRQT"},
	{"SUPNWK", "support network", "PATRQT"},
	{"PUBHLTH", "public health", ""},
	{"DISASTER", "disaster", "PUBHLTH"},
	{"THREAT", "threat", "PUBHLTH"},
}

var purposeIndex = func() map[string]Purpose {
	m := make(map[string]Purpose, len(Purposes))
	for _, p := range Purposes {
		m[p.Code] = p
	}
	return m
}()

// LookupPurpose returns the purpose with code (case-sensitive, as in the
// code system).
func LookupPurpose(code string) (Purpose, error) {
	if p, ok := purposeIndex[code]; ok {
		return p, nil
	}
	if p, ok := purposeIndex[strings.ToUpper(code)]; ok {
		return Purpose{}, fmt.Errorf("%w %q (codes are upper case: %q)", ErrUnknownPurpose, code, p.Code)
	}
	codes := make([]string, 0, len(Purposes))
	for _, p := range Purposes {
		if p.Parent == "" {
			codes = append(codes, p.Code)
		}
	}
	sort.Strings(codes)
	return Purpose{}, fmt.Errorf("%w %q (for example %s)", ErrUnknownPurpose, code, strings.Join(codes, ", "))
}

// PurposeCovers reports whether a grant for purpose granted covers a request
// for purpose requested: the same code or one of its specialisations.
func PurposeCovers(granted, requested string) bool {
	for c, i := requested, 0; c != "" && i < 8; i++ {
		if c == granted {
			return true
		}
		c = purposeIndex[c].Parent
	}
	return false
}
