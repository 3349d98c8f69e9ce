package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

// grantOptions are the flags of grant.
type grantOptions struct {
	to      string
	records []string
	all     bool
	scopes  []string
	purpose string
	expires string
	allow   []string
	role    string
	issuer  string
	whole   bool
}

func newGrantCommand(g *globalOptions) *cobra.Command {
	var opts grantOptions
	cmd := &cobra.Command{
		Use:   "grant (--to CONTACT|ID | --role ROLE --issuer CONTACT) (--record ID... | --all) --scope SCOPE... --purpose CODE [--expires 30d|DATE]",
		Short: "Grant a contact access to records, and print the grant ID",
		Long: `Sign a consent grant into your ledger feed: the grantee may read the
named records (or all of them) within the SMART scopes, for the purpose of
use, from now until the expiry. Each record key is wrapped with age to the
grantee, so only they can open what peers release under the grant.

Scopes are SMART App Launch scopes, v2 (patient/Observation.rs,
patient/*.rs, 'patient/Observation.rs?category=laboratory') or v1
(patient/Observation.read, normalised to .rs). Purposes are HL7 v3
PurposeOfUse codes: TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PATRQT,
PUBHLTH, HMARKT, HDIRECT and their specialisations.

--expires takes a duration (12h, 30d, 2w), a date (2026-12-31, valid
through that day, UTC) or an RFC 3339 time; without it the grant lasts
until revoked.

Minimum necessary: when the scopes cover only part of a FHIR record, the
wallet makes a derived record holding only the allowed resources (a valid
Bundle, under its own key, listed by 'record ls') and the grant names that
instead, so the grantee never receives bytes outside its scope. Resources
labelled with a sensitive category (substance-use / 42 CFR Part 2,
psychotherapy, hiv, genetic, reproductive, restricted) are kept out unless
--allow-sensitive names the category. The command says what it derived and
what it left out. An --all grant that needed any of this becomes a grant of
the explicit list.

C-CDA, PDF, DICOM and other documents cannot be filtered: they go whole or
not at all. A grant releases one only when a scope names its document type
(patient/DocumentReference.rs, or patient/ImagingStudy.rs for DICOM) or
every type (patient/*.rs), or with --whole-record; otherwise a document
named with --record refuses the grant with an explanation, and one reached
through --all is left out. The command (and --json, "released_whole") says
what it releases whole.

A role grant (--role and --issuer instead of --to) reaches anyone holding a
valid credential for the role from that issuer ("any physician credentialed
by Mercy Hospital"); the keys are wrapped to the issuer's role key, which
each credential hands to its holder, and peers check the credential (its
issuer, validity and revocation) before releasing anything. For emergency
access, see 'medwallet emergency enable'.`,
		Example: `  medwallet grant --to "Dr Bob" --record 3fa1 --scope patient/Observation.rs --purpose TREAT --expires 30d
  medwallet grant --to Insurer --all --scope 'patient/Claim.rs' --purpose HPAYMT --expires 2026-12-31
  medwallet grant --to Insurer --record 7b02 --scope patient/DocumentReference.rs --purpose HPAYMT
  medwallet grant --role physician --issuer Mercy --all --scope 'patient/*.rs' --purpose TREAT
  medwallet grant show 9c2e41d0
  medwallet grant show 9c2e41d0 --format fhir`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGrant(cmd.Context(), opts, g) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.to, "to", "", "grantee: a contact name or an ID")
	f.StringArrayVar(&opts.records, "record", nil, "record ID or unique prefix (repeatable)")
	f.BoolVar(&opts.all, "all", false, "grant every record (the keys of the records present now are wrapped)")
	f.StringArrayVar(&opts.scopes, "scope", nil, "SMART scope such as patient/Observation.rs (repeatable)")
	f.StringVar(&opts.purpose, "purpose", "", "HL7 v3 PurposeOfUse code such as TREAT or HPAYMT")
	f.StringVar(&opts.expires, "expires", "", "expiry: 12h, 30d, 2w, 2026-12-31 or an RFC 3339 time (default: none)")
	f.StringArrayVar(&opts.allow, "allow-sensitive", nil, "sensitive category the grant may carry: substance-use, psychotherapy, hiv, genetic, reproductive, restricted (repeatable)")
	f.StringVar(&opts.role, "role", "", "instead of --to: a credential role such as physician")
	f.StringVar(&opts.issuer, "issuer", "", "with --role: the credential issuer (contact name or ID)")
	f.BoolVar(&opts.whole, "whole-record", false, "release C-CDA, PDF, DICOM and other documents whole even when no scope names their type")
	cmd.MarkFlagsMutuallyExclusive("to", "role")
	cmd.MarkFlagsRequiredTogether("role", "issuer")
	cmd.MarkFlagRequired("scope")
	cmd.MarkFlagRequired("purpose")
	cmd.MarkFlagsMutuallyExclusive("record", "all")
	cmd.AddCommand(newGrantShowCommand(g))
	return cmd
}

