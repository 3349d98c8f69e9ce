package consent

import (
	"encoding/json"
	"time"
)

// Code systems and identifier systems used in FHIR exports.
const (
	// IDSystem names medwallet IDs in FHIR identifiers.
	IDSystem = "urn:medwallet:id"
	// RecordSystem names medwallet record IDs in FHIR identifiers.
	RecordSystem = "urn:medwallet:record"
	// GrantSystem names grant IDs (entry hashes) in FHIR identifiers.
	GrantSystem = "urn:medwallet:grant"
)

// FHIR R4 JSON shapes, just the elements medwallet fills in.
type (
	fhirCoding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	fhirConcept struct {
		Coding []fhirCoding `json:"coding"`
		Text   string       `json:"text,omitempty"`
	}
	fhirIdentifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	fhirReference struct {
		Reference  string          `json:"reference,omitempty"`
		Type       string          `json:"type,omitempty"`
		Identifier *fhirIdentifier `json:"identifier,omitempty"`
		Display    string          `json:"display,omitempty"`
	}
	fhirPeriod struct {
		Start string `json:"start,omitempty"`
		End   string `json:"end,omitempty"`
	}
)

func fhirTime(sec int64) string { return TimeOf(sec).Format(time.RFC3339) }

func idRef(id ID, display string) *fhirReference {
	return &fhirReference{Identifier: &fhirIdentifier{System: IDSystem, Value: string(id)}, Display: display}
}

func purposeCoding(code string) fhirCoding {
	p, _ := LookupPurpose(code)
	return fhirCoding{System: PurposeSystem, Code: code, Display: p.Display}
}

type fhirConsent struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Identifier   []fhirIdentifier `json:"identifier"`
	Status       string           `json:"status"`
	Scope        fhirConcept      `json:"scope"`
	Category     []fhirConcept    `json:"category"`
	Patient      fhirReference    `json:"patient"`
	DateTime     string           `json:"dateTime"`
	PolicyRule   fhirConcept      `json:"policyRule"`
	Provision    fhirProvision    `json:"provision"`
}

type fhirProvision struct {
	Type    string         `json:"type"`
	Period  fhirPeriod     `json:"period"`
	Actor   []fhirActor    `json:"actor"`
	Action  []fhirConcept  `json:"action"`
	Purpose []fhirCoding   `json:"purpose"`
	Class   []fhirCoding   `json:"class,omitempty"`
	Data    []fhirDataItem `json:"data,omitempty"`
}

type fhirActor struct {
	Role      fhirConcept   `json:"role"`
	Reference fhirReference `json:"reference"`
}

type fhirDataItem struct {
	Meaning   string        `json:"meaning"`
	Reference fhirReference `json:"reference"`
}

// GrantFHIR renders a grant as a FHIR R4 Consent resource (JSON).
// The grantee is the provision's actor with role IRCP (information
// recipient); the SMART scopes become the provision's classes (resource
// types) and are listed in full in the action's text. Names are only
// included when the caller passes them (granteeName may be empty).
func GrantFHIR(g *GrantInfo, revoked bool, now time.Time, granteeName string) ([]byte, error) {
	status := "active"
	if revoked || (g.Expires != 0 && now.Unix() >= g.Expires) {
		status = "inactive"
	}
	period := fhirPeriod{Start: fhirTime(g.NotBefore)}
	if g.Expires != 0 {
		period.End = fhirTime(g.Expires)
	}
	c := fhirConsent{
		ResourceType: "Consent",
		ID:           g.ID.String(),
		Identifier:   []fhirIdentifier{{System: GrantSystem, Value: g.ID.String()}},
		Status:       status,
		Scope:        fhirConcept{Coding: []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/consentscope", Code: "patient-privacy", Display: "Privacy Consent"}}},
		Category:     []fhirConcept{{Coding: []fhirCoding{{System: "http://loinc.org", Code: "59284-0", Display: "Patient Consent"}}}},
		Patient:      fhirReference{Reference: "Patient/" + string(g.Author), Identifier: &fhirIdentifier{System: IDSystem, Value: string(g.Author)}},
		DateTime:     fhirTime(g.Time),
		PolicyRule:   fhirConcept{Coding: []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "OPTIN", Display: "opt-in"}}},
		Provision: fhirProvision{
			Type:   "permit",
			Period: period,
			Actor: []fhirActor{{
				Role:      fhirConcept{Coding: []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: "IRCP", Display: "information recipient"}}},
				Reference: *idRef(g.Grantee, granteeName),
			}},
			Action:  []fhirConcept{{Coding: []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/consentaction", Code: "access", Display: "Access"}}, Text: joinScopes(g.Scopes)}},
			Purpose: []fhirCoding{purposeCoding(g.Purpose)},
		},
	}
	types := map[string]bool{}
	for _, s := range g.Scopes {
		sc, err := ParseScope(s)
		if err != nil || sc.Type == "*" || types[sc.Type] {
			continue
		}
		types[sc.Type] = true
		c.Provision.Class = append(c.Provision.Class, fhirCoding{System: "http://hl7.org/fhir/resource-types", Code: sc.Type})
	}
	for _, r := range g.Records {
		c.Provision.Data = append(c.Provision.Data, fhirDataItem{
			Meaning:   "instance",
			Reference: fhirReference{Identifier: &fhirIdentifier{System: RecordSystem, Value: r}},
		})
	}
	return json.MarshalIndent(c, "", "  ")
}

