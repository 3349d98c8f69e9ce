package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/medwallet/medwallet/internal/units"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medwallet/medwallet/internal/fsutil"
	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/wallet"
)

func newRecordCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "record",
		Short: "Add, list, get, verify and remove medical records",
		Long: `Records are encrypted on this machine with a fresh key each, cut into n
erasure-coded shares of which any k rebuild the record, and stored by
content address. The record key and the metadata (format, FHIR resource
types, label) live only in a manifest signed by you and encrypted to you.

With a network file ($MEDWALLET_NETWORK, --network, or HOME/network.json)
the shares go to distinct peers and every read goes through the peers'
consent check and is logged on the ledger; --local keeps them in HOME/shares.

A record is named by its ID or any unique prefix of at least 4 characters.`,
		Example: `  medwallet record add labs.json --label "2026 labs"
  medwallet record ls
  medwallet record get 3fa1 --out labs.json
  medwallet record verify 3fa1
  medwallet record rm 3fa1
  medwallet record get 3fa1 --ciphertext --out labs.age && medwallet record key 3fa1 > labs.key && age -d -i labs.key labs.age`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().BoolVar(&g.localShares, "local", false, "keep shares in HOME/shares even when a network is configured")
	cmd.AddCommand(newRecordAddCommand(g), newRecordLsCommand(g), newRecordGetCommand(g),
		newRecordVerifyCommand(g), newRecordRmCommand(g), newRecordKeyCommand(g),
		newRecordShowCommand(g), newRecordTrendCommand(g))
	return cmd
}

// recordJSON is the --json shape of a record (record add, record ls).
type recordJSON struct {
	ID            string           `json:"id"`
	Label         string           `json:"label"`
	Format        string           `json:"format"`
	MediaType     string           `json:"media_type"`
	Size          int64            `json:"size"`
	Created       time.Time        `json:"created"`
	K             int              `json:"k"`
	N             int              `json:"n"`
	ManifestHash  string           `json:"manifest_hash"`
	ResourceTypes []string         `json:"resource_types"`
	FHIR          *vault.FHIRInfo  `json:"fhir,omitempty"`
	CDA           *vault.CDAInfo   `json:"cda,omitempty"`
	DICOM         *vault.DICOMInfo `json:"dicom,omitempty"`
	PDF           *vault.PDFInfo   `json:"pdf,omitempty"`
	// Provenance: a record imported from a SMART Health Card (verified or not).
	Provenance *vault.Provenance `json:"provenance,omitempty"`
}

func newRecordJSON(r wallet.RecordInfo) recordJSON {
	md := r.Metadata
	types := md.ResourceTypes()
	if types == nil {
		types = []string{}
	}
	return recordJSON{
		ID: r.ID, Label: md.Label, Format: md.Format, MediaType: md.MediaType, Size: md.Size,
		Created: r.Created, K: r.K, N: r.N, ManifestHash: r.ManifestHash.String(), ResourceTypes: types,
		FHIR: md.FHIR, CDA: md.CDA, DICOM: md.DICOM, PDF: md.PDF, Provenance: md.Provenance,
	}
}

// recordAddOptions are the flags of record add.
type recordAddOptions struct {
	label      string
	k, n       int
	unverified bool
	happy      int
}

func newRecordAddCommand(g *globalOptions) *cobra.Command {
	var o recordAddOptions
	cmd := &cobra.Command{
		Use:   "add FILE",
		Short: "Encrypt, erasure-code and store a record; print its ID",
		Long: `Encrypt FILE (or stdin with "-") to a fresh record key, cut it into n
shares of which any k rebuild it, store the shares and save the manifest.
The format is detected from the content: FHIR R4 JSON (Bundle or resource),
C-CDA XML, DICOM, PDF, else binary. The record ID is printed on stdout.

A SMART Health Card (a .smart-health-card file, numeric shc:/ QR payloads
one per line, or a bare JWS) is verified against your trusted issuers
('medwallet issuer'), and its FHIR Bundle is stored as a FHIR record that
keeps the card's provenance (issuer, key, verified or not); a card that
fails (untrusted issuer, bad signature, expired, not a health card) is
refused with the reason unless --unverified, which stores it marked
unverified. A file with several cards stores one record each (--json then
prints an array).`,
		Example: `  medwallet record add visit.json --label "2026 check-up"
  medwallet record add scan.dcm --k 4 --n 6
  cat summary.xml | medwallet record add - --json
  medwallet record add vaccination.smart-health-card`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRecordAdd(cmd.Context(), o, g, args) },
	}
	cmd.Flags().StringVar(&o.label, "label", "", "a label for the record (kept encrypted)")
	cmd.Flags().IntVar(&o.k, "k", vault.DefaultK, "shares needed to rebuild the record")
	cmd.Flags().IntVar(&o.n, "n", vault.DefaultN, "shares made")
	cmd.Flags().BoolVar(&o.unverified, "unverified", false, "store a SMART Health Card that fails verification, marked unverified")
	cmd.Flags().IntVar(&o.happy, "happy", 0, "distinct peers the shares must land on, or the add fails and removes them (0: k+1)")
	return cmd
}

