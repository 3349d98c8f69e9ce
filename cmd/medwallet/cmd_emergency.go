package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/wallet"
)

func newEmergencyCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emergency",
		Short: "Set your emergency (break-glass) policy and see emergency accesses",
		Example: `  medwallet emergency enable --issuer Mercy --max 4h
  medwallet emergency ls
  medwallet review 5be0c1d2 --ok`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newEmergencyEnableCommand(g), newEmergencyLsCommand(g))
	return cmd
}

// emergencyEnableOptions are the flags of emergency enable.
type emergencyEnableOptions struct {
	wallet.EmergencyOptions
}

func newEmergencyEnableCommand(g *globalOptions) *cobra.Command {
	var opts emergencyEnableOptions
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
		RunE: func(cmd *cobra.Command, _ []string) error { return runEmergencyEnable(cmd.Context(), opts, g) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Issuer, "issuer", "", "the credential issuer you trust (contact name or ID)")
	f.StringVar(&opts.Role, "role", wallet.DefaultEmergencyRole, "the credential role you trust")
	f.StringArrayVar(&opts.Records, "record", nil, "record ID or unique prefix (repeatable; default: all records)")
	f.StringArrayVar(&opts.Categories, "category", nil, "FHIR resource types the policy covers (repeatable or comma-separated; default: all)")
	f.DurationVar(&opts.Max, "max", wallet.DefaultTimeBox, "time box of each clinician's emergency access")
	f.StringVar(&opts.Expires, "expires", "", "end of the policy: 30d, 2027-12-31... (default: until revoked)")
	f.StringArrayVar(&opts.AllowSensitive, "allow-sensitive", nil, "sensitive category the policy may carry (repeatable)")
	cmd.MarkFlagRequired("issuer")
	cmd.MarkFlagsMutuallyExclusive("record", "category")
	return cmd
}

func runEmergencyEnable(ctx context.Context, opts emergencyEnableOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	gi, err := w.EnableEmergency(ctx, opts.EmergencyOptions)
	if err != nil {
		return err
	}
	return reportGrant(g, gi)
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
	j := emergencyJSON{ID: ea.BreakGlass.String(), Time: consent.PrintableTime(ea.Time), Requester: string(ea.Requester),
		RequesterName: ea.RequesterName, Grant: ea.Grant.String(), Reason: ea.Reason,
		Accesses: ea.Accesses, Denied: ea.Denied, Review: ea.Review, Note: ea.Note}
	if ea.Until != 0 {
		u := consent.PrintableTime(ea.Until)
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

// emergencyLsOptions are the flags of emergency ls.
type emergencyLsOptions struct {
	// offline: report the local ledger without pulling the network's.
	offline bool
}

func newEmergencyLsCommand(g *globalOptions) *cobra.Command {
	var opts emergencyLsOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Short:   "List emergency accesses to your records, with their reasons and reviews",
		Long:    "Pull the network's ledger (unless --offline), then list the emergency accesses to\nyour records, with their reasons and reviews.",
		Example: "  medwallet emergency ls\n  medwallet emergency ls --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runEmergencyLs(cmd.Context(), opts, g) },
	}
	addOfflineFlag(cmd, &opts.offline)
	return cmd
}

func runEmergencyLs(ctx context.Context, opts emergencyLsOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	defer w.HoldLedger()() // the pull and the report share one open ledger
	if err := refreshLedger(ctx, g, w, opts.offline); err != nil {
		return err
	}
	eas, err := w.EmergencyAccesses(ctx)
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
}