// grantJSON is the --json shape of a grant (grant, grant show, grants, revoke).
type grantJSON struct {
	ID             string     `json:"id"`
	Direction      string     `json:"direction"`             // given or received
	Status         string     `json:"status"`                // active, revoked, expired, not-yet-valid, void
	VoidReason     string     `json:"void_reason,omitempty"` // void: device-revoked or equivocating-author
	Author         string     `json:"author"`
	AuthorName     string     `json:"author_name"`
	Grantee        string     `json:"grantee"`
	GranteeName    string     `json:"grantee_name"`
	AllRecords     bool       `json:"all_records"`
	Records        []string   `json:"records"`
	Scopes         []string   `json:"scopes"`
	Purpose        string     `json:"purpose"`
	PurposeDisplay string     `json:"purpose_display"`
	Created        time.Time  `json:"created"`
	NotBefore      time.Time  `json:"not_before"`
	Expires        *time.Time `json:"expires"`
	WrappedKeys    int        `json:"wrapped_keys"`
	// Role grants: the role, its credential issuer, and for an emergency
	// grant its time box in seconds.
	Role       string `json:"role,omitempty"`
	Issuer     string `json:"issuer,omitempty"`
	IssuerName string `json:"issuer_name,omitempty"`
	TimeBox    int64  `json:"time_box,omitempty"`
	// Derived and Excluded appear when the grant was just made.
	Derived  []derivedJSON  `json:"derived,omitempty"`
	Excluded []excludedJSON `json:"excluded,omitempty"`
	// ReleasedWhole lists, when the grant was just made, the documents it
	// releases whole although the wallet cannot filter them.
	ReleasedWhole []wholeJSON `json:"released_whole,omitempty"`
}

// wholeJSON reports a record a new grant releases whole.
type wholeJSON struct {
	Record       string `json:"record"`
	Format       string `json:"format"`
	DocumentType string `json:"document_type,omitempty"`
	Why          string `json:"why"` // scope, whole-record or unfilterable
}

// derivedJSON reports a minimum-necessary copy made for a grant.
type derivedJSON struct {
	Source   string          `json:"source"`
	Derived  string          `json:"derived"`
	Kept     map[string]int  `json:"kept"`
	Dropped  map[string]int  `json:"dropped"`
	Excluded []exclusionJSON `json:"excluded_resources,omitempty"`
}

type exclusionJSON struct {
	Type       string   `json:"type"`
	Categories []string `json:"categories"`
}

// excludedJSON reports a record left out of a grant.
type excludedJSON struct {
	Record     string   `json:"record"`
	Categories []string `json:"categories,omitempty"`
	Reason     string   `json:"reason"`
}

