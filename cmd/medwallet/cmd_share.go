package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	qrcode "github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/medwallet/medwallet/wallet"
)

// shareOptions are the flags of share.
type shareOptions struct {
	shl           bool
	passcode      string
	attempts      int
	expires       string
	label         string
	recipientNote bool
	noQR          bool
	list          bool
}

func newShareCommand(g *globalOptions) *cobra.Command {
	var o shareOptions
	cmd := &cobra.Command{
		Use:   "share RECORD... --shl [--passcode P] [--expires D] [--label L]",
		Short: "Share records as a SMART Health Link any SHL viewer opens",
		Long: `Share records with someone who does not run medwallet, as a SMART Health
Link: a shlink:/ URI and a QR code that any SHL viewer opens. Each record is
encrypted here under a fresh key that only the link carries (FHIR records as
they are; C-CDA, PDF, DICOM and other files inside a FHIR DocumentReference,
since a link carries FHIR), the link's entry is signed on your ledger, and
the encrypted files go to the peers of your network that serve links
(medwallet peer --shl-listen). The link names one of them.

Every request for the link is decided and logged by the peer, with the
recipient's own description, and shows in 'medwallet log' and 'medwallet
audit disclosures'. 'medwallet revoke LINK' closes the link on every peer
that has the revocation; --expires makes the peers refuse it after a time.
With --passcode the viewer must give it: after --attempts wrong ones the
link is dead. Send the passcode another way than the link.

What a recipient fetched before a revocation cannot be recalled.`,
		Example: `  medwallet share 3f2a9c --shl --passcode 4711 --expires 7d --label "Allergies for Dr Ngata"
  medwallet share 3f2a9c 88b1 --shl --expires 2h --json
  medwallet share --list
  medwallet revoke 5Jq2xW0b`,
		RunE: func(cmd *cobra.Command, args []string) error { return runShare(cmd.Context(), o, g, args) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.shl, "shl", false, "share as a SMART Health Link (the only way for now)")
	f.StringVar(&o.passcode, "passcode", "", "a passcode the viewer must give (4 to 128 characters)")
	f.IntVar(&o.attempts, "attempts", 0, fmt.Sprintf("with --passcode: wrong passcodes before the link is dead (default %d)", wallet.DefaultShareAttempts))
	f.StringVar(&o.expires, "expires", "", `when peers stop serving the link: "90s", "30m", "12h", "7d", "2w", a date or an RFC 3339 time`)
	f.StringVar(&o.label, "label", "", "a short label viewers show (at most 80 characters; in the link only, not on the ledger)")
	f.BoolVar(&o.recipientNote, "recipient-note", false, "also print a note to give the recipient with the link")
	f.BoolVar(&o.noQR, "no-qr", false, "do not print the QR code")
	f.BoolVar(&o.list, "list", false, "list the links you shared, with their status and the requests peers logged")
	return cmd
}

// shareJSON is the --json shape of a shared link.
type shareJSON struct {
	Link    string           `json:"link"`
	URL     string           `json:"url"`
	ID      string           `json:"id"`
	Entry   string           `json:"entry"`
	Flags   string           `json:"flags"`
	Expires *time.Time       `json:"expires,omitempty"`
	Files   []sharedFileJSON `json:"files"`
	Peers   []string         `json:"peers"`
	Records []string         `json:"records"`
}

type sharedFileJSON struct {
	Record      string `json:"record"`
	ContentType string `json:"content_type"`
	Wrapped     bool   `json:"wrapped"` // a non-FHIR record inside a FHIR DocumentReference
	Size        int    `json:"size"`
}

// linkJSON is the --json shape of a link in share --list and revoke.
type linkJSON struct {
	Entry    string     `json:"entry"`
	ID       string     `json:"id"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	Flags    string     `json:"flags"`
	Attempts int        `json:"attempts,omitempty"`
	Records  []string   `json:"records"`
	Status   string     `json:"status"`
	Allowed  int        `json:"allowed"`
	Denied   int        `json:"denied"`
}

func newLinkJSON(l wallet.LinkInfo) linkJSON {
	j := linkJSON{Entry: l.Entry.String(), ID: l.ID, Created: l.Created, Flags: l.Flags, Attempts: l.Attempts,
		Records: l.Records, Status: l.Status, Allowed: l.Allowed, Denied: l.Denied}
	if !l.Expires.IsZero() {
		e := l.Expires
		j.Expires = &e
	}
	return j
}

func runShare(ctx context.Context, o shareOptions, g *globalOptions, args []string) error {
	if o.list {
		if len(args) > 0 || o.shl {
			return usageError{fmt.Errorf("--list takes no records and no --shl")}
		}
		return runShareList(ctx, g)
	}
	if !o.shl {
		return usageError{fmt.Errorf("say how to share: --shl (a SMART Health Link) is the only way for now")}
	}
	if len(args) == 0 {
		return usageError{fmt.Errorf("name at least one record to share")}
	}
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	exp, err := wallet.ParseShareExpiry(o.expires, w.Now())
	if err != nil {
		return err
	}
	s, err := w.Share(ctx, wallet.ShareOptions{Records: args, Passcode: o.passcode, Attempts: o.attempts, Expires: exp, Label: o.label})
	if err != nil {
		return err
	}
	j := shareJSON{Link: s.Link, URL: s.URL, ID: s.ID, Entry: s.Entry.String(), Flags: s.Flags, Records: s.Records,
		Files: []sharedFileJSON{}, Peers: []string{}}
	if !s.Expires.IsZero() {
		e := s.Expires
		j.Expires = &e
	}
	for _, f := range s.Files {
		j.Files = append(j.Files, sharedFileJSON{Record: f.Record, ContentType: f.ContentType, Wrapped: f.Wrapped, Size: f.Size})
		if f.Wrapped {
			g.note("medwallet: record %s is not FHIR: it is shared inside a FHIR DocumentReference, as SMART Health Links carry FHIR", f.Record)
		}
	}
	for _, p := range s.Peers {
		j.Peers = append(j.Peers, string(p))
	}
	g.note("medwallet: anyone with this link can open the records until it is revoked ('medwallet revoke %s')%s; what is fetched before cannot be recalled",
		s.ID[:12], expiryText(s.Expires))
	if o.recipientNote {
		g.note("%s", recipientNote(s))
	}
	return g.emit(j, func(out io.Writer) {
		fmt.Fprintln(out, s.Link)
		if o.noQR {
			return
		}
		q, err := qrcode.New(s.Link, qrcode.Low)
		if err != nil {
			g.note("medwallet: no QR code: %v", err)
			return
		}
		fmt.Fprint(out, q.ToSmallString(false))
	})
}

func expiryText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " or it expires at " + t.Format(time.RFC3339)
}

// recipientNote is what to tell the recipient along with the link.
func recipientNote(s wallet.SharedLink) string {
	var b strings.Builder
	b.WriteString("note for the recipient: open the link (or scan the QR code) with a SMART Health Links viewer;")
	if strings.Contains(s.Flags, "P") {
		b.WriteString(" it asks for a passcode, which I send you separately;")
	}
	if !s.Expires.IsZero() {
		fmt.Fprintf(&b, " it works until %s;", s.Expires.Format(time.RFC1123))
	}
	b.WriteString(" the viewer will ask who you are: every request is logged for me to see")
	return b.String()
}

func runShareList(ctx context.Context, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	defer w.HoldLedger()()
	if err := refreshLedger(ctx, g, w, false); err != nil {
		return err
	}
	ls, err := w.Links(ctx)
	if err != nil {
		return err
	}
	out := make([]linkJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, newLinkJSON(l))
	}
	return g.emit(out, func(o io.Writer) {
		if len(out) == 0 {
			g.note("medwallet: no links shared yet")
			return
		}
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LINK\tCREATED\tSTATUS\tRECORDS\tALLOWED\tDENIED")
		for _, l := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", l.ID[:12], l.Created.Format(time.RFC3339), l.Status, len(l.Records), l.Allowed, l.Denied)
		}
		tw.Flush()
	})
}

// runRevokeLink revokes a link (revoke LINK; cmd_revoke.go hands it over).
func runRevokeLink(ctx context.Context, g *globalOptions, w *wallet.Wallet, ref string) error {
	li, err := w.RevokeLink(ctx, ref)
	if err != nil {
		return err
	}
	g.note("medwallet: peers refuse link %s once they receive the revocation; what a recipient already fetched cannot be recalled", li.ID[:12])
	return g.emit(newLinkJSON(li), func(out io.Writer) { fmt.Fprintf(out, "revoked link %s\n", li.ID) })
}
