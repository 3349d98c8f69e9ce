package consent

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrBadScope reports a scope that is not a valid SMART App Launch scope.
var ErrBadScope = errors.New("invalid scope")

// ScopeError explains why a scope string was refused.
type ScopeError struct {
	Scope   string
	Problem string
}

func (e *ScopeError) Error() string { return fmt.Sprintf("%v %q: %s", ErrBadScope, e.Scope, e.Problem) }

func (e *ScopeError) Unwrap() error { return ErrBadScope }

// Perm is a set of SMART v2 permissions.
type Perm uint8

// SMART v2 permissions, in their canonical order c, r, u, d, s.
const (
	PermCreate Perm = 1 << iota
	PermRead
	PermUpdate
	PermDelete
	PermSearch
)

const permLetters = "cruds"

func (p Perm) String() string {
	var b strings.Builder
	for i := range permLetters {
		if p&(1<<i) != 0 {
			b.WriteByte(permLetters[i])
		}
	}
	return b.String()
}

// Param is one query parameter that narrows a scope, like category=laboratory.
type Param struct {
	Name, Value string
}

// Scope is a parsed SMART App Launch resource scope. String gives the
// canonical v2 form, which is what grants store.
type Scope struct {
	Context string // patient, user or system
	Type    string // an R4 resource type or "*"
	Perms   Perm
	Params  []Param // sorted by name, then value
}

// categoryTypes are the R4 resource types with a "category" search
// parameter, the ones a ?category= scope may narrow.
var categoryTypes = map[string]bool{
	"AdverseEvent": true, "AllergyIntolerance": true, "CarePlan": true, "CareTeam": true,
	"Communication": true, "CommunicationRequest": true, "Composition": true, "Condition": true,
	"Consent": true, "DiagnosticReport": true, "DocumentReference": true, "Flag": true, "Goal": true,
	"MedicationRequest": true, "MedicationStatement": true, "Observation": true, "Procedure": true,
	"ResearchStudy": true, "ServiceRequest": true,
}

// ParseScope parses a SMART App Launch resource scope:
//
//	v2: (patient|user|system)/(Type|*).(c?r?u?d?s?)[?name=value&...]
//	v1: (patient|user|system)/(Type|*).(read|write|*)
//
// v1 permissions are normalised to v2: read -> rs, write -> cud, * -> cruds.
// Type must be an R4 resource type; a category parameter is only allowed on
// types that have one.
func ParseScope(s string) (Scope, error) {
	bad := func(format string, args ...any) (Scope, error) {
		return Scope{}, &ScopeError{Scope: s, Problem: fmt.Sprintf(format, args...)}
	}
	if len(s) > 512 {
		return bad("longer than 512 characters")
	}
	switch s {
	case "openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access":
		return bad("not a resource scope; a grant needs e.g. patient/Observation.rs")
	}
	body, query, hasQuery := strings.Cut(s, "?")
	ctx, rest, ok := strings.Cut(body, "/")
	if !ok {
		return bad("want context/Type.permissions, e.g. patient/Observation.rs")
	}
	switch ctx {
	case "patient", "user", "system":
	default:
		return bad("context %q is not patient, user or system", ctx)
	}
	typ, perms, ok := strings.Cut(rest, ".")
	if !ok {
		return bad("missing .permissions after %q (e.g. .rs or .read)", typ)
	}
	if typ != "*" && !r4Types[typ] {
		if t, ok := r4TypesFold[strings.ToLower(typ)]; ok {
			return bad("unknown FHIR R4 resource type %q (did you mean %q?)", typ, t)
		}
		return bad("unknown FHIR R4 resource type %q", typ)
	}
	sc := Scope{Context: ctx, Type: typ}
	switch perms {
	case "read":
		sc.Perms = PermRead | PermSearch
	case "write":
		sc.Perms = PermCreate | PermUpdate | PermDelete
	case "*":
		sc.Perms = PermCreate | PermRead | PermUpdate | PermDelete | PermSearch
	default:
		i := 0
		for _, c := range []byte(perms) {
			j := strings.IndexByte(permLetters[i:], c)
			if j < 0 {
				if strings.IndexByte(permLetters, c) >= 0 {
					return bad("permissions %q are repeated or out of order (want a subset of %q in that order)", perms, permLetters)
				}
				return bad("permissions %q are not v2 (c, r, u, d, s) or v1 (read, write, *)", perms)
			}
			i += j
			sc.Perms |= 1 << i
			i++
		}
		if sc.Perms == 0 {
			return bad("no permissions")
		}
	}
	if hasQuery {
		if typ == "*" {
			return bad("query parameters need a resource type, not *")
		}
		if query == "" {
			return bad("empty query after ?")
		}
		for _, kv := range strings.Split(query, "&") {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || name == "" || value == "" {
				return bad("query parameter %q is not name=value", kv)
			}
			if !validParamName(name) {
				return bad("query parameter name %q is invalid", name)
			}
			if !validParamValue(value) {
				return bad("query parameter value %q is invalid", value)
			}
			if name == "category" && !categoryTypes[typ] {
				return bad("%s has no category", typ)
			}
			sc.Params = append(sc.Params, Param{name, value})
		}
		sort.Slice(sc.Params, func(i, j int) bool {
			a, b := sc.Params[i], sc.Params[j]
			return a.Name < b.Name || a.Name == b.Name && a.Value < b.Value
		})
		for i := 1; i < len(sc.Params); i++ {
			if sc.Params[i] == sc.Params[i-1] {
				return bad("query parameter %s=%s is repeated", sc.Params[i].Name, sc.Params[i].Value)
			}
		}
	}
	return sc, nil
}