// runRecordAdd stores the file args[0] ("-" for stdin) as a record.
func runRecordAdd(ctx context.Context, o recordAddOptions, g *globalOptions, args []string) error {
	file := args[0]
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	var in io.Reader = g.stdin
	size := int64(-1)
	if file != "-" {
		f, err := os.Open(file)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%q: %w", file, wallet.ErrNotFound)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%q is not a regular file: %w", file, wallet.ErrInvalid)
		}
		in, size = f, st.Size()
	}
	in, card, err := wallet.SniffCard(in)
	if err != nil {
		return err
	}
	if card {
		return addCards(ctx, g, w, in, wallet.SHCImportOptions{Unverified: o.unverified,
			AddRecordOptions: wallet.AddRecordOptions{RecordOptions: wallet.RecordOptions{Local: g.localShares},
				Label: o.label, K: o.k, N: o.n, Happy: o.happy}}, false)
	}
	if o.unverified {
		return usageError{errors.New("--unverified is for SMART Health Cards, and this is not one")}
	}
	bar := g.progress("adding", size)
	info, err := w.AddRecord(ctx, in, wallet.AddRecordOptions{
		RecordOptions: wallet.RecordOptions{Progress: bar.progress(), Local: g.localShares},
		Label:         o.label, K: o.k, N: o.n, Happy: o.happy,
	})
	bar.done()
	if err != nil {
		return err
	}
	g.note("medwallet: added %s record %s (%s, any %d of %d shares rebuild it)",
		info.Metadata.Format, info.ID, units.Size(info.Metadata.Size), info.K, info.N)
	if asked := cmp.Or(o.n, vault.DefaultN); info.N < asked {
		g.note("medwallet: note: peers refused some shares, so the record has %d shares, not the %d asked for: it tolerates the loss of %d, not %d",
			info.N, asked, info.N-info.K, asked-info.K)
	}
	return g.emit(newRecordJSON(info), func(out io.Writer) { fmt.Fprintln(out, info.ID) })
}

// recordLsOptions are the flags of record ls.
type recordLsOptions struct{}

func newRecordLsCommand(g *globalOptions) *cobra.Command {
	var opts recordLsOptions
	return &cobra.Command{
		Use:     "ls",
		Short:   "List records with their metadata",
		Example: "  medwallet record ls\n  medwallet record ls --json | jq '.[].resource_types'",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runRecordLs(cmd.Context(), opts, g) },
	}
}

func runRecordLs(ctx context.Context, _ recordLsOptions, g *globalOptions) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	recs, err := w.ListRecords(ctx)
	if err != nil {
		return err
	}
	out := make([]recordJSON, 0, len(recs))
	for _, r := range recs {
		out = append(out, newRecordJSON(r))
	}
	return g.emit(out, func(o io.Writer) {
		if len(out) == 0 {
			g.note("medwallet: no records yet; add one with 'medwallet record add FILE'")
			return
		}
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tFORMAT\tSIZE\tSHARES\tLABEL\tCONTENT")
		for _, r := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.ID[:12], r.Created.Format("2006-01-02"), r.Format,
				units.Size(r.Size), r.K, r.N, r.Label, recordContent(r))
		}
		tw.Flush()
	})
}

// recordContent summarises what a record holds, for the human table.
func recordContent(r recordJSON) string {
	if p := r.Provenance; p != nil {
		return recordKind(r) + " " + provenanceText(p)
	}
	return recordKind(r)
}