func newGrantJSON(gi wallet.GrantInfo) grantJSON {
	j := grantJSON{
		ID: gi.ID.String(), Direction: "received", Status: gi.Status, VoidReason: gi.VoidReason, Author: string(gi.Author), AuthorName: gi.AuthorName,
		Grantee: string(gi.Grantee), GranteeName: gi.GranteeName, AllRecords: gi.All, Records: gi.Records,
		Scopes: gi.Scopes, Purpose: gi.Purpose.Code, PurposeDisplay: gi.Purpose.Display,
		Created: gi.Created, NotBefore: gi.NotBefore, WrappedKeys: gi.WrappedKeys,
		Role: gi.Role, Issuer: string(gi.Issuer), IssuerName: gi.IssuerName, TimeBox: int64(gi.TimeBox / time.Second),
	}
	if gi.Given {
		j.Direction = "given"
	}
	if j.Records == nil {
		j.Records = []string{}
	}
	if !gi.Expires.IsZero() {
		e := gi.Expires
		j.Expires = &e
	}
	return j
}

func runGrant(ctx context.Context, opts grantOptions, g *globalOptions) error {
	if !opts.all && len(opts.records) == 0 {
		return usageError{errors.New("name the records with --record ID (repeatable), or grant them all with --all")}
	}
	if opts.to == "" && opts.role == "" {
		return usageError{errors.New("name the grantee with --to CONTACT, or a role with --role ROLE --issuer CONTACT")}
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gi, err := w.Grant(ctx, wallet.GrantOptions{To: opts.to, Records: opts.records, All: opts.all,
		Scopes: opts.scopes, Purpose: opts.purpose, Expires: opts.expires, AllowSensitive: opts.allow,
		Role: opts.role, Issuer: opts.issuer, WholeRecord: opts.whole})
	if err != nil {
		return err
	}
	return reportGrant(g, gi)
}

// reportGrant says what a new grant holds and prints it.
func reportGrant(g *globalOptions, gi wallet.GrantInfo) error {
	for _, d := range gi.Derived {
		g.note("medwallet: minimum necessary: record %s is granted as derived record %s with %s (left out: %s)",
			d.Source[:12], d.Derived[:12], countsText(d.Kept), countsText(d.Dropped))
		for _, e := range d.Excluded {
			g.note("medwallet: excluded a %s resource for its sensitive categories: %s", e.Type, strings.Join(e.Categories, ", "))
		}
	}
	for _, r := range gi.Whole {
		g.note("medwallet: record %s (%s) is released whole: %s", r.Record[:12], r.Format, wholeWhy(r))
	}
	for _, e := range gi.Excluded {
		g.note("medwallet: record %s is left out of the grant: %s%s", e.Record[:12], e.Reason, catsText(e.Categories))
	}
	g.note("medwallet: granted %s %s for %s (%s), %s", granteeText(gi), recordsText(gi),
		gi.Purpose.Code, gi.Purpose.Display, untilText(gi))
	j := newGrantJSON(gi)
	for _, d := range gi.Derived {
		dj := derivedJSON{Source: d.Source, Derived: d.Derived, Kept: d.Kept, Dropped: d.Dropped}
		for _, e := range d.Excluded {
			dj.Excluded = append(dj.Excluded, exclusionJSON{Type: e.Type, Categories: e.Categories})
		}
		j.Derived = append(j.Derived, dj)
	}
	for _, r := range gi.Whole {
		j.ReleasedWhole = append(j.ReleasedWhole, wholeJSON{Record: r.Record, Format: r.Format, DocumentType: r.DocumentType, Why: r.Why})
	}
	for _, e := range gi.Excluded {
		j.Excluded = append(j.Excluded, excludedJSON{Record: e.Record, Categories: e.Categories, Reason: e.Reason})
	}
	return g.emit(j, func(out io.Writer) { fmt.Fprintln(out, gi.ID) })
}

// wholeWhy says why a record is released whole.
func wholeWhy(r wallet.WholeRecord) string {
	switch r.Why {
	case wallet.WholeByScope:
		return "a scope names " + r.DocumentType + " or every type"
	case wallet.WholeByFlag:
		return "--whole-record"
	}
	return "it is not a FHIR document the wallet can filter"
}

// granteeText names whom a grant reaches.
func granteeText(gi wallet.GrantInfo) string {
	if gi.Role == "" {
		return who(gi.GranteeName, gi.Grantee.Short())
	}
	return "any " + gi.Role + " credentialed by " + who(gi.IssuerName, gi.Issuer.Short())
}

// countsText renders resource counts by type, sorted: "Claim:18, ExplanationOfBenefit:12".
func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "nothing"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func catsText(cs []string) string {
	if len(cs) == 0 {
		return ""
	}
	return " (" + strings.Join(cs, ", ") + ")"
}

func who(name, fallback string) string {
	if name != "" {
		return name
	}
	return fallback
}

func recordsText(gi wallet.GrantInfo) string {
	if gi.All {
		return "all records, scopes " + strings.Join(gi.Scopes, " ")
	}
	return fmt.Sprintf("%d record(s), scopes %s", len(gi.Records), strings.Join(gi.Scopes, " "))
}

func untilText(gi wallet.GrantInfo) string {
	if gi.Expires.IsZero() {
		return "until revoked"
	}
	return "until " + gi.Expires.Format(time.RFC3339)
}

// grantShowOptions are the flags of grant show.
type grantShowOptions struct {
	format string
	// offline: report the local ledger without pulling the network's.
	offline bool
}

func newGrantShowCommand(g *globalOptions) *cobra.Command {
	var opts grantShowOptions
	cmd := &cobra.Command{
		Use:   "show GRANT_ID",
		Short: "Show one grant, as text, JSON or a FHIR R4 Consent resource",
		Long: `Show a grant named by its ID or a unique prefix of at least 8 hex digits.
--format fhir prints a FHIR R4 Consent resource (status active or inactive,
scope patient-privacy, category LOINC 59284-0, provision with the period,
the grantee as actor, the purpose, the resource types and the records).`,
		Example: "  medwallet grant show 9c2e41d0\n  medwallet grant show 9c2e41d0 --format fhir > consent.json",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runGrantShow(cmd.Context(), opts, g, args) },
	}
	cmd.Flags().StringVar(&opts.format, "format", "text", "output format: text, json or fhir")
	addOfflineFlag(cmd, &opts.offline)
	return cmd
}

