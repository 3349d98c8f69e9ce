package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func init() {
	register(newEmergencyCommand)
	register(newReviewCommand)
}

func newEmergencyCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emergency",
		Short: "Set your emergency (break-glass) policy and see emergency accesses",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newEmergencyEnableCommand(g), newEmergencyLsCommand(g))
	return cmd
}

func newEmergencyEnableCommand(g *globalOptions) *cobra.Command {
	var o wallet.EmergencyOptions
	cmd := &cobra.Command{
		Use:   "enable --issuer CONTACT [--role emergency-physician] [--record ID...|--category TYPE...] [--max 4h]",
		Short: "Let credentialed emergency clinicians in, logged and time-boxed",
		Long: `Record your emergency policy on the ledger: clinicians holding a valid
credential for the role (emergency-physician by default) from the issuer
you trust may, in an emergency, import the records the policy covers (all
of them, the --record ones, or only the FHIR resource types named with
--category, cut down to those resources), for emergency treatment (ETREAT).

They must state a reason, which goes on the ledger encrypted to you; every
peer logs its decision there before releasing anything; you see it at once
in 'medwallet log --watch'; each clinician's access ends --max after their
first declaration. Review each access afterwards with 'medwallet review'.
Sensitive categories stay out unless --allow-sensitive names them. Disable
the policy with 'medwallet revoke GRANT_ID'.`,
		Example: `  medwallet emergency enable --issuer Mercy --max 4h
  medwallet emergency enable --issuer Mercy --category AllergyIntolerance,MedicationRequest,Condition
  medwallet emergency enable --issuer Mercy --record 3fa1 --record 77c0 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := g.openWallet()
			if err != nil {
				return err
			}
			gi, err := w.EnableEmergency(cmd.Context(), o)
			if err != nil {
				return err
			}
			return reportGrant(g, gi)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Issuer, "issuer", "", "the credential issuer you trust (contact name or ID)")
	f.StringVar(&o.Role, "role", wallet.DefaultEmergencyRole, "the credential role you trust")
	f.StringArrayVar(&o.Records, "record", nil, "record ID or unique prefix (repeatable; default: all records)")
	f.StringArrayVar(&o.Categories, "category", nil, "FHIR resource types the policy covers (repeatable or comma-separated; default: all)")
	f.DurationVar(&o.Max, "max", wallet.DefaultTimeBox, "time box of each clinician's emergency access")
	f.StringVar(&o.Expires, "expires", "", "end of the policy: 30d, 2027-12-31... (default: until revoked)")
	f.StringArrayVar(&o.AllowSensitive, "allow-sensitive", nil, "sensitive category the policy may carry (repeatable)")
	cmd.MarkFlagRequired("issuer")
	cmd.MarkFlagsMutuallyExclusive("record", "category")
	return cmd
}

// emergencyJSON is the --json shape of an emergency access.
type emergencyJSON struct {
	ID            string     `json:"id"` // the break-glass entry
	Time          time.Time  `json:"time"`
	Requester     string     `json:"requester"`
	RequesterName string     `json:"requester_name,omitempty"`
	Grant         string     `json:"grant"`
	Reason        string     `json:"reason"`
	Until         *time.Time `json:"until"`
	Accesses      int        `json:"accesses"`
	Denied        int        `json:"denied"`
	Review        string     `json:"review"` // "", ok or dispute
	Note          string     `json:"note,omitempty"`
}

func newEmergencyJSON(ea wallet.EmergencyAccess) emergencyJSON {
	j := emergencyJSON{ID: ea.BreakGlass.String(), Time: time.Unix(ea.Time, 0).UTC(), Requester: string(ea.Requester),
		RequesterName: ea.RequesterName, Grant: ea.Grant.String(), Reason: ea.Reason,
		Accesses: ea.Accesses, Denied: ea.Denied, Review: ea.Review, Note: ea.Note}
	if ea.Until != 0 {
		u := time.Unix(ea.Until, 0).UTC()
		j.Until = &u
	}
	return j
}

func emergenciesJSON(eas []wallet.EmergencyAccess) []emergencyJSON {
	out := make([]emergencyJSON, 0, len(eas))
	for _, ea := range eas {
		out = append(out, newEmergencyJSON(ea))
	}
	return out
}

func printEmergencies(out io.Writer, js []emergencyJSON) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tCLINICIAN\tACCESSES\tREVIEW\tREASON")
	for _, j := range js {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d allowed, %d denied\t%s\t%s\n", j.ID[:12], j.Time.Format(time.RFC3339),
			who(j.RequesterName, j.Requester), j.Accesses, j.Denied, dash(j.Review), j.Reason)
	}
	tw.Flush()
}

func newEmergencyLsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List emergency accesses to your records, with their reasons and reviews",
		Example: "  medwallet emergency ls\n  medwallet emergency ls --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := g.openWallet()
			if err != nil {
				return err
			}
			if w.HasNetwork() {
				if _, err := w.PullLedger(cmd.Context()); err != nil {
					return err
				}
			}
			eas, err := w.EmergencyAccesses(cmd.Context())
			if err != nil {
				return err
			}
			js := emergenciesJSON(eas)
			return g.emit(js, func(out io.Writer) {
				if len(js) == 0 {
					g.note("medwallet: no emergency access to your records")
					return
				}
				printEmergencies(out, js)
			})
		},
	}
}

func newReviewCommand(g *globalOptions) *cobra.Command {
	var ok, dispute bool
	var note string
	cmd := &cobra.Command{
		Use:   "review ACCESS_ID --ok|--dispute [--note TEXT]",
		Short: "Review an emergency access to your records",
		Long: `Record on the ledger your review of an emergency (break-glass) access:
--ok if it was justified, --dispute if not. ACCESS_ID is the emergency
access ID (or a unique prefix of at least 8 hex digits) that 'medwallet
audit verify', 'medwallet emergency ls' and 'medwallet log' show. The note
is encrypted to you.`,
		Example: "  medwallet review 5be0c1d2 --ok\n  medwallet review 5be0c1d2 --dispute --note \"I was not in hospital that day\"",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ok == dispute {
				return usageError{fmt.Errorf("give exactly one of --ok and --dispute")}
			}
			outcome := "ok"
			if dispute {
				outcome = "dispute"
			}
			w, err := g.openWallet()
			if err != nil {
				return err
			}
			ea, err := w.Review(cmd.Context(), args[0], outcome, note)
			if err != nil {
				return err
			}
			j := newEmergencyJSON(ea)
			return g.emit(j, func(out io.Writer) { fmt.Fprintf(out, "reviewed %s: %s\n", j.ID, j.Review) })
		},
	}
	cmd.Flags().BoolVar(&ok, "ok", false, "the access was justified")
	cmd.Flags().BoolVar(&dispute, "dispute", false, "the access was not justified")
	cmd.Flags().StringVar(&note, "note", "", "a note (encrypted to you)")
	return cmd
}