func recordKind(r recordJSON) string {
	switch {
	case r.FHIR != nil:
		return strings.Join(r.ResourceTypes, ",")
	case r.CDA != nil:
		return r.CDA.DocumentType
	case r.DICOM != nil && r.DICOM.Modality != "":
		return "modality " + r.DICOM.Modality
	case r.PDF != nil && r.PDF.Version != "":
		return "PDF " + r.PDF.Version
	}
	return ""
}

type recordGetOptions struct {
	out        string
	ciphertext bool
}

func newRecordGetCommand(g *globalOptions) *cobra.Command {
	var o recordGetOptions
	cmd := &cobra.Command{
		Use:   "get ID [--out FILE|-]",
		Short: "Rebuild a record from its shares and decrypt it",
		Long: `Rebuild the record from any k good shares, checking every block against the
signed manifest, and write the plaintext to FILE (created 0600, never
overwritten, complete or not at all) or to stdout with "-" (the default,
refused when stdout is a terminal).

--ciphertext writes the record's age ciphertext instead, rebuilt and
checked the same way but not decrypted: with the key from 'medwallet record
key', the stock age CLI opens it ('age -d -i KEYFILE FILE').`,
		Example: `  medwallet record get 3fa1 --out visit.json
  medwallet record get 3fa1c0de > visit.json
  medwallet record get 3fa1 --ciphertext --out visit.json.age`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRecordGet(cmd.Context(), o, g, args) },
	}
	cmd.Flags().StringVar(&o.out, "out", "-", `file to create, or "-" for stdout`)
	cmd.Flags().BoolVar(&o.ciphertext, "ciphertext", false, "write the age ciphertext, not the plaintext")
	return cmd
}

// recordGetJSON is the --json shape of record get --out FILE.
type recordGetJSON struct {
	ID         string `json:"id"`
	File       string `json:"file"`
	Size       int64  `json:"size"`
	Ciphertext bool   `json:"ciphertext,omitempty"`
}

// runRecordGet writes the record args[0] (or its ciphertext) to --out.
func runRecordGet(ctx context.Context, o recordGetOptions, g *globalOptions, args []string) error {
	ref := args[0]
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	get, what := w.GetRecord, "a medical record"
	if o.ciphertext {
		get, what = w.GetCiphertext, "a record's ciphertext"
	}
	if o.out == "-" {
		if g.json {
			return usageError{errors.New("--json needs --out FILE: stdout would mix the record and the JSON")}
		}
		if f, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return withHint(fmt.Errorf("refusing to write %s to the terminal: %w", what, wallet.ErrInvalid),
				"pass --out FILE or redirect stdout")
		}
		info, err := w.Record(ctx, ref)
		if err != nil {
			return err
		}
		bar := g.progress("getting", info.Metadata.Size)
		_, err = get(ctx, info.ID, g.stdout, wallet.RecordOptions{Progress: bar.progress(), Local: g.localShares})
		bar.done()
		return err
	}
	if _, err := os.Lstat(o.out); err == nil {
		return withHint(fmt.Errorf("%q: %w", o.out, wallet.ErrExists), "choose a new file name; record get never overwrites")
	}
	info, err := w.Record(ctx, ref)
	if err != nil {
		return err
	}
	f, err := fsutil.CreateNew(o.out, 0o600)
	if err != nil {
		return err
	}
	defer f.Abort()
	bar := g.progress("getting", info.Metadata.Size)
	_, err = get(ctx, info.ID, f, wallet.RecordOptions{Progress: bar.progress(), Local: g.localShares})
	bar.done()
	if err != nil {
		return err
	}
	// Commit fails, and writes nothing, if the file appeared meanwhile.
	if err := f.Commit(); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%q: %w", o.out, wallet.ErrExists)
		}
		return err
	}
	if p := info.Metadata.Provenance; p != nil && p.Status == vault.ProvenanceUnverified {
		g.note("medwallet: note: record %s came from a SMART Health Card that did not verify: %s", info.ID[:12], p.Problem)
	}
	if o.ciphertext {
		g.note("medwallet: wrote the age ciphertext of record %s to %s (%s); 'medwallet record key %s' gives its key",
			info.ID, o.out, units.Size(info.CipherSize), info.ID[:8])
		return g.emit(recordGetJSON{ID: info.ID, File: o.out, Size: info.CipherSize, Ciphertext: true}, func(out io.Writer) { fmt.Fprintln(out, o.out) })
	}
	g.note("medwallet: wrote record %s to %s (%s); it is not encrypted", info.ID, o.out, units.Size(info.Metadata.Size))
	return g.emit(recordGetJSON{ID: info.ID, File: o.out, Size: info.Metadata.Size}, func(out io.Writer) { fmt.Fprintln(out, o.out) })
}