// runGrantShow shows the grant args[0].
func runGrantShow(ctx context.Context, opts grantShowOptions, g *globalOptions, args []string) error {
	ref := args[0]
	switch opts.format {
	case "text", "json", "fhir":
	default:
		return usageError{fmt.Errorf("unknown --format %q: want text, json or fhir", opts.format)}
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	defer w.HoldLedger()() // the pull and the report share one open ledger
	if err := refreshLedger(ctx, g, w, opts.offline); err != nil {
		return err
	}
	if opts.format == "fhir" {
		b, err := w.GrantFHIR(ctx, ref)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(g.stdout, "%s\n", b)
		return err
	}
	gi, err := w.GrantShow(ctx, ref)
	if err != nil {
		return err
	}
	j := newGrantJSON(gi)
	if opts.format == "json" {
		return writeJSON(g.stdout, j)
	}
	return g.emit(j, func(out io.Writer) {
		records := strings.Join(j.Records, " ")
		if j.AllRecords {
			records = "all"
		}
		expires := "never"
		if j.Expires != nil {
			expires = j.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(out, "grant:      %s\n", j.ID)
		fmt.Fprintf(out, "status:     %s\n", statusText(j))
		fmt.Fprintf(out, "from:       %s (%s)\n", who(j.AuthorName, "-"), j.Author)
		fmt.Fprintf(out, "to:         %s (%s)\n", who(j.GranteeName, "-"), j.Grantee)
		fmt.Fprintf(out, "records:    %s\n", records)
		fmt.Fprintf(out, "scopes:     %s\n", strings.Join(j.Scopes, " "))
		fmt.Fprintf(out, "purpose:    %s (%s)\n", j.Purpose, j.PurposeDisplay)
		fmt.Fprintf(out, "signed:     %s\n", j.Created.Format(time.RFC3339))
		fmt.Fprintf(out, "valid from: %s\n", j.NotBefore.Format(time.RFC3339))
		fmt.Fprintf(out, "expires:    %s\n", expires)
		fmt.Fprintf(out, "keys:       %d wrapped for the grantee\n", j.WrappedKeys)
	})
}