func joinScopes(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

type fhirAuditEvent struct {
	ResourceType   string            `json:"resourceType"`
	ID             string            `json:"id"`
	Type           fhirCoding        `json:"type"`
	Subtype        []fhirCoding      `json:"subtype"`
	Action         string            `json:"action"`
	Recorded       string            `json:"recorded"`
	Outcome        string            `json:"outcome"`
	PurposeOfEvent []fhirConcept     `json:"purposeOfEvent"`
	Agent          []fhirAuditAgent  `json:"agent"`
	Source         fhirAuditSource   `json:"source"`
	Entity         []fhirAuditEntity `json:"entity"`
}

type fhirAuditAgent struct {
	Type         fhirConcept   `json:"type"`
	Who          fhirReference `json:"who"`
	Requestor    bool          `json:"requestor"`
	PurposeOfUse []fhirConcept `json:"purposeOfUse,omitempty"`
}

// PurposeBreakGlass is the HL7 v3 PurposeOfUse code of an emergency
// override ("break the glass"), a specialisation of ETREAT.
const PurposeBreakGlass = "BTG"

type fhirAuditSource struct {
	Observer fhirReference `json:"observer"`
	Type     []fhirCoding  `json:"type"`
}

type fhirAuditEntity struct {
	What        fhirReference `json:"what"`
	Type        fhirCoding    `json:"type"`
	Description string        `json:"description"`
}

type fhirBundle struct {
	ResourceType string            `json:"resourceType"`
	Type         string            `json:"type"`
	Timestamp    string            `json:"timestamp"`
	Total        int               `json:"total"`
	Entry        []fhirBundleEntry `json:"entry"`
}

type fhirBundleEntry struct {
	FullURL  string `json:"fullUrl"`
	Resource any    `json:"resource"`
}

// DisclosuresFHIR renders disclosures as a FHIR R4 Bundle (type
// collection) of AuditEvent resources: type rest, subtype read, action R,
// outcome 0 (success), purposeOfEvent from the request, the recipient as
// the requesting agent, the deciding peer as the source's observer, and the
// record as the entity, described with every scope of the grant
// (Disclosure.What). name resolves IDs to display names ("" for none).
//
// An emergency (break-glass) disclosure keeps the request's purpose
// (ETREAT) as purposeOfEvent and adds, on the requesting agent,
// purposeOfUse with the request's purpose and the v3-ActReason code BTG
// ("break the glass"). This follows the FHIR R4 AuditEvent model, where
// purposeOfEvent is the reason of the event and agent.purposeOfUse the
// purposes the agent asserted (as in the IHE Basic Audit Log Patterns,
// BALP 1.1, whose access-token patterns copy the asserted PurposeOfUse
// into agent.purposeOfUse), and the FHIR break-glass AuditEvent example
// (example-breakglass-start), which codes the emergency as v3-ActReason
// ETREAT. BTG is the PurposeOfUse code HL7 defines for the override itself.
func DisclosuresFHIR(ds []Disclosure, name func(ID) string, now time.Time) ([]byte, error) {
	b := fhirBundle{ResourceType: "Bundle", Type: "collection", Timestamp: now.UTC().Format(time.RFC3339), Total: len(ds), Entry: []fhirBundleEntry{}}
	for _, d := range ds {
		ev := fhirAuditEvent{
			ResourceType:   "AuditEvent",
			ID:             d.Entry.String(),
			Type:           fhirCoding{System: "http://terminology.hl7.org/CodeSystem/audit-event-type", Code: "rest", Display: "RESTful Operation"},
			Subtype:        []fhirCoding{{System: "http://hl7.org/fhir/restful-interaction", Code: "read", Display: "read"}},
			Action:         "R",
			Recorded:       fhirTime(d.Time),
			Outcome:        "0",
			PurposeOfEvent: []fhirConcept{{Coding: []fhirCoding{purposeCoding(d.Purpose)}}},
			Agent: []fhirAuditAgent{{
				Type:         fhirConcept{Coding: []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: "IRCP", Display: "information recipient"}}},
				Who:          *idRef(d.Recipient, name(d.Recipient)),
				Requestor:    true,
				PurposeOfUse: emergencyPurposes(d),
			}},
			Source: fhirAuditSource{
				Observer: *idRef(d.Decider, name(d.Decider)),
				Type:     []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/security-source-type", Code: "4", Display: "Application Server"}},
			},
			Entity: []fhirAuditEntity{{
				What:        fhirReference{Identifier: &fhirIdentifier{System: RecordSystem, Value: d.Record}},
				Type:        fhirCoding{System: "http://terminology.hl7.org/CodeSystem/audit-entity-type", Code: "2", Display: "System Object"},
				Description: d.What(),
			}},
		}
		b.Entry = append(b.Entry, fhirBundleEntry{FullURL: "urn:medwallet:entry:" + d.Entry.String(), Resource: ev})
	}
	return json.MarshalIndent(b, "", "  ")
}

// emergencyPurposes is the requesting agent's purposeOfUse for an
// emergency disclosure (see DisclosuresFHIR), nil otherwise.
func emergencyPurposes(d Disclosure) []fhirConcept {
	if !d.Emergency {
		return nil
	}
	out := []fhirConcept{{Coding: []fhirCoding{purposeCoding(d.Purpose)}}}
	if d.Purpose != PurposeBreakGlass {
		out = append(out, fhirConcept{Coding: []fhirCoding{purposeCoding(PurposeBreakGlass)}})
	}
	return out
}