// recordKeyOptions are the flags of record key.
type recordKeyOptions struct{ out string }

func newRecordKeyCommand(g *globalOptions) *cobra.Command {
	var o recordKeyOptions
	cmd := &cobra.Command{
		Use:   "key ID [--out FILE|-]",
		Short: "Print a record's age identity (its secret key), for the stock age CLI",
		Long: `Print the record's own age identity (AGE-SECRET-KEY-1...), the key its
ciphertext is encrypted to, to FILE (created 0600, never overwritten) or
to stdout with "-" (the default, refused when stdout is a terminal). With
'medwallet record get --ciphertext', the stock age CLI then opens the
record without medwallet: 'age -d -i KEYFILE FILE'.

The key opens this record only, but it opens it for anyone who holds it
and the ciphertext (or k shares): the command warns on stderr. Rotating
the record ('medwallet revoke --rotate') gives it a new key.`,
		Example: `  medwallet record key 3fa1 --out visit.key
  medwallet record get 3fa1 --ciphertext --out visit.age && age -d -i visit.key visit.age > visit.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRecordKey(cmd.Context(), o, g, args) },
	}
	cmd.Flags().StringVar(&o.out, "out", "-", `file to create, or "-" for stdout`)
	return cmd
}

// recordKeyJSON is the --json shape of record key --out FILE.
type recordKeyJSON struct {
	ID   string `json:"id"`
	File string `json:"file"`
}

// runRecordKey writes the age identity of the record args[0] to --out.
func runRecordKey(ctx context.Context, o recordKeyOptions, g *globalOptions, args []string) error {
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	if o.out == "-" {
		if g.json {
			return usageError{errors.New("--json needs --out FILE: stdout would mix the key and the JSON")}
		}
		if f, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return withHint(fmt.Errorf("refusing to write a secret key to the terminal: %w", wallet.ErrInvalid),
				"pass --out FILE or redirect stdout")
		}
	} else if _, err := os.Lstat(o.out); err == nil {
		return withHint(fmt.Errorf("%q: %w", o.out, wallet.ErrExists), "choose a new file name; record key never overwrites")
	}
	info, err := w.Record(ctx, args[0])
	if err != nil {
		return err
	}
	key, err := w.RecordKey(ctx, info.ID)
	if err != nil {
		return err
	}
	// The warning shows under --json too: it is about a secret, not a result.
	fmt.Fprintf(g.stderr, "medwallet: warning: this is the secret key of record %s: anyone holding it and the record's ciphertext or shares can read the record; keep it private and delete it after use\n",
		info.ID[:12])
	line := []byte(key.String() + "\n")
	if o.out == "-" {
		_, err := g.stdout.Write(line)
		return err
	}
	f, err := fsutil.CreateNew(o.out, 0o600)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(line); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%q: %w", o.out, wallet.ErrExists)
		}
		return err
	}
	return g.emit(recordKeyJSON{ID: info.ID, File: o.out}, func(out io.Writer) { fmt.Fprintln(out, o.out) })
}

// recordVerifyOptions are the flags of record verify.
type recordVerifyOptions struct{}

func newRecordVerifyCommand(g *globalOptions) *cobra.Command {
	var opts recordVerifyOptions
	return &cobra.Command{
		Use:   "verify ID",
		Short: "Check every share of a record and report its health",
		Long: `Read every share of the record in full and check its header, every block
hash, its length and its content address against the signed manifest.
Exit code 0 when the record can be rebuilt (status "ok", or "degraded" when
some shares are damaged but at least k are fine), 5 when it cannot ("lost").`,
		Example: "  medwallet record verify 3fa1\n  medwallet record verify 3fa1 --json",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runRecordVerify(cmd.Context(), opts, g, args) },
	}
}

// shareHealthJSON is one share in the --json shape of record verify.
type shareHealthJSON struct {
	Index     int    `json:"index"`
	ID        string `json:"id"`
	Status    string `json:"status"`
	BadBlocks int64  `json:"bad_blocks"`
	Detail    string `json:"detail,omitempty"`
}

// recordVerifyJSON is the --json shape of record verify.
type recordVerifyJSON struct {
	ID      string            `json:"id"`
	Status  string            `json:"status"`
	Healthy int               `json:"healthy"`
	K       int               `json:"k"`
	N       int               `json:"n"`
	Shares  []shareHealthJSON `json:"shares"`
}

// runRecordVerify checks every share of the record args[0].
func runRecordVerify(ctx context.Context, _ recordVerifyOptions, g *globalOptions, args []string) error {
	ref := args[0]
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	h, err := w.VerifyRecord(ctx, ref, wallet.RecordOptions{Local: g.localShares})
	if h.Status == "" {
		return err
	}
	out := recordVerifyJSON{ID: h.Record.ID, Status: h.Status, Healthy: h.Healthy, K: h.Record.K, N: h.Record.N}
	for _, s := range h.Shares {
		out.Shares = append(out.Shares, shareHealthJSON{Index: s.Index, ID: s.ID.String(), Status: string(s.Status), BadBlocks: s.BadBlocks, Detail: s.Detail})
	}
	human := func(o io.Writer) {
		tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SHARE\tSTATUS\tID\tDETAIL")
		for _, s := range out.Shares {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Index, s.Status, s.ID[:16], s.Detail)
		}
		tw.Flush()
		fmt.Fprintf(o, "record %s: %s, %d of %d shares healthy, %d needed\n", out.ID, out.Status, out.Healthy, out.N, out.K)
	}
	if err != nil {
		// Lost: the table still helps a human; a script gets the error object.
		if !g.json {
			human(g.stdout)
		}
		return withHint(err, "restore the missing shares from a backup or a peer; nothing can rebuild the record from fewer than k")
	}
	if h.Status == wallet.HealthDegraded {
		g.note("medwallet: record %s is damaged but can still be rebuilt: %d of %d shares healthy, %d needed", out.ID, out.Healthy, out.N, out.K)
	}
	return g.emit(out, human)
}

// recordRmOptions are the flags of record rm.
type recordRmOptions struct{}

func newRecordRmCommand(g *globalOptions) *cobra.Command {
	var opts recordRmOptions
	return &cobra.Command{
		Use:     "rm ID",
		Short:   "Delete a record's shares and manifest",
		Example: "  medwallet record rm 3fa1",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return runRecordRm(cmd.Context(), opts, g, args) },
	}
}

// runRecordRm deletes the record args[0].
func runRecordRm(ctx context.Context, _ recordRmOptions, g *globalOptions, args []string) error {
	ref := args[0]
	w, err := g.openWallet()
	if err != nil {
		return err
	}
	id, err := w.RemoveRecord(ctx, ref, wallet.RecordOptions{Local: g.localShares})
	if err != nil {
		return err
	}
	return g.emit(removedJSON{Removed: id}, func(out io.Writer) { fmt.Fprintf(out, "removed %s\n", id) })
}

// progressMin is the size from which add and get draw a progress bar.
const progressMin = 8 << 20

// progressBar draws "verb  12.0 MiB / 1.0 GiB  1%" on stderr, at most ten
// times a second. A nil *progressBar is valid and draws nothing.
type progressBar struct {
	w     io.Writer
	verb  string
	total int64
	n     int64
	last  time.Time
}

// progress returns a bar on stderr when stderr is a terminal, --json is off
// and the size is large or unknown (-1); else nil.
func (g *globalOptions) progress(verb string, total int64) *progressBar {
	f, ok := g.stderr.(*os.File)
	if g.json || !ok || !term.IsTerminal(int(f.Fd())) || (total >= 0 && total < progressMin) {
		return nil
	}
	return &progressBar{w: g.stderr, verb: verb, total: total}
}

// progress returns p as a vault.Progress, or nil when there is no bar.
func (p *progressBar) progress() vault.Progress {
	if p == nil {
		return nil
	}
	return p
}

// Add implements vault.Progress.
func (p *progressBar) Add(n int64) {
	if p == nil {
		return
	}
	p.n += n
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

func (p *progressBar) draw() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s  %s / %s  %3d%%\x1b[K", p.verb, units.Size(p.n), units.Size(p.total), p.n*100/p.total)
		return
	}
	fmt.Fprintf(p.w, "\r%s  %s\x1b[K", p.verb, units.Size(p.n))
}

func (p *progressBar) done() {
	if p == nil {
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}