func validParamName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return false
		}
	}
	return len(s) <= 64
}

func validParamValue(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == '&' || r == '?' || r == '#' || r == '=' {
			return false
		}
	}
	return len(s) <= 256
}

// String returns the canonical SMART v2 form.
func (s Scope) String() string {
	var b strings.Builder
	b.WriteString(s.Context)
	b.WriteByte('/')
	b.WriteString(s.Type)
	b.WriteByte('.')
	b.WriteString(s.Perms.String())
	for i, p := range s.Params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(p.Name)
		b.WriteByte('=')
		b.WriteString(p.Value)
	}
	return b.String()
}

// Covers reports whether a grant of scope s allows a request for scope req:
// the same context, the same type (or s is "*"), req's permissions a subset
// of s's, and every parameter of s present in req (a narrower request is
// covered; a request without the grant's category is not).
func (s Scope) Covers(req Scope) bool {
	if s.Context != req.Context || (s.Type != "*" && s.Type != req.Type) || req.Perms&^s.Perms != 0 {
		return false
	}
	for _, p := range s.Params {
		found := false
		for _, q := range req.Params {
			if p == q {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// NormalizeScopes parses scopes and returns their canonical forms, sorted
// and without duplicates, ready for a Grant.
func NormalizeScopes(scopes []string) ([]string, error) {
	out := make([]string, 0, len(scopes))
	seen := make(map[string]bool)
	for _, s := range scopes {
		sc, err := ParseScope(s)
		if err != nil {
			return nil, err
		}
		c := sc.String()
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out, nil
}

// R4ResourceTypes lists the resource types of FHIR R4 (4.0.1).
var R4ResourceTypes = []string{
	"Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
	"AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
	"BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry",
	"ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression",
	"CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition",
	"ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
	"CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric",
	"DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest",
	"DocumentReference", "EffectEvidenceSynthesis", "Encounter", "Endpoint", "EnrollmentRequest",
	"EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence", "EvidenceVariable",
	"ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
	"GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy",
	"Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation",
	"ImplementationGuide", "InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location",
	"Measure", "MeasureReport", "Media", "Medication", "MedicationAdministration",
	"MedicationDispense", "MedicationKnowledge", "MedicationRequest", "MedicationStatement",
	"MedicinalProduct", "MedicinalProductAuthorization", "MedicinalProductContraindication",
	"MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
	"MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
	"MedicinalProductUndesirableEffect", "MessageDefinition", "MessageHeader",
	"MolecularSequence", "NamingSystem", "NutritionOrder", "Observation", "ObservationDefinition",
	"OperationDefinition", "OperationOutcome", "Organization", "OrganizationAffiliation",
	"Parameters", "Patient", "PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition",
	"Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire",
	"QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
	"ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
	"RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
	"SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance",
	"SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
	"SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification",
	"SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport",
	"TestScript", "ValueSet", "VerificationResult", "VisionPrescription",
}

// IsR4ResourceType reports whether t is a resource type of FHIR R4,
// spelled exactly (case-sensitive, as in FHIR). It is the one test of
// R4ResourceTypes that every package uses.
func IsR4ResourceType(t string) bool { return r4Types[t] }

var r4Types, r4TypesFold = func() (map[string]bool, map[string]string) {
	m := make(map[string]bool, len(R4ResourceTypes))
	f := make(map[string]string, len(R4ResourceTypes))
	for _, t := range R4ResourceTypes {
		m[t] = true
		f[strings.ToLower(t)] = t
	}
	return m, f
}()
