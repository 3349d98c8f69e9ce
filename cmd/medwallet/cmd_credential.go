package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

func newCredentialCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Issue, list and revoke role credentials (physician, emergency-physician...)",
		Long: `An issuer (a hospital, a licensing body: any medwallet identity) signs a
credential saying that another identity holds a role. Patients can grant to
"any emergency-physician credentialed by Mercy" instead of one person, and
peers check the credential (issuer, validity, revocation) before releasing
anything under such a grant.

The credential goes on the ledger with the subject's ID, the role and the
validity period; the organisation and licence number are encrypted to the
subject and the issuer, never written in the clear.`,
		Example: `  medwallet credential issue --to "Dr Dana" --role emergency-physician --org "Mercy Hospital" --expires 52w
  medwallet credential ls
  medwallet credential revoke 7d1f09aa`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCredentialIssueCommand(g), newCredentialLsCommand(g), newCredentialRevokeCommand(g))
	return cmd
}

// credentialJSON is the --json shape of a credential.
type credentialJSON struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"` // active, revoked, expired, not-yet-valid
	Issuer      string     `json:"issuer"`
	IssuerName  string     `json:"issuer_name"`
	Subject     string     `json:"subject"`
	SubjectName string     `json:"subject_name"`
	Role        string     `json:"role"`
	RoleID      string     `json:"role_id"`
	Org         string     `json:"org,omitempty"`
	Licence     string     `json:"licence,omitempty"`
	NotBefore   time.Time  `json:"not_before"`
	Expires     *time.Time `json:"expires"`
	Issued      bool       `json:"issued"`
	Held        bool       `json:"held"`
}

func newCredentialJSON(c wallet.CredentialInfo) credentialJSON {
	j := credentialJSON{ID: c.ID.String(), Status: c.Status, Issuer: string(c.Issuer), IssuerName: c.IssuerName,
		Subject: string(c.Subject), SubjectName: c.SubjectName, Role: c.Role, RoleID: string(c.RoleID),
		Org: c.Org, Licence: c.Licence, NotBefore: c.NotBefore, Issued: c.Issued, Held: c.Held}
	if !c.Expires.IsZero() {
		e := c.Expires
		j.Expires = &e
	}
	return j
}

// credentialIssueOptions are the flags of credential issue.
type credentialIssueOptions struct {
	wallet.CredentialOptions
}

func newCredentialIssueCommand(g *globalOptions) *cobra.Command {
	var opts credentialIssueOptions
	cmd := &cobra.Command{
		Use:   "issue --to CONTACT|ID --role ROLE [--org ORG] [--licence NUMBER] [--expires 52w|DATE]",
		Short: "Vouch that a contact holds a role, and print the credential ID",
		Example: `  medwallet credential issue --to "Dr Dana" --role emergency-physician --org "Mercy Hospital" --expires 52w
  medwallet credential issue --to 12D3KooW... --role insurer-agent --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCredentialIssue(cmd.Context(), opts, g) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.To, "to", "", "the subject: a contact name or an ID")
	f.StringVar(&opts.Role, "role", "", "role: physician, nurse, emergency-physician, insurer-agent...")
	f.StringVar(&opts.Org, "org", "", "organisation (encrypted to the subject and you)")
	f.StringVar(&opts.Licence, "licence", "", "licence number (encrypted to the subject and you)")
	f.StringVar(&opts.Expires, "expires", "", "expiry: 12h, 30d, 52w, 2027-12-31 or an RFC 3339 time (default: none)")
	cmd.MarkFlagRequired("to")
	cmd.MarkFlagRequired("role")
	return cmd
}

func runCredentialIssue(ctx context.Context, opts credentialIssueOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	c, err := w.IssueCredential(ctx, opts.CredentialOptions)
	if err != nil {
		return err
	}
	g.note("medwallet: %s holds %s from you %s", who(c.SubjectName, c.Subject.Short()), c.Role, validText(c.Expires))
	return g.emit(newCredentialJSON(c), func(out io.Writer) { fmt.Fprintln(out, c.ID) })
}

func validText(expires time.Time) string {
	if expires.IsZero() {
		return "until revoked"
	}
	return "until " + expires.Format(time.RFC3339)
}

// credentialLsOptions are the flags of credential ls.
type credentialLsOptions struct{}

func newCredentialLsCommand(g *globalOptions) *cobra.Command {
	var opts credentialLsOptions
	return &cobra.Command{
		Use:     "ls",
		Short:   "List the credentials you issued or hold",
		Example: "  medwallet credential ls\n  medwallet credential ls --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runCredentialLs(cmd.Context(), opts, g) },
	}
}

func runCredentialLs(ctx context.Context, _ credentialLsOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	cs, err := w.Credentials(ctx)
	if err != nil {
		return err
	}
	out := make([]credentialJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, newCredentialJSON(c))
	}
	return g.emit(out, func(o io.Writer) {
		if len(out) == 0 {
			g.note("medwallet: no credential issued or held")
			return
		}
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tROLE\tSUBJECT\tISSUER\tORG\tEXPIRES")
		for _, j := range out {
			expires := "never"
			if j.Expires != nil {
				expires = j.Expires.Format("2006-01-02T15:04Z07:00")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID[:12], j.Status, j.Role, who(j.SubjectName, j.Subject),
				who(j.IssuerName, j.Issuer), dash(j.Org), expires)
		}
		tw.Flush()
	})
}

// credentialRevokeOptions are the flags of credential revoke.
type credentialRevokeOptions struct{}

func newCredentialRevokeCommand(g *globalOptions) *cobra.Command {
	var o credentialRevokeOptions
	return &cobra.Command{
		Use:   "revoke CREDENTIAL_ID",
		Short: "Revoke a credential you issued",
		Long: `Sign the revocation of a credential you issued (ID or unique prefix of at
least 8 hex digits). Peers stop honouring it as soon as they receive the
revocation: no share is released under it any more, in an emergency or not.`,
		Example: "  medwallet credential revoke 7d1f09aa",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runCredentialRevoke(cmd.Context(), o, g, args) },
	}
}

// runCredentialRevoke revokes the credential args[0].
func runCredentialRevoke(ctx context.Context, _ credentialRevokeOptions, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	c, err := w.RevokeCredential(ctx, args[0])
	if err != nil {
		return err
	}
	g.note("medwallet: peers stop honouring this credential once they receive the revocation")
	return g.emit(newCredentialJSON(c), func(out io.Writer) { fmt.Fprintf(out, "revoked %s\n", c.ID) })
}
